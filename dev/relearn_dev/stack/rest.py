"""The running stack's Airflow as a user sees it: its REST API through the official
``apache-airflow-client``, logged in as the stack's admin (end-to-end tests, ``bench/scale.py``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import airflow_client.client as airflow_client
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.import_error_api import ImportErrorApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.api.x_com_api import XComApi
from airflow_client.client.exceptions import ServiceException
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

from relearn_dev.stack.services import AIRFLOW_USER, airflow_password

if TYPE_CHECKING:
    from collections.abc import Callable

    from relearn.settings import Settings

WAIT = 300.0  # seconds for a DAG run on 2 shared cores
TERMINAL = {"success", "failed"}
# Only the runs a caller triggers: no timetable creates runs of its own meanwhile.
ONLY_TRIGGERED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


def until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """``probe()``'s first non-None value, polled every second; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class AirflowRest:
    """The REST API (``/api/v2``) of the stack's api-server."""

    def __init__(self, settings: Settings) -> None:
        base = settings.airflow_url
        credentials = {"username": AIRFLOW_USER, "password": airflow_password(settings)}
        request = urllib.request.Request(
            f"{base}/auth/token",
            method="POST",
            data=json.dumps(credentials).encode(),
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
        """The run's final state; a poll the api-server fails (5xx: its database connection
        lost under load, ...) is polled again, the last such error named on timeout."""
        errors: list[ServiceException] = []

        def probe() -> str | None:
            try:
                state = self.runs.get_dag_run(dag_id, run_id).state
            except ServiceException as error:
                errors.append(error)
                return None
            return state.value if state and state.value in TERMINAL else None

        try:
            return until(f"{dag_id} run {run_id}", probe, timeout)
        except AssertionError as timed_out:
            if errors:
                raise AssertionError(f"{timed_out} (last server error: {errors[-1]})") from None
            raise

    def task_instances_of(self, dag_id: str, run_id: str, map_index: int = 0) -> dict[str, Any]:
        """The run's task instances by task id without its group, unmapped ones and those of
        ``map_index``."""
        found = self.task_instances.get_task_instances(dag_id, run_id, limit=1000)
        return {
            ti.task_id.rsplit(".", 1)[-1]: ti
            for ti in found.task_instances
            if ti.map_index in (-1, map_index)
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
