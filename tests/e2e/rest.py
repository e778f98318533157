"""What the REST-driven end-to-end tests share: Airflow started as ``make run`` starts it, on the
session's Postgres and MLflow, and a user's view of it through ``apache-airflow-client``.

The scheduler runs no timetable here (``use_job_schedule`` off): only the runs a test triggers
happen, so a test's assertions are about its own runs on 2 shared cores.
"""

from __future__ import annotations

import json
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import airflow_client.client as airflow_client
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.import_error_api import ImportErrorApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.api.x_com_api import XComApi
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

from relearn_dev.stack.services import AIRFLOW_USER, Stack, airflow_password
from tests.conftest import ROOT
from tests.integration.traffic import log_traffic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from relearn.config import ModelConfig
    from relearn.settings import Settings

WAIT = 300.0  # seconds for a DAG run on 2 shared cores
TERMINAL = {"success", "failed"}
ONLY_TRIGGERED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


@contextmanager
def running_airflow(
    stack: Stack, executor: str, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Airflow's services (and, for ``celery``, Redis and the workers) on the session's stack."""
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


class Airflow:
    """The REST API through the official client, logged in as the stack's admin."""

    def __init__(self, settings: Settings) -> None:
        base = settings.airflow_url
        request = urllib.request.Request(
            f"{base}/auth/token",
            method="POST",
            data=json.dumps(
                {"username": AIRFLOW_USER, "password": airflow_password(settings)}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.loads(response.read())["access_token"]
        client = airflow_client.ApiClient(
            airflow_client.Configuration(host=base, access_token=token)
        )
        self.dags = DAGApi(client)
        self.runs = DagRunApi(client)
        self.import_errors = ImportErrorApi(client)
        self.task_instances = TaskInstanceApi(client)
        self.xcoms = XComApi(client)

    def dag_ids(self) -> set[str]:
        return {dag.dag_id for dag in self.dags.get_dags(limit=100).dags}

    def unpause(self, dag_id: str) -> None:
        """Wait until the dag-processor has registered ``dag_id``, then let it run."""
        until(f"{dag_id} to be registered", lambda: dag_id in self.dag_ids() or None)
        self.dags.patch_dag(dag_id, DAGPatchBody(is_paused=False))

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        body = TriggerDAGRunPostBody(logical_date=None, conf=conf)
        return self.runs.trigger_dag_run(dag_id, body).dag_run_id

    def wait(self, dag_id: str, run_id: str, timeout: float = WAIT) -> str:
        def probe() -> str | None:
            state = self.runs.get_dag_run(dag_id, run_id).state
            return state.value if state and state.value in TERMINAL else None

        return until(f"{dag_id} run {run_id}", probe, timeout)

    def task_instances_of(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The run's task instances by task id without its group (one model: map index 0)."""
        found = self.task_instances.get_task_instances(dag_id, run_id, limit=100)
        return {
            ti.task_id.rsplit(".", 1)[-1]: ti
            for ti in found.task_instances
            if ti.map_index in (-1, 0)
        }

    def states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {
            task: ti.state.value if ti.state else None
            for task, ti in self.task_instances_of(dag_id, run_id).items()
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = 0) -> Any:
        entry = self.xcoms.get_xcom_entry(
            dag_id, task_id, run_id, "return_value", map_index=map_index, deserialize=True
        )
        return entry.actual_instance.value


def until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


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
