"""Windowed reads of the prediction log: drift and health windows, and what every reader shares.

The retraining window is read as typed columns by ``relearn.store.retraining_window``.

The log is written by other teams' services, so a row holds anything Postgres accepts: a
``features`` document that is an array, a string, ``null`` or a number, keys named like
base columns, numbers too large for a float, NaN or infinite confidences, timestamps a
Python ``datetime`` cannot hold. Every reader here is total:

- only the configured features are read, each as its JSON type and text (never by decoding
  the whole document, never trusting the type), and ``decode_feature`` turns them into
  Python values per row without raising;
- ``outcome_at`` is clamped into the range pandas can hold (far past or future stays past or
  future), so a row is judged instead of breaking the fetch;
- the retraining window keeps bad rows (validation quarantines them with a reason); the drift
  and health windows leave out rows no statistic can use (``_SOUND``) and count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from relearn.config import FeatureType
from relearn.store.columns import LOG_COLUMNS

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

    from relearn.config import Feature, ModelConfig

BASE_COLUMNS = list(LOG_COLUMNS)
# The JSON type of the whole ``features`` document (validation wants "object").
FEATURES_TYPE = "features:json_type"

# A row the drift and health statistics can use: known labels, a confidence in [0, 1] (NaN
# sorts above 1 in Postgres), an object of features, an outcome not before the prediction.
_SOUND = """
    jsonb_typeof(features) = 'object'
    AND confidence >= 0 AND confidence <= 1
    AND predicted_label = ANY(%(classes)s)
    AND (actual_label IS NULL OR actual_label = ANY(%(classes)s))
    AND (outcome_at IS NULL OR outcome_at >= predicted_at)
"""


def _feature_columns(model_cfg: ModelConfig) -> sql.Composable:
    """Two columns per configured feature: its JSON type and its text (NULL if absent)."""
    columns = []
    for feature in model_cfg.features:
        key = sql.Literal(feature.name)
        columns.append(
            sql.SQL(
                "CASE WHEN jsonb_typeof(features) = 'object' THEN jsonb_typeof(features -> {key}) "
                "END, CASE WHEN jsonb_typeof(features) = 'object' THEN features ->> {key} END"
            ).format(key=key)
        )
    return sql.SQL(", ").join(columns)


def decode_feature(feature: Feature, json_type: str | None, text: str | None) -> Any:
    """One feature value as logged: never raises, whatever the producer wrote.

    Numeric: a JSON number is a float (``inf`` when too large for one); anything else keeps
    a value validation rejects (a ``bool`` for a boolean, the text otherwise). Categorical:
    the text, a JSON boolean spelled as the configuration and the collection API spell it
    (``True``/``False``, Python's text of a bool). Missing or ``null``: ``None``.
    """
    if json_type is None or json_type == "null" or text is None:
        return None
    if feature.type is FeatureType.CATEGORICAL:
        return str(text == "true") if json_type == "boolean" else text
    if json_type == "number":
        return float(text)  # float() of a decimal string overflows to inf, never raises
    if json_type == "boolean":
        return text == "true"
    return text


def _decode_features(model_cfg: ModelConfig, values: tuple[Any, ...]) -> list[Any]:
    """The configured features of one row from its ``_feature_columns`` pairs."""
    return [
        decode_feature(feature, values[2 * i], values[2 * i + 1])
        for i, feature in enumerate(model_cfg.features)
    ]


@dataclass(frozen=True)
class DriftRows:
    """A drift window: sound rows (features, predicted, confidence, actual) and how many of
    the version's rows in the window were left out as unsound."""

    rows: list[list[Any]]
    excluded: int


def drift_rows(
    connection: Connection,
    model_cfg: ModelConfig,
    version: str,
    *,
    since: datetime,
    until: datetime,
) -> DriftRows:
    """Sound predictions of ``version`` in ``[since, until)``, features decoded per row."""
    params = {
        "model": model_cfg.name,
        "version": str(version),
        "since": since,
        "until": until,
        "classes": list(model_cfg.classes),
    }
    where = sql.SQL(
        "model_name = %(model)s AND model_version = %(version)s "
        "AND predicted_at >= %(since)s AND predicted_at < %(until)s"
    )
    query = sql.SQL(
        "SELECT {features}, predicted_label, confidence, actual_label, predicted_at "
        "FROM prediction_log "
        "WHERE {where} AND {sound}"
    ).format(features=_feature_columns(model_cfg), where=where, sound=sql.SQL(_SOUND))
    count = sql.SQL("SELECT count(*) FROM prediction_log WHERE {where} AND NOT ({sound})").format(
        where=where, sound=sql.SQL(_SOUND)
    )
    width = 2 * len(model_cfg.features)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = [[*_decode_features(model_cfg, r[:width]), *r[width:]] for r in cursor.fetchall()]
        cursor.execute(count, params)
        excluded = int(cursor.fetchone()[0])
    return DriftRows(rows, excluded)


def window_stats(
    connection: Connection,
    model_cfg: ModelConfig,
    champion_version: str | None,
    *,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """Volume, labelled share, accuracy and confidence of the champion's own sound rows in
    ``[since, until)`` (not the challenger arm's, not an earlier champion's), and how many
    of its rows were left out as unsound."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE {_SOUND}),
                   count(actual_label) FILTER (WHERE {_SOUND}),
                   avg((predicted_label = actual_label)::int) FILTER (WHERE {_SOUND})::float,
                   avg(confidence) FILTER (WHERE {_SOUND})::float,
                   max(predicted_at) FILTER (WHERE {_SOUND}),
                   count(*) FILTER (WHERE NOT ({_SOUND}))
            FROM prediction_log
            WHERE model_name = %(model)s AND served_by = 'champion'
              AND model_version = %(version)s
              AND predicted_at >= %(since)s AND predicted_at < %(until)s
            """,
            {
                "model": model_cfg.name,
                "version": champion_version,
                "since": since,
                "until": until,
                "classes": list(model_cfg.classes),
            },
        )
        total, labelled, accuracy, confidence, last, excluded = cursor.fetchone()
    return {
        "predictions": total,
        "labelled": labelled,
        "accuracy": accuracy,
        "mean_confidence": confidence,
        "last_prediction_at": last.isoformat() if last else None,
        "excluded": excluded,
    }
