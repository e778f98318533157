"""Load the part of the prediction log a retraining run needs, filtered in SQL.

A week of a busy model is millions of rows; a run only needs three slices of it:

- ``error``: labelled mistakes at or above the confidence threshold (the lessons);
- ``replay``: a deterministic sample of correct predictions (so the model does not forget);
- ``holdout``: the most recent rows of a fixed hash bucket of the window, never trained on,
  on which candidate and champion are compared with the window's natural class mix.

The queries live in ``relearn.store.prediction_log``; rows come back with their features
decoded per row (never raising), and bad ones are kept for validation to quarantine with a
reason instead of SQL silently dropping them or one of them failing the run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from relearn.store.prediction_log import (
    BASE_COLUMNS,
    ERROR,
    FEATURES_TYPE,
    HOLDOUT,
    HOLDOUT_BUCKETS,
    REPLAY,
    retraining_rows,
)

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig

__all__ = ["ERROR", "HOLDOUT", "REPLAY", "load_window"]


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

    Columns: ``BASE_COLUMNS``, ``FEATURES_TYPE`` (the JSON type of the logged document), one
    column per configured feature that any row has, as logged (a producer's string in a
    numeric feature stays a string for validation to report), ``role``.
    """
    params = {
        "model": model_cfg.name,
        "since": since,
        "until": until,
        "seed": seed,
        "threshold": confidence_threshold,
        "holdout_buckets": round(holdout_fraction * HOLDOUT_BUCKETS),
    }
    errors = retraining_rows(connection, model_cfg, ERROR, params)
    replay_limit = math.ceil(replay_ratio * len(errors.rows))
    parts = {
        ERROR: errors,
        REPLAY: retraining_rows(connection, model_cfg, REPLAY, {**params, "limit": replay_limit}),
        HOLDOUT: retraining_rows(
            connection, model_cfg, HOLDOUT, {**params, "limit": max_holdout_rows}
        ),
    }
    columns = [*BASE_COLUMNS, FEATURES_TYPE, *model_cfg.feature_names]
    records = [row for part in parts.values() for row in part.rows]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["confidence"] = frame["confidence"].astype("float64")
    frame["predicted_at"] = pd.to_datetime(frame["predicted_at"], utc=True)
    frame["outcome_at"] = pd.to_datetime(frame["outcome_at"], utc=True)
    frame["role"] = [role for role, part in parts.items() for _ in part.rows]
    # A key no row of the window has is a missing column (a batch problem), not n null rows.
    present = set().union(*(part.present for part in parts.values()))
    return frame.drop(columns=[name for name in model_cfg.feature_names if name not in present])
