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
