"""The read-only queries behind ``relearn summary``: recent rows of every state table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relearn.store.db import table_exists

if TYPE_CHECKING:
    from collections.abc import Sequence

    from psycopg2.extensions import connection as Connection

# section -> (table, columns, order): tables that later features create; empty until they exist.
_TABLE_SECTIONS: dict[str, tuple[str, str, str]] = {
    "runs": (
        "model_retraining_runs",
        "id, model_name, source, status, model_version, error_message, created_at, "
        "(metrics->'gate'->>'blessed')::boolean AS blessed, "
        "metrics->'gate'->'reasons' AS gate_reasons, metrics->>'outcome' AS outcome",
        "created_at",
    ),
    "requests": (
        "model_retraining_requests",
        "id, model_name, priority, reason, status, retraining_run_id, error_message, created_at",
        "created_at",
    ),
    "drift_reports": (
        "drift_reports",
        "id, model_name, model_version, checked_at AS time, score, verdict, rows, "
        "labelled_rows, drifted_features, performance->>'accuracy' AS accuracy, "
        "performance->>'reference_accuracy' AS reference_accuracy, action, action_reason, "
        "report_uri, retraining_run_id",
        "checked_at",
    ),
    "ab_tests": (
        "ab_tests",
        "id, model_name, champion_version, challenger_version, status, traffic_percent, stages, "
        "retraining_run_id, reason, (SELECT array_agg(d.traffic_after ORDER BY d.decided_at, d.id) "
        "FROM ab_decisions d WHERE d.test_id = ab_tests.id "
        "AND (d.action = 'start' OR d.traffic_after <> d.traffic_before)) AS traffic_path",
        "created_at",
    ),
    "alias_history": (
        "alias_history",
        "model_name, alias, version, changed_at, changed_by, reason",
        "changed_at",
    ),
    "health_checks": (
        "health_checks",
        "model_name, checked_at, status, champion_version",
        "checked_at",
    ),
}


def _rows(
    connection: Connection, table: str, columns: str, order: str, model_names: list[str]
) -> list[dict[str, Any]]:
    if not table_exists(connection, table):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} "
            f"WHERE model_name = ANY(%(models)s::text[]) ORDER BY {order}",
            {"models": model_names},
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_sections(
    connection: Connection, model_names: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every section's rows of ``model_names``, oldest first; a table a later feature creates
    may be absent."""
    return {
        section: _rows(connection, table, columns, order, list(model_names))
        for section, (table, columns, order) in _TABLE_SECTIONS.items()
    }
