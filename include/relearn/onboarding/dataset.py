"""A model's labelled dataset file, checked row by row and sampled to a bounded size.

Every row of the file is read (in batches) and checked against the model's schema, so a bad
cell anywhere is reported by row and column before anything is trained; what is kept is a
seeded uniform sample of at most ``max_rows`` rows (each row gets a random key, the
smallest keys are kept), so memory is bounded by the sample, not the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.config import FeatureType
from relearn.onboarding import files
from relearn.onboarding.files import DatasetError

if TYPE_CHECKING:
    from pathlib import Path

    from relearn.config import Feature, ModelConfig
    from relearn.onboarding.files import Batch

_KEY = "__relearn_sample_key"
# Rows held beyond the sample's size before they are cut back (a cut copies what is held).
_SLACK = 1.25


@dataclass(frozen=True)
class DatasetSample:
    """Typed rows (features, label, time column) sampled from a file of ``rows`` rows."""

    frame: pd.DataFrame
    rows: int
    digest: str


def read_sample(path: Path, model_cfg: ModelConfig, max_rows: int, seed: int) -> DatasetSample:
    """Check every row of ``path`` and keep a uniform sample of at most ``max_rows``.

    :raises DatasetError: a missing column, or a cell that does not fit the schema (named by
        row and column).
    """
    wanted = [*model_cfg.feature_names, model_cfg.label]
    if model_cfg.time_column is not None:
        wanted.append(model_cfg.time_column)
    sampler = _Sampler(max_rows, seed)
    for batch in files.batches(path, wanted):
        sampler.add(_typed(batch, model_cfg, path))
    if sampler.rows == 0:
        raise DatasetError(f"dataset {path}: no rows")
    return DatasetSample(sampler.sample(), sampler.rows, files.digest(path))


class _Sampler:
    """Bottom-k sampling: every row gets a uniform random key, the ``size`` smallest stay.

    Once ``size`` rows are held, the largest kept key is a threshold no later row above it
    can beat, so each batch contributes only its rows below it, and the held rows are cut
    back to ``size`` when they reach twice that: memory stays about twice the sample.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rows = 0
        self._rng = np.random.default_rng(seed)
        self._parts: list[pd.DataFrame] = []
        self._held = 0
        self._threshold = np.inf

    def add(self, frame: pd.DataFrame) -> None:
        keys = self._rng.random(len(frame))
        self.rows += len(frame)
        below = keys < self._threshold
        self._parts.append(frame[below].assign(**{_KEY: keys[below]}))
        self._held += int(below.sum())
        if self._held > self.size * _SLACK:
            self._compact()

    def _compact(self) -> None:
        held = pd.concat(self._parts, ignore_index=True)
        if len(held) > self.size:
            smallest = np.argpartition(held[_KEY].to_numpy(), self.size - 1)[: self.size]
            held = held.iloc[np.sort(smallest)].reset_index(drop=True)
            self._threshold = float(held[_KEY].max())
        self._parts, self._held = [held], len(held)

    def sample(self) -> pd.DataFrame:
        """The kept rows in file order."""
        self._compact()
        return self._parts[0].drop(columns=_KEY)


def _typed(batch: Batch, model_cfg: ModelConfig, path: Path) -> pd.DataFrame:
    """The batch with numbers as float64 and categories, labels as text; bad cells raise."""
    columns = {feature.name: _feature(batch, feature, path) for feature in model_cfg.features}
    columns[model_cfg.label] = _labels(batch, model_cfg, path)
    if model_cfg.time_column is not None:
        columns[model_cfg.time_column] = _times(batch, model_cfg.time_column, path)
    return pd.DataFrame(columns, index=batch.frame.index)


def _fail(path: Path, batch: Batch, where: pd.Series, column: str, problem: str) -> None:
    """Raise for the first row where ``where`` holds; ``problem`` takes the cell's value."""
    if where.any():
        position = int(where.to_numpy().argmax())
        value = batch.frame[column].iloc[position]
        raise DatasetError(
            f"dataset {path}: row {batch.row_number(position)}, column '{column}': "
            + problem.format(value=repr(value))
        )


def _feature(batch: Batch, feature: Feature, path: Path) -> pd.Series:
    raw = batch.frame[feature.name]
    if not feature.nullable:
        _fail(path, batch, raw.isna(), feature.name, "empty, and the feature is not nullable")
    if feature.type is FeatureType.CATEGORICAL:
        values = files.texts(raw)
        unknown = values.notna() & ~values.isin(feature.categories)
        _fail(
            path,
            batch,
            unknown,
            feature.name,
            f"{{value}} is not one of the configured categories {feature.categories}",
        )
        return values
    values = files.numbers(batch, feature.name, path)
    low = -np.inf if feature.min is None else feature.min
    high = np.inf if feature.max is None else feature.max
    _fail(
        path,
        batch,
        values.notna() & ~values.between(low, high),
        feature.name,
        f"{{value}} is outside the configured range [{feature.min}, {feature.max}]",
    )
    return values


def _labels(batch: Batch, model_cfg: ModelConfig, path: Path) -> pd.Series:
    labels = files.texts(batch.frame[model_cfg.label])
    _fail(path, batch, labels.isna(), model_cfg.label, "no label")
    _fail(
        path,
        batch,
        ~labels.isin(model_cfg.classes),
        model_cfg.label,
        f"{{value}} is not one of the classes {model_cfg.classes}",
    )
    return labels


def _times(batch: Batch, column: str, path: Path) -> pd.Series:
    """Sortable times: numbers as they are, text parsed as timestamps (UTC)."""
    raw = batch.frame[column]
    _fail(path, batch, raw.isna(), column, "no time")
    if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_datetime64_any_dtype(raw):
        return raw
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():  # epoch seconds or a sequence number, written as text
        return numbers
    parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    _fail(path, batch, parsed.isna(), column, "{value} is not a time")
    return parsed
