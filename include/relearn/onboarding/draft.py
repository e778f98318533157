"""``relearn model init``: a draft model entry inferred from a labelled dataset file.

One streaming pass over the file collects, per column, whether every value is a number,
the numeric range, the distinct values (up to ``MAX_CATEGORIES``) and missing cells. A
numeric column becomes a numeric feature whose range is the data's widened by ``MARGIN``
of its span (never below 0 when the data is not); any other column a categorical feature
with the values seen. Columns that cannot be features (one value only, or an identifier
or free text with more distinct values than ``MAX_CATEGORIES``) are left out and listed,
so the user sees what was dropped. The entry is a draft to review, then ``relearn config``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from relearn.config import (
    RESERVED_COLUMNS,
    ABTestConfig,
    DriftConfig,
    FeatureType,
    GateConfig,
    ModelConfig,
    ModelKind,
    ReinforcementConfig,
    TrainingConfig,
)
from relearn.onboarding import files
from relearn.onboarding.files import DatasetError

if TYPE_CHECKING:
    from pathlib import Path

MAX_CATEGORIES = 50
MAX_CLASSES = 100
MARGIN = 0.1
_TIME_PROBE_ROWS = 100
_MAX_DISTINCT = max(MAX_CATEGORIES, MAX_CLASSES)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODEL_NAME = re.compile(ModelConfig.model_fields["name"].metadata[0].pattern)
_DEFAULTS = {
    "training": TrainingConfig,
    "reinforcement": ReinforcementConfig,
    "gates": GateConfig,
    "drift": DriftConfig,
    "abtest": ABTestConfig,
}


@dataclass
class ColumnStats:
    """What one streaming pass learns about a column."""

    name: str
    rows: int = 0
    missing: int = 0
    numeric: bool = True
    low: float = math.inf
    high: float = -math.inf
    values: set[str] = field(default_factory=set)
    too_many_values: bool = False
    # Judged on the first values seen: text that reads as timestamps (a time column?).
    looks_like_time: bool | None = None
    first_missing_row: int | None = None

    def add(self, values: pd.Series, first_row: int) -> None:
        empty = values.isna().to_numpy()
        if self.first_missing_row is None and empty.any():
            self.first_missing_row = first_row + int(empty.argmax())
        self.rows += len(values)
        present = values.dropna()
        self.missing += len(values) - len(present)
        if self.looks_like_time is None and len(present):
            head = present.head(_TIME_PROBE_ROWS)
            self.looks_like_time = pd.api.types.is_datetime64_any_dtype(head) or (
                not pd.api.types.is_numeric_dtype(head)
                and pd.to_datetime(head, errors="coerce", format="mixed").notna().all()
            )
        if self.numeric:
            parsed = _as_numbers(present)
            if parsed is None:
                self.numeric = False
            elif len(parsed):
                self.low = min(self.low, float(parsed.min()))
                self.high = max(self.high, float(parsed.max()))
        if not self.too_many_values:
            # Distinct values first: a continuous column never turns every cell into text.
            distinct = pd.Series(present.unique())
            self.too_many_values = len(distinct) > _MAX_DISTINCT
            if not self.too_many_values:
                self.values.update(files.texts(distinct))
                self.too_many_values = len(self.values) > _MAX_DISTINCT


def _as_numbers(values: pd.Series) -> pd.Series | None:
    """The values as finite floats, or None when any of them is not a number (or a bool)."""
    if pd.api.types.is_bool_dtype(values):
        return None
    parsed = pd.to_numeric(values, errors="coerce")
    if parsed.isna().any():
        return None
    return parsed[parsed.abs() != math.inf]


@dataclass(frozen=True)
class Draft:
    """The draft entry, and the columns left out with the reason for each."""

    entry: dict[str, Any]
    skipped: dict[str, str]
    rows: int


def scan(path: Path, wanted: list[str]) -> dict[str, ColumnStats]:
    """Per-column statistics of the whole file, one batch at a time."""
    stats = {name: ColumnStats(name) for name in wanted}
    for batch in files.batches(path, wanted):
        for name, column in stats.items():
            column.add(batch.frame[name], batch.first_row)
    return stats


def draft_entry(
    path: Path,
    *,
    name: str,
    label: str,
    time_column: str | None = None,
    kind: ModelKind = ModelKind.TORCH_MLP,
) -> Draft:
    """The model entry for ``path`` (validated against the schema before it is returned).

    :raises DatasetError: the file, the label or the time column cannot be used.
    """
    if not _MODEL_NAME.match(name):
        raise DatasetError(
            f"--name '{name}': a model name is 2-63 lower-case letters, digits and _, "
            "starting with a letter"
        )
    names = files.columns(path)
    for role, column in (("label", label), ("time column", time_column)):
        if column is not None and column not in names:
            raise DatasetError(f"dataset {path}: no {role} column '{column}' (columns: {names})")
    if label in RESERVED_COLUMNS:
        raise DatasetError(
            f"dataset {path}: label column '{label}' has a name Relearn uses for its own "
            "column: rename it in the file"
        )
    invalid = [n for n in names if n not in {label, time_column} and not _NAME.match(n)]
    if invalid:
        raise DatasetError(
            f"dataset {path}: column name(s) {invalid} cannot be feature names (letters, "
            "digits and _ only, not starting with a digit): rename them in the file"
        )
    stats = scan(path, names)
    rows = stats[label].rows
    classes = _classes(path, stats[label])
    if time_column is not None and stats[time_column].missing:
        raise _empty_cells(path, stats[time_column], "time column")
    features, skipped = [], {}
    for column in names:
        if column in {label, time_column}:
            continue
        if column in RESERVED_COLUMNS:
            skipped[column] = "a name Relearn uses for its own column: rename it to use it"
            continue
        feature, reason = _feature(stats[column])
        if feature is None:
            skipped[column] = reason
        else:
            features.append(feature)
    if not features:
        raise DatasetError(f"dataset {path}: no column can be a feature ({skipped})")
    entry: dict[str, Any] = {"name": name, "kind": kind.value, "label": label}
    if time_column is not None:
        entry["time_column"] = time_column
    entry |= {"classes": classes, "features": features}
    entry |= {section: cls().model_dump(mode="json") for section, cls in _DEFAULTS.items()}
    ModelConfig.model_validate(entry)  # a draft the schema refuses is a bug here, not the user's
    return Draft(entry, skipped, rows)


def _classes(path: Path, label: ColumnStats) -> list[str]:
    if label.missing:
        raise _empty_cells(path, label, "label column")
    if label.too_many_values or len(label.values) > MAX_CLASSES:
        raise DatasetError(
            f"dataset {path}: label column '{label.name}' has more than {MAX_CLASSES} distinct "
            "values: Relearn trains classifiers (is this the right column?)"
        )
    if len(label.values) < 2:
        raise DatasetError(
            f"dataset {path}: label column '{label.name}' has a single class "
            f"{sorted(label.values)}: a classifier needs at least two"
        )
    return sorted(label.values, key=_natural)


def _empty_cells(path: Path, stats: ColumnStats, role: str) -> DatasetError:
    return DatasetError(
        f"dataset {path}: row {stats.first_missing_row}, column '{stats.name}': empty "
        f"({stats.missing} empty cell(s) in the {role}, which needs a value in every row)"
    )


def _natural(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order ("2" before "10"), then text in alphabetical order."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _feature(stats: ColumnStats) -> tuple[dict[str, Any] | None, str]:
    """The feature entry for a column, or None and why it cannot be one."""
    nullable = {"nullable": True} if stats.missing else {}
    if stats.missing == stats.rows:
        return None, "every cell is empty"
    if stats.numeric:
        if not math.isfinite(stats.low):
            return None, "no finite number"
        low, high = widened(stats.low, stats.high)
        return {"name": stats.name, "type": FeatureType.NUMERIC.value, "min": low, "max": high} | (
            nullable
        ), ""
    if stats.looks_like_time:
        return None, f"timestamps (pass --time-column {stats.name} to split by time)"
    if stats.too_many_values or len(stats.values) > MAX_CATEGORIES:
        return None, f"more than {MAX_CATEGORIES} distinct texts: an id or free text?"
    if len(stats.values) < 2:
        return None, "a single value"
    categories = sorted(stats.values, key=_natural)
    return {"name": stats.name, "type": FeatureType.CATEGORICAL.value, "categories": categories} | (
        nullable
    ), ""


def widened(low: float, high: float) -> tuple[float, float]:
    """``[low, high]`` widened by ``MARGIN`` of its span each side, rounded outward.

    A non-negative column keeps 0 as its floor (counts, amounts and ages stay valid).
    """
    span = high - low if high > low else max(abs(high), 1.0)
    step = 10.0 ** (math.floor(math.log10(span)) - 2)
    new_low = math.floor((low - MARGIN * span) / step) * step
    new_high = math.ceil((high + MARGIN * span) / step) * step
    if low >= 0:
        new_low = max(new_low, 0.0)
    return _tidy(new_low), _tidy(new_high)


def _tidy(value: float) -> float:
    """Drop float noise such as 0.30000000000000004 from a rounded bound."""
    return float(f"{value:.12g}")
