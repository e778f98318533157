"""The prepared copy of a window the suite runs on: total decoding, derived columns.

Every value is decoded per row without raising, whatever its Python type: a bool is not a
number (``True`` would otherwise train as 1.0), a number too large for a float is infinite,
a list or dict in a numeric feature is not a number, and a string is one only if it parses as
``feature_frame`` parses it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from relearn.config import FeatureType
from relearn.store.prediction_log import FEATURES_TYPE
from relearn.validation.checks import CONFIDENCE, OUTCOME_AT, PREDICTED_AT, REQUIRED_COLUMNS

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig

_REAL = (int, float, np.integer, np.floating)


def utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _timestamps(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC")
    return pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")


def _number(value: Any) -> float:
    """A real number as a float (+-inf if too large for one); NaN for anything else."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, _REAL):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def _parse(texts: list[str]) -> np.ndarray:
    """Strings as ``feature_frame`` reads them ("12" is 12), per ``_number``; never raises."""
    try:
        parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
    except (ValueError, TypeError, OverflowError):
        if len(texts) == 1:
            return np.array([math.nan])
        return np.concatenate([_parse([text]) for text in texts])
    return np.fromiter((_number(v) for v in parsed), dtype="float64", count=len(texts))


def numbers(column: pd.Series) -> np.ndarray:
    """The column as float64 per ``_number`` (numeric strings parsed), fast for numeric dtypes."""
    if is_bool_dtype(column.dtype):
        return np.full(len(column), np.nan)
    if is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    values = column.to_numpy(dtype=object)
    result = np.fromiter((_number(v) for v in values), dtype="float64", count=len(values))
    texts = [i for i, value in enumerate(values) if isinstance(value, str)]
    if texts:
        result[texts] = _parse([values[i] for i in texts])
    return result


def gx_frame(frame: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """The columns the suite reads, on a 0..n-1 index so GX's unexpected indices are positions.

    Confidence becomes float (not a number -> NaN, caught as null), timestamps UTC, categorical
    values ``str`` as ``feature_frame`` maps them; numeric features keep their raw column (for
    the null check) plus ``:number`` (the finite value or NaN) and ``:is_number`` (True/False,
    None where the raw value is null) so that "abc" fails once, as not numeric.
    """
    index = pd.RangeIndex(len(frame))
    columns: dict[str, Any] = {}
    for name in (*REQUIRED_COLUMNS, FEATURES_TYPE):
        if name not in frame.columns:
            continue
        column = frame[name].reset_index(drop=True)
        if name == CONFIDENCE:
            column = pd.Series(numbers(column), index=index)
        elif name in (PREDICTED_AT, OUTCOME_AT):
            column = _timestamps(column)
        columns[name] = column
    for feature in model_cfg.features:
        if feature.name not in frame.columns:
            continue
        raw = frame[feature.name].reset_index(drop=True)
        if feature.type is FeatureType.CATEGORICAL:
            columns[feature.name] = raw.map(str, na_action="ignore").astype(object)
            continue
        values = numbers(raw)
        finite = np.isfinite(values)
        null = raw.isna().to_numpy()
        columns[feature.name] = raw
        columns[f"{feature.name}:number"] = pd.Series(np.where(finite, values, np.nan), index=index)
        is_number = np.where(null, None, finite).astype(object)
        columns[f"{feature.name}:is_number"] = pd.Series(is_number, index=index, dtype=object)
    return pd.DataFrame(columns, index=index)


def missing_columns(frame: pd.DataFrame, model_cfg: ModelConfig) -> list[str]:
    problems = [
        f"column '{name}' is missing from the window"
        for name in REQUIRED_COLUMNS
        if name not in frame.columns
    ]
    problems += [
        f"feature column '{name}' is missing from the window"
        for name in model_cfg.feature_names
        if name not in frame.columns
    ]
    return problems
