"""The retraining run's row: start it (once per trigger), read it back, fail it with why."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from relearn.registry import CHAMPION, alias_version, registry_client
from relearn.retraining.results import StepResult, StepStatus
from relearn.services import utcnow
from relearn.store import drift_reports, requests, runs
from relearn.store.db import transaction

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.retraining.options import ReinforceOptions
    from relearn.services import Services

log = logging.getLogger(__name__)


def start(
    services: Services,
    model_cfg: ModelConfig,
    options: ReinforceOptions,
    *,
    trigger_key: str,
    now: datetime,
    dag_id: str | None = None,
    airflow_url: str | None = None,
) -> StepResult:
    """Record the run as ``running`` (once per ``trigger_key``) and pin what it will work on.

    A second call with the same key finds the same row, whatever its status now.
    """
    champion = alias_version(registry_client(services.tracking_uri), model_cfg.name, CHAMPION)
    params = {
        **options.to_record(),
        "champion_version": str(champion.version) if champion else None,
        "window_end": now.isoformat(),
    }
    with transaction(services.database_url) as connection:
        run = runs.start_run(
            connection,
            model_name=model_cfg.name,
            trigger_key=trigger_key,
            source=options.source,
            params=params,
            started_at=utcnow(),
            dag_id=dag_id,
            airflow_url=airflow_url,
            triggered_by=options.triggered_by,
            request_id=options.request_id,
        )
        if options.request_id:
            requests.link_run(connection, options.request_id, run.id)
        if options.drift_report_id:
            drift_reports.link_run(connection, options.drift_report_id, run.id)
    detail = (
        f"{model_cfg.name} retraining run {run.id} is {run.status} (source {run.source}, "
        f"champion v{run.params.get('champion_version')})"
    )
    log.info("%s", detail)
    status = StepStatus.FINISHED if run.finished else StepStatus.RUNNING
    return StepResult(status, str(run.id), model_cfg.name, detail=detail, run_status=run.status)


def load_run(services: Services, retraining_run_id: str) -> runs.RetrainingRun:
    """The run's row as it is now."""
    with transaction(services.database_url) as connection:
        return runs.get_run(connection, retraining_run_id)


def fail(services: Services, retraining_run_id: str, error: BaseException | str) -> bool:
    """Mark a running run failed with a readable reason; False if it had already finished."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with transaction(services.database_url) as connection:
        failed = runs.fail_run(connection, retraining_run_id, completed_at=utcnow(), error=message)
    if failed:
        log.error("retraining run %s failed: %s", retraining_run_id, message)
    return failed
