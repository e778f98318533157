"""The production window a drift check looks at, with features unpacked in SQL.

Features are stored as JSONB; extracting them in the query (one typed column per feature)
spares Python from parsing a JSON document per row. A value of the wrong JSON type reads
as missing, so one bad producer cannot break the check (it shows up as missing values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.config import FeatureType

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig

PREDICTED, CONFIDENCE, ACTUAL = "predicted_label", "confidence", "actual_label"


def _query(model_cfg: ModelConfig):
    from psycopg2 import sql

    columns = []
    for index, feature in enumerate(model_cfg.features):
        key = sql.Placeholder(f"key{index}")
        if feature.type is FeatureType.NUMERIC:
            value = sql.SQL(
                "CASE WHEN jsonb_typeof(features -> {key}) = 'number' "
                "THEN (features ->> {key})::float8 END"
            ).format(key=key)
        else:
            value = sql.SQL("features ->> {key}").format(key=key)
        columns.append(sql.SQL("{} AS {}").format(value, sql.Identifier(feature.name)))
    return sql.SQL(
        "SELECT {columns}, predicted_label, confidence, actual_label FROM prediction_log "
        "WHERE model_name = %(model)s AND model_version = %(version)s "
        "AND predicted_at >= %(since)s AND predicted_at < %(until)s"
    ).format(columns=sql.SQL(", ").join(columns))


def load_window(
    connection: Connection,
    model_cfg: ModelConfig,
    version: str,
    *,
    since: datetime,
    until: datetime,
) -> pd.DataFrame:
    """Predictions of ``version`` in ``[since, until)``: one column per feature (numeric as
    float64 with NaN for missing), then ``predicted_label``, ``confidence``, ``actual_label``
    (None until the outcome is known)."""
    import pandas as pd

    params = {"model": model_cfg.name, "version": str(version), "since": since, "until": until}
    params.update({f"key{i}": feature.name for i, feature in enumerate(model_cfg.features)})
    with connection.cursor() as cursor:
        cursor.execute(_query(model_cfg), params)
        rows = cursor.fetchall()
    names = [*model_cfg.feature_names, PREDICTED, CONFIDENCE, ACTUAL]
    frame = pd.DataFrame.from_records(rows, columns=names)
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            frame[feature.name] = pd.to_numeric(frame[feature.name], errors="coerce").astype(
                "float64"
            )
    frame[CONFIDENCE] = frame[CONFIDENCE].astype("float64")
    return frame
