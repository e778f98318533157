"""Users' runs on the real scheduler (LocalExecutor), driven through the REST API with the
official ``apache-airflow-client``: no ``dag.test()``, no direct call into the DAG files."""

from __future__ import annotations

import pytest
from airflow_client.client.exceptions import ApiException

from relearn.store.db import transaction
from relearn.store.requests import cancel_request, get_request
from relearn.store.runs import find_run
from relearn_dev.stack.rest import AirflowRest, until
from tests.conftest import ROOT
from tests.e2e.rest import errors_to_learn_from, running_airflow

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = "churn"
STEPS = ("record_run", "prepare_data", "train", "validate_model", "register")


@pytest.fixture(scope="module")
def airflow(stack, champion, model_cfg, database_url, tracking_uri):
    errors_to_learn_from(model_cfg, database_url, tracking_uri)
    with running_airflow(stack, "local"):
        yield AirflowRest(stack.settings)


def test_every_dag_of_the_bundle_is_listed_without_import_errors(airflow):
    bundle = {path.stem for path in (ROOT / "dags").glob("*.py")}
    until("every DAG file to be parsed", lambda: bundle <= airflow.dag_ids() or None)
    assert airflow.import_errors.get_import_errors().total_entries == 0


def test_triggered_runs_finish_with_their_tasks_and_xcoms(airflow, database_url):
    for dag_id in ("auto_reinforcement", "drift_monitor", "request_retraining"):
        airflow.unpause(dag_id)
    runs = {
        "auto_reinforcement": airflow.trigger(
            "auto_reinforcement", {"model": MODEL, "lookback_days": 2, "epochs": 3}
        ),
        "drift_monitor": airflow.trigger(
            "drift_monitor", {"model": MODEL, "window_hours": 24, "dry_run": True}
        ),
        "request_retraining": airflow.trigger(
            "request_retraining", {"model": MODEL, "reason": "e2e", "priority": "high"}
        ),
    }
    finished = {dag_id: airflow.wait(dag_id, run_id) for dag_id, run_id in runs.items()}
    states = {dag_id: airflow.states(dag_id, run_id) for dag_id, run_id in runs.items()}
    assert finished == dict.fromkeys(runs, "success"), states

    reinforcement = runs["auto_reinforcement"]
    assert {states["auto_reinforcement"][task] for task in STEPS} == {"success"}
    retraining_run_id = airflow.xcom("auto_reinforcement", reinforcement, "retrain.record_run")
    with transaction(database_url) as connection:
        row = find_run(connection, reinforcement, MODEL)
    assert row is not None and str(row.id) == retraining_run_id
    assert row.status == "completed"
    register = airflow.xcom("auto_reinforcement", reinforcement, "retrain.register")
    assert register["version"] == row.model_version

    drift = airflow.xcom("drift_monitor", runs["drift_monitor"], "monitor.check_drift")
    assert drift is not None

    request_id = airflow.xcom(
        "request_retraining", runs["request_retraining"], "create_request", map_index=-1
    )
    with transaction(database_url) as connection:
        request = get_request(connection, request_id)
        assert (request.model_name, request.priority) == (MODEL, "high")
        cancel_request(connection, request_id)  # no later test's manual_retraining takes it


def test_a_bad_conf_is_rejected_at_trigger_time(airflow):
    before = airflow.runs.get_dag_runs("auto_reinforcement").total_entries
    with pytest.raises(ApiException) as rejected:
        airflow.trigger("auto_reinforcement", {"model": MODEL, "lookback_days": "a week"})
    assert rejected.value.status == 400
    assert "lookback_days" in (rejected.value.body or "")
    assert airflow.runs.get_dag_runs("auto_reinforcement").total_entries == before
