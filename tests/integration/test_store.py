from __future__ import annotations

import uuid

import psycopg2
import pytest

from relearn.store.db import transaction
from relearn.store.migrations import available_migrations, current_version, migrate

pytestmark = pytest.mark.integration


def test_migrations_are_applied_once_and_rerun_is_a_noop(database_url: str) -> None:
    assert current_version(database_url) == available_migrations()[-1].version
    assert migrate(database_url) == []
    assert migrate(database_url) == []


def test_seed_schema_checks_reject_unknown_values(database_url: str) -> None:
    with pytest.raises(psycopg2.errors.CheckViolation), transaction(database_url) as connection:
        connection.cursor().execute(
            "INSERT INTO model_retraining_runs (id, model_name, source, status)"
            " VALUES (%s, 'churn', 'sometimes', 'running')",
            (uuid.uuid4(),),
        )
    with pytest.raises(psycopg2.errors.CheckViolation), transaction(database_url) as connection:
        connection.cursor().execute(
            "INSERT INTO model_retraining_requests (model_name, priority)"
            " VALUES ('churn', 'urgent')"
        )


def test_labelled_window_query_reads_a_window_index(database_url: str) -> None:
    """Either (model_name, predicted_at) index serves it; which one depends on statistics."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT * FROM prediction_log WHERE model_name = 'churn'"
            " AND actual_label IS NOT NULL AND predicted_at >= now() - interval '7 days'"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert "prediction_log_labelled_window" in plan or "prediction_log_window" in plan, plan


def test_a_missing_feature_value_is_logged_as_json_null(database_url: str) -> None:
    """The Predictor's feature frame holds NaN for a missing value: it must be logged as
    null, not refused by Postgres as the invalid JSON token ``NaN``."""
    from datetime import UTC, datetime

    from relearn.store.predictions import LoggedPrediction, insert_predictions

    prediction_id = uuid.uuid4()
    row = LoggedPrediction(
        prediction_id=prediction_id,
        model_name="churn",
        model_version="1",
        unit_id=None,
        predicted_at=datetime(2026, 9, 1, tzinfo=UTC),
        features={"tenure_months": float("nan"), "region": float("nan"), "contract": "annual"},
        predicted_label="no",
        confidence=0.8,
        probabilities={"no": 0.8, "yes": 0.2},
        latency_ms=1.0,
        served_by="champion",
    )
    with transaction(database_url) as connection:
        assert insert_predictions(connection, [row]) == 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT features FROM prediction_log WHERE prediction_id = %s",
                (str(prediction_id),),
            )
            assert cursor.fetchone()[0] == {
                "tenure_months": None,
                "region": None,
                "contract": "annual",
            }
