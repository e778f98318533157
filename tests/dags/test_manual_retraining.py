"""A request filed through the UI's DAG becomes exactly one manual retraining run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from relearn.store.db import transaction
from relearn.store.requests import get_request
from relearn.store.runs import find_run
from tests.conftest import ROOT
from tests.integration.traffic import drop_feature, log_traffic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dags(stack):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    return bag.dags["request_retraining"], bag.dags["manual_retraining"]


def _file_request(request_dag, **conf) -> str:
    run = request_dag.test(run_conf={"model": "churn", **conf})
    assert run.state == "success"
    [ti] = run.get_task_instances()
    return ti.xcom_pull(task_ids="create_request")


def _serve(manual_dag, end: datetime):
    run = manual_dag.test(logical_date=end)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run, states


def test_request_becomes_a_completed_run_linked_both_ways(
    dags, champion, model_cfg, database_url, tracking_uri
):
    request_dag, manual_dag = dags
    end = datetime(2026, 5, 10, tzinfo=UTC)
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=end - timedelta(days=3),
        end=end,
        concept_shift=1.0,
        seed=31,
    )
    # A producer's INSERT for a model that is not configured, older and more urgent: before,
    # it stayed pending forever; now the sensor fails it and serves the next one.
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO model_retraining_requests (model_name, priority) "
            "VALUES ('Churn', 'high') RETURNING id"
        )
        misspelt_id = str(cursor.fetchone()[0])
    requester = uuid.uuid4()
    request_id = _file_request(
        request_dag, reason="missed churners", priority="high", requested_by=str(requester)
    )
    run, states = _serve(manual_dag, end)
    assert run.state == "success", states
    assert states["wait_for_request"] == states["close_request"] == "success"
    with transaction(database_url) as connection:
        request = get_request(connection, request_id)
        row = find_run(connection, run.run_id, model_cfg.name)
        misspelt = get_request(connection, misspelt_id)
    assert (misspelt.status, misspelt.error_message) == (
        "failed",
        "unknown model 'Churn' (configured: churn, credit_risk)",
    )
    assert (request.status, request.attempts) == ("completed", 1)
    assert request.retraining_run_id == row.id and str(row.params["request_id"]) == request_id
    assert (row.source, row.status) == ("manual", "completed")
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT triggered_by, request_id FROM model_retraining_runs WHERE id = %s", (row.id,)
        )
        assert cursor.fetchone() == (requester, uuid.UUID(request_id))


def test_request_whose_run_fails_is_failed_with_the_reason(
    dags, champion, model_cfg, database_url, tracking_uri
):
    request_dag, manual_dag = dags
    end = datetime(2026, 5, 20, tzinfo=UTC)
    log_traffic(
        model_cfg, database_url, tracking_uri, start=end - timedelta(days=7), end=end, seed=32
    )
    drop_feature(database_url, "region", start=end - timedelta(days=7), end=end)
    request_id = _file_request(request_dag, reason="will fail")
    run, states = _serve(manual_dag, end)
    # close_request records the outcome, then fails too, so the DAG run shows the failure.
    assert run.state == "failed"
    assert states["prepare_data"] == states["close_request"] == "failed"
    with transaction(database_url) as connection:
        request = get_request(connection, request_id)
    assert request.status == "failed"
    assert "feature column 'region' is missing" in request.error_message


def test_unknown_model_request_is_refused_at_trigger_time(dags):
    """The ``model`` Param lists the configured models: ``nope`` never becomes a run."""
    from airflow.sdk.exceptions import ParamValidationError

    request_dag, _ = dags
    with pytest.raises(ParamValidationError, match="model"):
        request_dag.test(run_conf={"model": "nope"})
