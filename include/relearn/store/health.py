"""The ``health_checks`` table: one row per model and health-check run.

Since migration 0013 a row holds the score, its three parts and the figures they came from as
columns (``HealthCheckRow``); ``issues`` is a JSON list of ``{"part", "issue",
"recommendation"}``; ``details`` keeps the raw window statistics for the curious.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class HealthCheckRow:
    """One stored check: what the page, ``/metrics`` and the alerts read."""

    model_name: str
    checked_at: datetime
    window_start: datetime | None
    status: str
    champion_version: str | None
    score: float | None
    availability: float | None
    error_score: float | None
    latency_score: float | None
    predictions: int | None
    usual_predictions: float | None
    labelled: int | None
    accuracy: float | None
    reference_accuracy: float | None
    latency_p95_ms: float | None
    latency_budget_ms: float | None
    # [{"part": ..., "issue": ..., "recommendation": ...}]
    issues: list[dict[str, str]]
    trigger_key: str | None


_COLUMNS = (
    "model_name, checked_at, window_start, status, champion_version, score, availability, "
    "error_score, latency_score, predictions, usual_predictions, labelled, accuracy, "
    "reference_accuracy, latency_p95_ms, latency_budget_ms, issues, trigger_key"
)


def save_check(connection: Connection, row: HealthCheckRow, details: dict[str, Any]) -> None:
    """Insert the check, or overwrite the one of the same ``trigger_key`` (a retried task)."""
    values = asdict(row)
    values["issues"] = json.dumps(row.issues)
    values["details"] = json.dumps(details)
    names = [*values]
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}" for name in names if name not in ("model_name", "trigger_key")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO health_checks ({', '.join(names)}) "
            f"VALUES ({', '.join(f'%({name})s' for name in names)}) "
            f"ON CONFLICT (model_name, trigger_key) DO UPDATE SET {updates}",
            values,
        )


def latest_checks(connection: Connection, model_names: list[str]) -> dict[str, HealthCheckRow]:
    """Each model's latest check (one backward index step per model); absent if none."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT h.* FROM unnest(%s::text[]) AS m(name) CROSS JOIN LATERAL ("
            f" SELECT {_COLUMNS} FROM health_checks WHERE model_name = m.name"
            " ORDER BY checked_at DESC LIMIT 1) AS h",
            (model_names,),
        )
        rows = [HealthCheckRow(*values) for values in cursor.fetchall()]
    return {row.model_name: row for row in rows}


def get_check(connection: Connection, model_name: str, trigger_key: str) -> HealthCheckRow | None:
    """The check one run (``trigger_key``) wrote for the model."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM health_checks WHERE model_name = %s AND trigger_key = %s",
            (model_name, trigger_key),
        )
        values = cursor.fetchone()
    return HealthCheckRow(*values) if values else None


def check_history(
    connection: Connection, model_name: str, *, since: datetime, limit: int = 24 * 31
) -> list[HealthCheckRow]:
    """The model's checks since ``since``, oldest first (the page's history)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM health_checks WHERE model_name = %s AND checked_at >= %s"
            " ORDER BY checked_at DESC LIMIT %s",
            (model_name, since, limit),
        )
        rows = [HealthCheckRow(*values) for values in cursor.fetchall()]
    return rows[::-1]
