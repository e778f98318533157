"""Writes to the prediction log (batched predictions, outcomes) and its overall counts.

Windowed reads live in ``relearn.store.prediction_log``.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from typing import TYPE_CHECKING, Any

from psycopg2.errors import UniqueViolation
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
    # ``features`` as JSON text when the caller has it already (collected rows are serialised
    # once, while being screened).
    features_json: str | None = None


_INSERT = """
INSERT INTO prediction_log (prediction_id, model_name, model_version, unit_id, predicted_at,
    features, predicted_label, confidence, probabilities, latency_ms, served_by)
VALUES %s
ON CONFLICT (prediction_id) DO NOTHING
"""


def nan_as_null(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (features or probabilities) with each NaN (pandas' missing value) as None:
    JSON has no NaN, and Postgres refuses the ``NaN`` token ``json.dumps`` would write."""
    return {
        name: None if isinstance(value, float) and math.isnan(value) else value
        for name, value in values.items()
    }


def insert_predictions(connection: Connection, rows: Sequence[LoggedPrediction]) -> int:
    """Write rows in one statement; a retried batch is harmless (ids are keys)."""
    values = [
        (
            r.prediction_id,
            r.model_name,
            r.model_version,
            r.unit_id,
            r.predicted_at,
            json.dumps(nan_as_null(r.features)),
            r.predicted_label,
            r.confidence,
            json.dumps(nan_as_null(r.probabilities)),
            r.latency_ms,
            r.served_by,
        )
        for r in rows
    ]
    with connection.cursor() as cursor:
        execute_values(cursor, _INSERT, values, page_size=1000)
        return cursor.rowcount


# Rows arrive by COPY (several times faster than a multi-row INSERT). New ids go straight into
# the log; should another writer log one of them meanwhile (a concurrent retry), the batch
# goes through a transaction-local staging table and ON CONFLICT instead.
_COPY_COLUMNS = (
    "prediction_id, model_name, model_version, unit_id, predicted_at, features, "
    "predicted_label, confidence, probabilities, latency_ms, served_by"
)
_STAGING = """
CREATE TEMP TABLE prediction_staging (LIKE prediction_log INCLUDING DEFAULTS) ON COMMIT DROP
"""
_FROM_STAGING = f"""
INSERT INTO prediction_log ({_COPY_COLUMNS})
SELECT {_COPY_COLUMNS} FROM prediction_staging
ON CONFLICT (prediction_id) DO NOTHING
RETURNING prediction_id::text
"""
_NULL = "\\N"
# COPY text format: backslash, tab, newline and carriage return are escaped.
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Read by psycopg2 in pieces of this size (its default, 8 KiB, costs a call per ~40 rows).
_COPY_READ_SIZE = 1 << 20


@dataclass(frozen=True)
class PredictionColumns:
    """Rows for the log column by column, already in the form COPY reads.

    Ids are canonical UUID text, times ISO 8601 text with a zone, ``features`` and
    ``probabilities`` strict JSON text; ``None`` is NULL. Every list has one entry per row.
    Built column-wise by ``relearn.collect`` so a batch never becomes one object per row.
    """

    model_name: str
    prediction_id: list[str]
    model_version: list[str]
    unit_id: list[str | None]
    predicted_at: list[str]
    features: list[str]
    predicted_label: list[str]
    confidence: list[float]
    probabilities: list[str | None]
    latency_ms: list[float | None]
    served_by: list[str]

    def __len__(self) -> int:
        return len(self.prediction_id)

    @cached_property
    def copy_text(self) -> str:
        """The rows in COPY's text format, rendered once: a backfill renders a chunk in its
        screening thread, so the thread writing the previous chunk only waits for Postgres."""
        return _render(self)


def _text(value: str) -> str:
    """A value in COPY's text format (backslash escapes; ``\\N`` is NULL)."""
    return _SPECIAL.sub(lambda match: _ESCAPES[match.group()], value)


def _text_column(values: Sequence[str | None]) -> list[str]:
    """A text column for COPY; one scan of the joined column decides if any value needs escapes."""
    present = [v for v in values if v is not None] if None in values else values
    if _SPECIAL.search("".join(present)):
        return [_NULL if v is None else _text(v) for v in values]
    return [_NULL if v is None else v for v in values] if present is not values else values


def _number_column(values: Sequence[float | None]) -> list[str]:
    if set(map(type, values)) == {float}:  # the usual column: no per-value conversion
        return list(map(float.__repr__, values))
    return [_NULL if v is None else repr(float(v)) for v in values]


def _render(rows: PredictionColumns) -> str:
    columns = (
        rows.prediction_id,
        repeat(_text(rows.model_name)),
        _text_column(rows.model_version),
        _text_column(rows.unit_id),
        rows.predicted_at,
        # JSON text escapes control characters; only its backslashes need COPY's escape.
        _text_column(rows.features),
        _text_column(rows.predicted_label),
        _number_column(rows.confidence),
        _text_column(rows.probabilities),
        _number_column(rows.latency_ms),
        _text_column(rows.served_by),
    )
    lines = list(map("\t".join, zip(*columns, strict=False)))  # the model name repeats
    lines.append("")
    return "\n".join(lines)


def copy_predictions(connection: Connection, rows: PredictionColumns) -> set[str]:
    """Write rows through COPY in the caller's transaction; returns the ids that were new.

    An id already in the log is left as it is (a retried batch is a no-op), so the caller
    can tell new rows from repeats. Ids must be unique within ``rows``. New rows, the common
    case, cost one COPY and no lookup; a batch repeating a known id costs a COPY that stops
    at that row and a pass through a staging table that skips the known ids.
    """
    if not len(rows):
        return set()
    text = io.StringIO(rows.copy_text)
    with connection.cursor() as cursor:
        copy = f"COPY prediction_log ({_COPY_COLUMNS}) FROM STDIN"
        cursor.execute("SAVEPOINT copy_predictions")
        try:
            cursor.copy_expert(copy, text, size=_COPY_READ_SIZE)
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT copy_predictions")
        else:
            cursor.execute("RELEASE SAVEPOINT copy_predictions")
            return set(rows.prediction_id)
        cursor.execute(_STAGING)
        text.seek(0)
        staging = f"COPY prediction_staging ({_COPY_COLUMNS}) FROM STDIN"
        cursor.copy_expert(staging, text, size=_COPY_READ_SIZE)
        cursor.execute(_FROM_STAGING)
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute("DROP TABLE prediction_staging")
        return inserted


_OUTCOMES = """
WITH given (prediction_id, actual_label, outcome_at, model_name) AS (VALUES %s),
attached AS (
    UPDATE prediction_log AS p SET actual_label = g.actual_label, outcome_at = g.outcome_at
    FROM given AS g
    WHERE p.prediction_id = g.prediction_id AND p.model_name = g.model_name
      AND p.actual_label IS NULL AND g.outcome_at >= p.predicted_at
    RETURNING p.prediction_id
)
SELECT g.prediction_id,
       a.prediction_id IS NOT NULL AS attached,
       p.prediction_id IS NOT NULL AS known,
       p.actual_label IS NOT NULL AS labelled
FROM given AS g
LEFT JOIN attached AS a ON a.prediction_id = g.prediction_id
LEFT JOIN prediction_log AS p ON p.prediction_id = g.prediction_id AND p.model_name = g.model_name
"""


@dataclass(frozen=True)
class OutcomeResult:
    """Per given prediction id: attached now, already labelled (first wins), unknown, early."""

    attached: list[UUID]
    already_labelled: list[UUID]
    unknown: list[UUID]
    before_prediction: list[UUID]


def attach_model_outcomes(
    connection: Connection, model_name: str, outcomes: Sequence[tuple[UUID, str, datetime]]
) -> OutcomeResult:
    """Attach actual labels to ``model_name``'s predictions and say what became of each id.

    The first outcome wins (a labelled prediction keeps its label); an outcome dated before
    its prediction is refused; ids that are not this model's predictions are unknown. Ids
    must be unique within ``outcomes``.
    """
    result = OutcomeResult([], [], [], [])
    if not outcomes:
        return result
    values = [(pid, label, at, model_name) for pid, label, at in outcomes]
    with connection.cursor() as cursor:
        rows = execute_values(
            cursor,
            _OUTCOMES,
            values,
            template="(%s::uuid, %s, %s::timestamptz, %s)",
            page_size=len(values),
            fetch=True,
        )
    for prediction_id, attached, known, labelled in rows:
        if attached:
            result.attached.append(prediction_id)
        elif not known:
            result.unknown.append(prediction_id)
        elif labelled:
            result.already_labelled.append(prediction_id)
        else:
            result.before_prediction.append(prediction_id)
    return result


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


def count_predictions(connection: Connection, model_names: Sequence[str] | None = None) -> int:
    """Predictions in the log (of ``model_names``, or of every model)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM prediction_log "
            "WHERE %(m)s::text[] IS NULL OR model_name = ANY(%(m)s::text[])",
            {"m": None if model_names is None else list(model_names)},
        )
        return int(cursor.fetchone()[0])


def accuracy_by_day(
    connection: Connection, model_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
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
            WHERE actual_label IS NOT NULL
              AND (%(m)s::text[] IS NULL OR model_name = ANY(%(m)s::text[]))
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            {"m": None if model_names is None else list(model_names)},
        )
        return [
            {"model": m, "day": d, "labelled": n, "accuracy": round(a, 4)}
            for m, d, n, a in cursor.fetchall()
        ]
