"""Features as levels: categorical values and numeric quantile bins, for any configured schema.

Levels are fitted on the analysed rows and can encode any other frame of the same model (a
challenger's traffic), so a segment means the same rows' description everywhere. Every value
gets a level, whatever a producer sent: an unseen or rare category is ``other``, a missing or
non-numeric value is ``missing``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.config import FeatureType

if TYPE_CHECKING:
    from relearn.config import ModelConfig

OTHER, MISSING = "other", "missing"
_EDGE_SAMPLE = 100_000


@dataclass(frozen=True)
class FeatureLevels:
    """How one feature's values map to level codes ``0 .. len(labels) - 1``.

    Categorical: the kept values, then ``other``, then ``missing``. Numeric: one bin per
    interval between the quantile ``edges``, then ``missing``.
    """

    feature: str
    numeric: bool
    labels: tuple[str, ...]
    values: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        return len(self.labels)

    def encode(self, column: pd.Series) -> np.ndarray:
        """Level codes of a column (int64), total: any value lands in some level."""
        if self.numeric:
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            codes = np.searchsorted(np.asarray(self.edges), numbers, side="right")
            return np.where(np.isnan(numbers), self.size - 1, codes).astype(np.int64)
        missing = column.isna().to_numpy()
        codes = pd.Categorical(column.astype(str), categories=list(self.values)).codes
        codes = codes.astype(np.int64)
        codes[codes < 0] = len(self.values)  # other
        codes[missing] = len(self.values) + 1
        return codes


def fit_levels(
    model_cfg: ModelConfig, frame: pd.DataFrame, *, bins: int, max_categories: int
) -> list[FeatureLevels]:
    """Levels of every configured feature present in ``frame``: the ``max_categories`` most
    frequent values of a categorical one, ``bins`` quantile bins of a numeric one."""
    found = []
    for feature in model_cfg.features:
        if feature.name not in frame.columns:
            continue
        column = frame[feature.name]
        if feature.type is FeatureType.NUMERIC:
            found.append(_numeric(feature.name, column, bins))
        else:
            found.append(_categorical(feature.name, column, max_categories))
    return found


def encode(levels: list[FeatureLevels], frame: pd.DataFrame) -> np.ndarray:
    """An ``(rows, features)`` matrix of level codes (column-major: the search reads it by
    column); a feature absent from ``frame`` is missing on every row."""
    codes = np.empty((len(frame), len(levels)), dtype=np.int64, order="F")
    for i, lv in enumerate(levels):
        codes[:, i] = lv.encode(
            frame[lv.feature] if lv.feature in frame.columns else _absent(frame)
        )
    return codes


def _absent(frame: pd.DataFrame) -> pd.Series:
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _numeric(name: str, column: pd.Series, bins: int) -> FeatureLevels:
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    # Quintile edges from at most ~100k evenly spaced rows: as good, and a day of a busy
    # model does not sort millions of values per feature.
    finite = finite[:: max(1, finite.size // _EDGE_SAMPLE)]
    quantiles = np.arange(1, bins) / bins
    edges = (
        tuple(float(e) for e in np.unique(np.quantile(finite, quantiles))) if finite.size else ()
    )
    labels = [f"{name} < {_number(edges[0])}"] if edges else [f"{name} (any value)"]
    labels += [
        f"{_number(low)} <= {name} < {_number(high)}" for low, high in itertools.pairwise(edges)
    ]
    if edges:
        labels.append(f"{name} >= {_number(edges[-1])}")
    labels.append(f"{name} {MISSING}")
    return FeatureLevels(name, True, tuple(labels), edges=edges)


def _categorical(name: str, column: pd.Series, max_categories: int) -> FeatureLevels:
    present = column[column.notna()].astype(str)
    values = tuple(present.value_counts().index[:max_categories].tolist())
    labels = (*(f"{name}={v}" for v in values), f"{name}: {OTHER}", f"{name} {MISSING}")
    return FeatureLevels(name, False, labels, values=values)


def _number(value: float) -> str:
    """An edge as people write it: 6, 0.25, 1.2e+06."""
    return f"{value:.4g}"
