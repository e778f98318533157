"""Ratings of logged predictions (the ``feedback`` table): one per prediction, first wins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg2.extras import execute_values

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class FeedbackResult:
    """Per given prediction id: recorded now, already rated, or not a prediction of the model."""

    recorded: list[UUID]
    already_rated: list[UUID]
    unknown: list[UUID]


_RECORD = """
WITH given (prediction_id, rating, comment, model_name) AS (VALUES %s),
recorded AS (
    INSERT INTO feedback (prediction_id, rating, comment)
    SELECT g.prediction_id, g.rating, g.comment
    FROM given AS g JOIN prediction_log AS p
      ON p.prediction_id = g.prediction_id AND p.model_name = g.model_name
    ON CONFLICT (prediction_id) DO NOTHING
    RETURNING prediction_id
)
SELECT g.prediction_id, r.prediction_id IS NOT NULL, p.prediction_id IS NOT NULL
FROM given AS g
LEFT JOIN recorded AS r ON r.prediction_id = g.prediction_id
LEFT JOIN prediction_log AS p ON p.prediction_id = g.prediction_id AND p.model_name = g.model_name
"""


def record_feedback(
    connection: Connection, model_name: str, ratings: Sequence[tuple[UUID, int, str | None]]
) -> FeedbackResult:
    """Store ratings (1-5) with optional notes; ids must be unique within ``ratings``."""
    result = FeedbackResult([], [], [])
    if not ratings:
        return result
    values = [(pid, rating, comment, model_name) for pid, rating, comment in ratings]
    with connection.cursor() as cursor:
        rows = execute_values(
            cursor,
            _RECORD,
            values,
            template="(%s::uuid, %s::smallint, %s::text, %s)",
            page_size=len(values),
            fetch=True,
        )
    for prediction_id, recorded, known in rows:
        if recorded:
            result.recorded.append(prediction_id)
        elif known:
            result.already_rated.append(prediction_id)
        else:
            result.unknown.append(prediction_id)
    return result
