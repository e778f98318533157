"""Writes to the prediction log (batched predictions, outcomes) and its overall counts.

Windowed reads live in ``relearn.store.prediction_log``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg2.extras import execute_values

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime
    from uuid import UUID

    from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class LoggedPrediction:
    """One row of the prediction log as the serving layer writes it."""

    prediction_id: UUID
    model_name: str
    model_version: str
    unit_id: str | None
    predicted_at: datetime
    features: dict[str, Any]
    predicted_label: str
    confidence: float
    probabilities: dict[str, float]
    latency_ms: float
    served_by: str


_INSERT = """
INSERT INTO prediction_log (prediction_id, model_name, model_version, unit_id, predicted_at,
    features, predicted_label, confidence, probabilities, latency_ms, served_by)
VALUES %s
ON CONFLICT (prediction_id) DO NOTHING
"""


def insert_predictions(connection: Connection, rows: Sequence[LoggedPrediction]) -> int:
    """Write rows in one statement; a retried batch is harmless (ids are keys)."""
    values = [
        (
            r.prediction_id,
            r.model_name,
            r.model_version,
            r.unit_id,
            r.predicted_at,
            json.dumps(r.features),
            r.predicted_label,
            r.confidence,
            json.dumps(r.probabilities),
            r.latency_ms,
            r.served_by,
        )
        for r in rows
    ]
    with connection.cursor() as cursor:
        execute_values(cursor, _INSERT, values, page_size=1000)
        return cursor.rowcount


_ATTACH = """
UPDATE prediction_log AS p SET actual_label = v.actual_label, outcome_at = v.outcome_at
FROM (VALUES %s) AS v (prediction_id, actual_label, outcome_at)
WHERE p.prediction_id = v.prediction_id::uuid AND p.actual_label IS NULL
"""


def attach_outcomes(connection: Connection, outcomes: Iterable[tuple[UUID, str, datetime]]) -> int:
    """Attach actual labels; the first outcome for a prediction wins, so replays are no-ops."""
    values = [(str(pid), label, at) for pid, label, at in outcomes]
    if not values:
        return 0
    with connection.cursor() as cursor:
        execute_values(cursor, _ATTACH, values, template="(%s, %s, %s::timestamptz)")
        return cursor.rowcount


def count_predictions(connection: Connection, model_name: str | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM prediction_log WHERE %(m)s::text IS NULL OR model_name = %(m)s",
            {"m": model_name},
        )
        return int(cursor.fetchone()[0])


def accuracy_by_day(connection: Connection, model_name: str | None = None) -> list[dict[str, Any]]:
    """Labelled predictions per model and UTC day with their accuracy, oldest first.

    The day is formatted in SQL: a producer's timestamp in year 40000 or BC is no Python date.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT model_name, to_char(predicted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                   count(*) AS labelled,
                   avg((predicted_label = actual_label)::int)::float AS accuracy
            FROM prediction_log
            WHERE actual_label IS NOT NULL AND (%(m)s::text IS NULL OR model_name = %(m)s)
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            {"m": model_name},
        )
        return [
            {"model": m, "day": d, "labelled": n, "accuracy": round(a, 4)}
            for m, d, n, a in cursor.fetchall()
        ]
