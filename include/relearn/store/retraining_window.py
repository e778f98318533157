"""The retraining window of the prediction log, read as typed columns.

A retraining run reads three slices of a window that can hold hundreds of thousands of rows
(``relearn.data.window`` says which). Fetched as Python tuples, every value became an object
(a 731k-row window cost 1.7 GB); here each slice leaves Postgres through ``COPY ... TO
STDOUT`` as CSV into a temporary file, and pandas' C reader parses it straight into typed
columns: float64, int64 microseconds, categorical text.

The reading stays total (``relearn.store.prediction_log``): only the configured features
are read, each with its JSON type; a number's text is parsed as ``float()`` parses it (a
number too large for a float is ``inf``), and the rare rows holding something else in a
numeric feature come back as text, decoded by the per-row ``decode_feature``, so validation
sees exactly what the producer logged.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from psycopg2 import sql

from relearn.config import FeatureType
from relearn.store.prediction_log import BASE_COLUMNS, FEATURES_TYPE, decode_feature

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from relearn.config import Feature, ModelConfig

ERROR, REPLAY, HOLDOUT = "error", "replay", "holdout"
HOLDOUT_BUCKETS = 10_000

# Inside what pandas' timestamps hold; clamping keeps "future" and "before the prediction"
# true of the clamped value.
OUTCOME_AT = (
    "CASE WHEN outcome_at IS NULL THEN NULL "
    "ELSE least(greatest(outcome_at, '1700-01-01+00'), '2200-01-01+00') END"
)
_WINDOW = """
    model_name = %(model)s AND actual_label IS NOT NULL
    AND predicted_at >= %(since)s AND predicted_at < %(until)s
"""
_IN_HOLDOUT = (
    f"(abs(hashtextextended(prediction_id::text, %(seed)s)) %% {HOLDOUT_BUCKETS})"
    " < %(holdout_buckets)s"
)
FILTERS = {
    # In Postgres NaN sorts above every number, so NaN confidences land here too. Rows with an
    # out-of-range confidence are loaded on purpose, for validation to quarantine.
    ERROR: f"{_WINDOW} AND NOT {_IN_HOLDOUT}"
    " AND predicted_label IS DISTINCT FROM actual_label"
    " AND (confidence >= %(threshold)s OR confidence < 0)",
    REPLAY: f"{_WINDOW} AND NOT {_IN_HOLDOUT} AND predicted_label = actual_label",
    HOLDOUT: f"{_WINDOW} AND {_IN_HOLDOUT}",
}
# Per role: the order of its rows (expression, direction), and whether ``limit`` applies.
ORDERS = {
    ERROR: (("predicted_at", "ASC"), ("prediction_id", "ASC")),
    REPLAY: (("hashtextextended(prediction_id::text, %(seed)s)", "ASC"),),
    HOLDOUT: (("predicted_at", "DESC"), ("prediction_id", "ASC")),
}
LIMITED = {ERROR: False, REPLAY: True, HOLDOUT: True}

# Text that may be NULL or empty is sent with this prefix: NULL is CSV's unquoted empty
# field and nothing else is, whatever a producer wrote.
_PREFIX = "v"
_EPOCH_US = "(extract(epoch FROM {}) * 1000000)::int8"
# JSON types ``decode_feature`` keeps as logged in a numeric feature (validation rejects them).
_NOT_NUMBERS = ("boolean", "string", "array", "object")
# What ``jsonb_typeof`` returns: fixed categories, so that parsed chunks concatenate as codes.
_JSON_TYPE = pd.CategoricalDtype(["object", "array", "string", "number", "boolean", "null"])
# CSV rows parsed at a time: pandas' parser holds about twice what it returns, so a slice of
# 600k rows parsed whole doubled the step's peak.
CSV_ROWS = 100_000


def _feature_columns(index: int, feature: Feature) -> list[sql.Composable]:
    """Its JSON type (NULL: the key is absent), then a categorical's prefixed text (a boolean
    spelled ``True``/``False``), or a numeric's number text (parsed by pandas as ``float()``
    parses it) and the prefixed text of anything else."""
    value = sql.Identifier(f"f{index}")
    json_type = sql.SQL("jsonb_typeof({})").format(value)
    text = sql.SQL("{} || ({} #>> {})").format(sql.Literal(_PREFIX), value, sql.Literal("{}"))
    if feature.type is FeatureType.CATEGORICAL:
        # A JSON boolean is the category True/False, as ``decode_feature`` reads it.
        boolean = sql.SQL("{} || initcap({} #>> {})").format(
            sql.Literal(_PREFIX), value, sql.Literal("{}")
        )
        return [
            json_type,
            sql.SQL("CASE {} WHEN 'null' THEN NULL WHEN 'boolean' THEN {} ELSE {} END").format(
                json_type, boolean, text
            ),
        ]
    return [
        json_type,
        sql.SQL("CASE WHEN {} = 'number' THEN {}::text END").format(json_type, value),
        sql.SQL("CASE WHEN {} = ANY({}) THEN {} END").format(
            json_type, sql.Literal(list(_NOT_NUMBERS)), text
        ),
    ]


def _csv_columns(model_cfg: ModelConfig) -> dict[str, Any]:
    """The CSV's columns and their pandas dtypes, in query order."""
    dtypes: dict[str, Any] = {
        "prediction_id": "str",
        "model_version": "category",
        "predicted_at": "int64",
        "outcome_at": "Int64",
        "predicted_label": "category",
        "actual_label": "category",
        "confidence": "float64",
        FEATURES_TYPE: _JSON_TYPE,
    }
    for i, feature in enumerate(model_cfg.features):
        dtypes[f"{i}:type"] = _JSON_TYPE
        if feature.type is FeatureType.CATEGORICAL:
            dtypes[f"{i}:text"] = "category"
        else:
            dtypes[f"{i}:number"] = "float64"
            dtypes[f"{i}:text"] = "str"  # nearly always NULL: a bitmap, not a pointer a row
    return dtypes


def window_query(model_cfg: ModelConfig, role: str) -> sql.Composed:
    """The query of one role. Parameters: model, since, until, seed, holdout_buckets,
    threshold (error), limit (replay, holdout).

    The inner query filters, orders and limits, carrying each configured feature's JSON value
    through the sort (not the whole document); the outer one encodes them.
    """
    prefix = sql.Literal(_PREFIX)
    keys = [sql.Identifier(f"k{i}") for i in range(len(ORDERS[role]))]
    inner = [
        sql.SQL("prediction_id::text AS prediction_id, model_version, predicted_at, outcome_at"),
        sql.SQL("predicted_label, actual_label, confidence, jsonb_typeof(features) AS doc"),
        *(
            sql.SQL(
                "CASE WHEN jsonb_typeof(features) = 'object' THEN features -> {} END AS {}"
            ).format(sql.Literal(f.name), sql.Identifier(f"f{i}"))
            for i, f in enumerate(model_cfg.features)
        ),
        *(
            sql.SQL("{} AS {}").format(sql.SQL(expression), key)
            for (expression, _), key in zip(ORDERS[role], keys, strict=True)
        ),
    ]
    outer = [
        sql.SQL("prediction_id, {} || model_version").format(prefix),
        sql.SQL(_EPOCH_US.format("predicted_at")),
        sql.SQL(_EPOCH_US.format(OUTCOME_AT)),
        sql.SQL("{p} || predicted_label, {p} || actual_label").format(p=prefix),
        # NaN is not a number to validation, like NULL; Infinity reads as inf.
        sql.SQL("NULLIF(confidence, 'NaN'), doc"),
        *(c for i, f in enumerate(model_cfg.features) for c in _feature_columns(i, f)),
    ]
    order = sql.SQL(", ").join(
        sql.SQL("{} {}").format(key, sql.SQL(direction))
        for key, (_, direction) in zip(keys, ORDERS[role], strict=True)
    )
    return sql.SQL(
        "SELECT {outer} FROM (SELECT {inner} FROM prediction_log WHERE {where} "
        "ORDER BY {order}{limit}) AS w ORDER BY {order}"
    ).format(
        outer=sql.SQL(", ").join(outer),
        inner=sql.SQL(", ").join(inner),
        where=sql.SQL(FILTERS[role]),
        order=order,
        limit=sql.SQL(" LIMIT %(limit)s" if LIMITED[role] else ""),
    )


def _strip(column: pd.Series) -> pd.Series:
    """A prefixed categorical column without the prefix (NaN where NULL)."""
    categories = column.cat.categories
    if len(categories):
        column = column.cat.rename_categories([c[len(_PREFIX) :] for c in categories])
    return column


def as_text(column: pd.Series) -> pd.Series:
    """A categorical or text column as a ``str`` column in one pyarrow chunk, built by Arrow
    from the codes: ``astype(str)`` of a categorical makes a Python string per row first
    (70 MB at the peak for 731k rows of three roles)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        categories = pa.array(column.cat.categories.to_numpy(dtype=object), pa.string())
        values = pc.take(categories, pa.array(codes, mask=codes < 0))
    else:
        values = pa.array(column.array)  # its chunks, joined
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
    text = pd.arrays.ArrowStringArray(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    return pd.Series(text, index=column.index, name=column.name)


def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``parts`` one after the other, their categoricals kept as codes over the sorted union of
    their categories (``pd.concat`` turns categoricals with different categories into a
    string per row)."""
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    for name, dtype in parts[0].dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            every = sorted(set().union(*(p[name].cat.categories for p in parts)))
            for part in parts:
                part[name] = part[name].cat.set_categories(every)
    return pd.concat(parts, ignore_index=True)


def _numeric(
    feature: Feature, json_type: pd.Series, number: pd.Series, text: pd.Series
) -> pd.Series:
    """Float64 unless a row holds something ``decode_feature`` keeps as logged (a bool, text):
    then an object column, as the per-row reader built it."""
    other = json_type.isin(_NOT_NUMBERS).to_numpy()
    if not other.any():
        return number
    values = number.astype(object).to_numpy(copy=True)
    values[~json_type.eq("number").fillna(False).to_numpy(dtype=bool)] = None
    types, texts = json_type.to_numpy(), text.to_numpy()
    for i in np.flatnonzero(other).tolist():
        values[i] = decode_feature(feature, types[i], texts[i][len(_PREFIX) :])
    return pd.Series(values, index=number.index, dtype=object).infer_objects()


def _decode_chunk(raw: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """One parsed chunk with its text columns decoded; a numeric feature's three columns
    stay as parsed, for ``_decode_numbers`` to decode over the whole slice."""
    columns: dict[str, Any] = {
        "prediction_id": raw["prediction_id"],
        "model_version": _strip(raw["model_version"]),
        "predicted_at": pd.to_datetime(raw["predicted_at"], unit="us", utc=True),
        "outcome_at": pd.to_datetime(raw["outcome_at"], unit="us", utc=True),
        "predicted_label": _strip(raw["predicted_label"]),
        "actual_label": _strip(raw["actual_label"]),
        "confidence": raw["confidence"],
        FEATURES_TYPE: raw[FEATURES_TYPE],
    }
    for i, feature in enumerate(model_cfg.features):
        columns[f"{i}:type"] = raw[f"{i}:type"]
        if feature.type is FeatureType.CATEGORICAL:
            columns[feature.name] = _strip(raw[f"{i}:text"])
        else:
            columns[f"{i}:number"] = raw[f"{i}:number"]
            columns[f"{i}:text"] = raw[f"{i}:text"]
    return pd.DataFrame(columns, index=raw.index)


def _decode_numbers(frame: pd.DataFrame, model_cfg: ModelConfig) -> set[str]:
    """Decode the numeric features of the whole slice in place (a column is float64 or, if any
    row holds something else, object: a per-chunk decision would differ) and return the
    features whose key occurs in at least one row."""
    present = set()
    for i, feature in enumerate(model_cfg.features):
        json_type = frame.pop(f"{i}:type")
        if json_type.notna().any():
            present.add(feature.name)
        if feature.type is not FeatureType.CATEGORICAL:
            number, text = frame.pop(f"{i}:number"), frame.pop(f"{i}:text")
            frame[feature.name] = _numeric(feature, json_type, number, text)
    return present


def window_rows(
    connection: Connection, model_cfg: ModelConfig, role: str, params: dict[str, Any]
) -> tuple[pd.DataFrame, set[str]]:
    """The rows of one role and the features whose key occurs in at least one of them.

    Columns: ``BASE_COLUMNS``, ``FEATURES_TYPE`` and the configured features, as the per-row
    reader decoded them (a numeric feature is float64 unless a row holds a value validation
    must see as it was logged, a bool or a text: then an object column). Versions, labels,
    JSON types and categorical features are categoricals (``concat`` joins slices of them).
    """
    dtypes = _csv_columns(model_cfg)
    with connection.cursor() as cursor, tempfile.TemporaryFile() as spool:
        query = cursor.mogrify(window_query(model_cfg, role), params).decode()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", spool)
        if spool.tell():
            spool.seek(0)
            chunks = pd.read_csv(
                spool,
                header=None,
                names=list(dtypes),
                dtype=dtypes,
                keep_default_na=False,
                na_values=[""],
                chunksize=CSV_ROWS,
            )
            parts = [_decode_chunk(raw, model_cfg) for raw in chunks]
        else:  # pandas cannot read an empty CSV
            empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})
            parts = [_decode_chunk(empty, model_cfg)]
    frame = concat(parts)
    del parts
    present = _decode_numbers(frame, model_cfg)
    return frame[[*BASE_COLUMNS, FEATURES_TYPE, *model_cfg.feature_names]], present
