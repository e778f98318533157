"""Load the part of the prediction log a retraining run needs, filtered in SQL.

A week of a busy model is millions of rows; a run only needs three slices of it:

- ``error``: labelled mistakes at or above the confidence threshold (the lessons);
- ``replay``: a deterministic sample of correct predictions (so the model does not forget);
- ``holdout``: the most recent rows of a fixed hash bucket of the window, never trained on,
  on which candidate and champion are compared with the window's natural class mix.

Rows with an out-of-range confidence are loaded with the errors on purpose, so validation
quarantines them with a reason instead of SQL silently dropping them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig

ERROR, REPLAY, HOLDOUT = "error", "replay", "holdout"
BASE_COLUMNS = [
    "prediction_id",
    "model_version",
    "predicted_at",
    "outcome_at",
    "predicted_label",
    "actual_label",
    "confidence",
]
_BUCKETS = 10_000

_WINDOW = """
    model_name = %(model)s AND actual_label IS NOT NULL
    AND predicted_at >= %(since)s AND predicted_at < %(until)s
"""
_IN_HOLDOUT = (
    "(abs(hashtextextended(prediction_id::text, %(seed)s)) %% 10000) < %(holdout_buckets)s"
)
# Ids as text: parsing 200k UUID objects only to turn them back into strings costs a second.
_SELECT = (
    "SELECT prediction_id::text, "
    + ", ".join(BASE_COLUMNS[1:])
    + ", features FROM prediction_log WHERE "
)

_QUERIES = {
    # In Postgres NaN sorts above every number, so NaN confidences land here too.
    ERROR: _SELECT + _WINDOW + f"AND NOT {_IN_HOLDOUT}"
    " AND predicted_label IS DISTINCT FROM actual_label"
    " AND (confidence >= %(threshold)s OR confidence < 0)"
    " ORDER BY predicted_at, prediction_id",
    REPLAY: _SELECT + _WINDOW + f"AND NOT {_IN_HOLDOUT}"
    " AND predicted_label = actual_label"
    " ORDER BY hashtextextended(prediction_id::text, %(seed)s) LIMIT %(limit)s",
    HOLDOUT: _SELECT + _WINDOW + f"AND {_IN_HOLDOUT}"
    " ORDER BY predicted_at DESC, prediction_id LIMIT %(limit)s",
}


def load_window(
    connection: Connection,
    model_cfg: ModelConfig,
    *,
    since: datetime,
    until: datetime,
    confidence_threshold: float,
    replay_ratio: float,
    holdout_fraction: float,
    max_holdout_rows: int,
    seed: int,
) -> pd.DataFrame:
    """The error, replay and holdout rows of ``[since, until)`` with a ``role`` column.

    Features are expanded into one column per key of the logged JSON, raw (a producer's
    string in a numeric feature stays a string for validation to report).
    """
    import pandas as pd

    params = {
        "model": model_cfg.name,
        "since": since,
        "until": until,
        "seed": seed,
        "threshold": confidence_threshold,
        "holdout_buckets": round(holdout_fraction * _BUCKETS),
    }
    errors = _fetch(connection, ERROR, params)
    replay_limit = math.ceil(replay_ratio * len(errors))
    replay = _fetch(connection, REPLAY, {**params, "limit": replay_limit}) if replay_limit else []
    holdout = _fetch(connection, HOLDOUT, {**params, "limit": max_holdout_rows})
    rows = errors + replay + holdout
    roles = [ERROR] * len(errors) + [REPLAY] * len(replay) + [HOLDOUT] * len(holdout)
    base = pd.DataFrame([row[:-1] for row in rows], columns=BASE_COLUMNS)
    base["confidence"] = base["confidence"].astype("float64")
    base["predicted_at"] = pd.to_datetime(base["predicted_at"], utc=True)
    base["outcome_at"] = pd.to_datetime(base["outcome_at"], utc=True)
    features = pd.DataFrame.from_records([row[-1] for row in rows], index=base.index)
    frame = pd.concat([base, features], axis=1)
    frame["role"] = roles
    return frame


def _fetch(connection: Connection, role: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_QUERIES[role], params)
        return cursor.fetchall()
