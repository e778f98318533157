"""Turning raw feature columns into the model's numeric input, identically at train and serve.

``feature_frame`` is the single gate every frame passes through (training, evaluation, the
pyfunc model and the Predictor), so a bad column fails loudly with its name instead of
surfacing as a NaN probability or a shape error deep inside a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from relearn.config import FeatureType

if TYPE_CHECKING:
    from relearn.config import Feature, ModelConfig


class FeatureSchemaError(ValueError):
    """A frame does not match the configured feature schema; the message names the column."""


def build_preprocessor(model_cfg: ModelConfig) -> ColumnTransformer:
    """An unfitted transformer from ``feature_frame`` output to a dense float32 matrix.

    Numeric features are mean-imputed (a no-op unless the feature is nullable) and
    standardised; categoricals are one-hot encoded over the configured categories, so the
    output width is fixed by the configuration and unseen or missing categories become all
    zeros instead of an error.
    """
    numeric = [f.name for f in model_cfg.features if f.type is FeatureType.NUMERIC]
    categorical = [f for f in model_cfg.features if f.type is FeatureType.CATEGORICAL]
    transformers: list[tuple[str, object, list[str]]] = []
    if numeric:
        numeric_pipeline = Pipeline(
            [
                ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
                ("scale", StandardScaler()),
                (
                    "float32",
                    FunctionTransformer(
                        np.asarray, kw_args={"dtype": np.float32}, feature_names_out="one-to-one"
                    ),
                ),
            ]
        )
        transformers.append(("numeric", numeric_pipeline, numeric))
    if categorical:
        encoder = OneHotEncoder(
            categories=[list(f.categories) for f in categorical],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float32,
        )
        transformers.append(("categorical", encoder, [f.name for f in categorical]))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def feature_frame(frame: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """The configured feature columns of ``frame``, in order, with canonical dtypes.

    Numeric columns become float64 and categorical columns object columns of ``str`` (missing
    values stay missing). Extra columns are dropped; the index is kept. Rows in messages are
    0-based positions.

    :raises FeatureSchemaError: a column is missing, a numeric value is not a finite number,
        or a non-nullable feature holds a null.
    """
    missing = [name for name in model_cfg.feature_names if name not in frame.columns]
    if missing:
        raise FeatureSchemaError(
            f"missing feature column(s) {missing} for model '{model_cfg.name}' "
            f"(expected {model_cfg.feature_names})"
        )
    columns = {f.name: _coerce(frame[f.name], f) for f in model_cfg.features}
    # Not consolidated into one block: the numeric columns are not copied a second time.
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _coerce(column: pd.Series, feature: Feature) -> pd.Series:
    is_null = column.isna().to_numpy()
    if is_null.any() and not feature.nullable:
        row = int(np.flatnonzero(is_null)[0])
        raise FeatureSchemaError(
            f"feature '{feature.name}' is not nullable, got a null in row {row} "
            f"({int(is_null.sum())} null(s) in total)"
        )
    if feature.type is FeatureType.CATEGORICAL:
        return _categorical(column, is_null)
    # A float64 column is used as it is: ``to_numeric`` would copy it.
    values = (
        column
        if column.dtype == np.float64
        else pd.to_numeric(column, errors="coerce").astype("float64")
    )
    invalid = ~np.isfinite(values.to_numpy()) & ~is_null
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        raise FeatureSchemaError(
            f"feature '{feature.name}' must be numeric, got {column.iloc[row]!r} in row {row}"
        )
    return values


def _categorical(column: pd.Series, is_null: np.ndarray) -> pd.Series:
    """``str`` of each value as an object column, missing values NaN.

    For a column of strings each distinct value becomes one ``str`` shared by its rows (a
    window of 700k rows of a few categories holds a few strings, not 700k of them); other
    columns are converted value by value (``factorize`` would take ``True`` for ``1``).
    """
    if not isinstance(column.dtype, pd.StringDtype):
        return column.map(str, na_action="ignore").astype(object)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.array([*(str(value) for value in uniques), np.nan], dtype=object)
    return pd.Series(texts[codes], index=column.index, dtype=object)  # code -1: the NaN
