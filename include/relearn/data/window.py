"""Load the part of the prediction log a retraining run needs, filtered in SQL.

A week of a busy model is millions of rows; a run only needs three slices of it:

- ``error``: labelled mistakes at or above the confidence threshold (the lessons);
- ``replay``: a deterministic sample of correct predictions (so the model does not forget);
- ``holdout``: the most recent rows of a fixed hash bucket of the window, never trained on,
  on which candidate and champion are compared with the window's natural class mix.

The queries live in ``relearn.store.retraining_window``, which reads each slice as typed
columns (no Python object per value: the window of a busy week fits in a few hundred MB) and
keeps bad rows, decoded as logged, for validation to quarantine with a reason instead of SQL
silently dropping them or one of them failing the run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.data.memory import release_unused
from relearn.store.retraining_window import (
    ERROR,
    HOLDOUT,
    HOLDOUT_BUCKETS,
    REPLAY,
    as_text,
    concat,
    window_rows,
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
    numeric feature stays a string for validation to report), ``role``. Text columns are
    pyarrow strings in one chunk each (taking rows of a chunked column first joins its chunks).
    """
    params = {
        "model": model_cfg.name,
        "since": since,
        "until": until,
        "seed": seed,
        "threshold": confidence_threshold,
        "holdout_buckets": round(holdout_fraction * HOLDOUT_BUCKETS),
    }
    errors, present = window_rows(connection, model_cfg, ERROR, params)
    parts = {ERROR: errors}
    limits = {REPLAY: math.ceil(replay_ratio * len(errors)), HOLDOUT: max_holdout_rows}
    for role, limit in limits.items():
        parts[role], seen = window_rows(connection, model_cfg, role, {**params, "limit": limit})
        present |= seen
        release_unused()  # what decoding this part freed: before the next part and the concat
    codes = np.repeat(np.arange(len(parts), dtype=np.int8), [len(p) for p in parts.values()])
    frame = concat(list(parts.values()))
    del errors, parts
    frame["role"] = pd.Categorical.from_codes(codes, categories=pd.Index([ERROR, REPLAY, HOLDOUT]))
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype) or dtype == "str":
            frame[name] = as_text(frame[name])
    release_unused()  # the parts, copied into ``frame``: before validation allocates
    # A key no row of the window has is a missing column (a batch problem), not n null rows.
    return frame.drop(columns=[name for name in model_cfg.feature_names if name not in present])
