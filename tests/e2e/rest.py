"""What the REST-driven end-to-end tests share: Airflow started as ``make run`` starts it, on the
session's Postgres and MLflow, driven through ``relearn_dev.stack.rest`` (apache-airflow-client).

The scheduler runs no timetable here (``use_job_schedule`` off): only the runs a test triggers
happen, so a test's assertions are about its own runs on 2 shared cores.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from relearn_dev.stack.rest import ONLY_TRIGGERED_RUNS
from relearn_dev.stack.services import Stack
from tests.conftest import ROOT
from tests.integration.traffic import log_traffic

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.config import ModelConfig


@contextmanager
def running_airflow(
    stack: Stack, executor: str, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Airflow's services (and, for ``celery``, Redis and the workers) on the session's stack;
    its own supervisor, so leaving stops only what it started."""
    airflow = Stack(
        stack.settings,
        ROOT,
        executor=executor,
        extra_env={**ONLY_TRIGGERED_RUNS, **(extra_env or {})},
    )
    try:
        airflow.start_airflow()
        yield airflow
    finally:
        airflow.down(keep_database=True)


def errors_to_learn_from(model_cfg: ModelConfig, database_url: str, tracking_uri: str) -> None:
    """Two days of predictions after a concept change, up to now (the run's window end)."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=end - timedelta(days=2),
        end=end,
        concept_shift=1.0,
        seed=41,
        per_hour=30,
    )
