"""The production window a drift check looks at, with features decoded per row.

The query (``relearn.store.prediction_log.drift_rows``) reads only the configured features
and leaves out rows no statistic can use (unknown labels, a confidence outside [0, 1], a
document that is not an object), counting them. A feature value of the wrong JSON type or
too large for a float reads as missing, so one bad producer cannot break the check (it shows
up as missing values).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.config import FeatureType
from relearn.store.prediction_log import drift_rows

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

PREDICTED, CONFIDENCE, ACTUAL = "predicted_label", "confidence", "actual_label"
PREDICTED_AT = "predicted_at"
# ``DataFrame.attrs`` key: rows of the window left out as unsound.
EXCLUDED = "excluded_rows"


def load_window(
    connection: Connection,
    model_cfg: ModelConfig,
    version: str,
    *,
    since: datetime,
    until: datetime,
) -> pd.DataFrame:
    """Predictions of ``version`` in ``[since, until)``: one column per feature (numeric as
    float64 with NaN for missing or unusable), then ``predicted_label``, ``confidence``,
    ``actual_label`` (None until the outcome is known), ``predicted_at``.
    ``frame.attrs[EXCLUDED]`` counts the unsound rows left out."""
    window = drift_rows(connection, model_cfg, version, since=since, until=until)
    names = [*model_cfg.feature_names, PREDICTED, CONFIDENCE, ACTUAL, PREDICTED_AT]
    frame = pd.DataFrame.from_records(window.rows, columns=names)
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            values = frame[feature.name].map(_number).astype("float64")
            frame[feature.name] = values.replace([np.inf, -np.inf], np.nan)
    frame[CONFIDENCE] = frame[CONFIDENCE].astype("float64")
    frame.attrs[EXCLUDED] = window.excluded
    if window.excluded:
        log.warning(
            "%s v%s: left %d unsound row(s) of [%s, %s) out of the drift window",
            model_cfg.name,
            version,
            window.excluded,
            since.isoformat(),
            until.isoformat(),
        )
    return frame


def _number(value: object) -> float | None:
    """A decoded numeric feature as a float, or None if the producer sent anything else."""
    return value if isinstance(value, float) else None
