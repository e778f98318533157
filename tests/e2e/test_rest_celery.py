"""The CeleryExecutor topology for real: Redis, a worker for the default queue (127.0.0.1) and
one for the training queue (127.0.0.2), the run triggered and read through the REST API.

One ``auto_reinforcement`` run shows both things at once: where each task ran (queue and
hostname of every task instance), and what a training worker killed with SIGKILL in the middle
of ``train`` leaves behind — Airflow's heartbeat timeout fails the orphaned try, the retry runs
on the restarted worker, and the run ends with one completed retraining row and exactly one
new model version.
"""

from __future__ import annotations

import os
import signal

import pytest

from relearn.registry import registry_client
from relearn.store.db import transaction
from relearn.store.runs import find_run
from relearn_airflow.queues import DEFAULT_QUEUE, TRAINING_QUEUE
from relearn_dev.stack.rest import AirflowRest, until
from tests.e2e.rest import errors_to_learn_from, running_airflow

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = "churn"
DAG_ID = "auto_reinforcement"
HEAVY = {"prepare_data", "train", "validate_model"}
WORKER_ADDRESS = {DEFAULT_QUEUE: "127.0.0.1", TRAINING_QUEUE: "127.0.0.2"}
# A task whose worker died is failed after this many seconds without a heartbeat (300 s by
# default); the retry then waits for the DAGs' retry delay (2 minutes for this DAG), which the
# documented RELEARN_RETRY_DELAY_SECONDS shortens for every DAG.
QUICK_RECOVERY = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "RELEARN_RETRY_DELAY_SECONDS": "5",
}


@pytest.fixture(scope="module")
def celery(stack, champion, model_cfg, database_url, tracking_uri):
    errors_to_learn_from(model_cfg, database_url, tracking_uri)
    with running_airflow(stack, "celery", QUICK_RECOVERY) as airflow:
        yield airflow


def _versions(tracking_uri: str) -> set[str]:
    found = registry_client(tracking_uri).search_model_versions(f"name='{MODEL}'")
    return {version.version for version in found}


def test_training_survives_a_killed_worker_on_its_own_queue(celery, database_url, tracking_uri):
    airflow = AirflowRest(celery.settings)
    worker = celery.workers[TRAINING_QUEUE]
    before = _versions(tracking_uri)
    airflow.unpause(DAG_ID)
    # `train` runs for many seconds (imports, fit, MLflow logging): polled every second, it is
    # seen running well before it ends.
    run_id = airflow.trigger(DAG_ID, {"model": MODEL, "lookback_days": 2, "epochs": 5})

    def training() -> object | None:
        ti = airflow.task_instances_of(DAG_ID, run_id).get("train")
        return ti if ti is not None and ti.state and ti.state.value == "running" else None

    first = until("train to run", training)
    assert (first.queue, first.hostname) == (TRAINING_QUEUE, WORKER_ADDRESS[TRAINING_QUEUE])
    assert first.try_number == 1
    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGKILL)  # the worker, its pool and the task process
    worker.process.wait(10)
    celery.supervisor.restart(worker)

    assert airflow.wait(DAG_ID, run_id, timeout=420) == "success", airflow.states(DAG_ID, run_id)
    tasks = airflow.task_instances_of(DAG_ID, run_id)
    ran = {task: ti for task, ti in tasks.items() if ti.state and ti.state.value == "success"}
    assert HEAVY | {"record_run", "register"} <= set(ran)
    for task, ti in ran.items():
        queue = TRAINING_QUEUE if task in HEAVY else DEFAULT_QUEUE
        assert (ti.queue, ti.hostname) == (queue, WORKER_ADDRESS[queue]), task
    assert tasks["train"].try_number == 2  # the killed try failed, the retry succeeded

    with transaction(database_url) as connection:
        row = find_run(connection, run_id, MODEL)
    assert row is not None and row.status == "completed"
    assert _versions(tracking_uri) - before == {row.model_version}
