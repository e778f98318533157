"""The retention DAG runs for real (``dag.test()`` on the Postgres metadata DB)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from relearn.store.db import transaction
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def _old_prediction(database_url: str, days: int) -> str:
    prediction_id = str(uuid.uuid4())
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO prediction_log (prediction_id, model_name, model_version, "
            "predicted_at, features, predicted_label, confidence) "
            "VALUES (%s, 'churn', '1', %s, %s, 'no', 0.9)",
            (prediction_id, datetime.now(UTC) - timedelta(days=days), json.dumps({"x": 1})),
        )
    return prediction_id


def _present(database_url: str, prediction_id: str) -> bool:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM prediction_log WHERE prediction_id = %s", (prediction_id,))
        return cursor.fetchone() is not None


def test_retention_dag_dry_run_then_expiry(database_url):
    from airflow.dag_processing.dagbag import DagBag

    old = _old_prediction(database_url, 200)
    recent = _old_prediction(database_url, 10)
    dag = DagBag(dag_folder=str(ROOT / "dags" / "retention.py")).dags["retention"]

    dry = dag.test(run_conf={"dry_run": True})
    assert dry.state == "success"
    assert _present(database_url, old)

    # Explicit: in one process dag.test() keeps the previous run's conf in the DAG's params.
    run = dag.test(run_conf={"dry_run": False})
    assert run.state == "success"
    assert not _present(database_url, old) and _present(database_url, recent)
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_count, status FROM prediction_archives WHERE model_name = 'churn' "
            "AND trigger_key = %s AND day = %s",
            (run.run_id, (datetime.now(UTC) - timedelta(days=200)).date()),
        )
        # Other tests' traffic may share that day: at least ours was archived, then deleted.
        [(rows, status)] = cursor.fetchall()
        assert rows >= 1 and status == "deleted"
