"""Train / validation / holdout splits of the rows a model's v1 learns from.

With a time column the split follows time, as the model will live: it trains on the past
and is validated and judged on the most recent rows (a random split would let it peek at
the future and overstate its accuracy). Without one, a seeded split stratified by class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sklearn.model_selection import train_test_split

if TYPE_CHECKING:
    import pandas as pd

TRAIN_FRACTION = 0.7
# The rest is halved between validation (early stopping) and holdout (the reported metrics).
VALIDATION_SHARE_OF_REST = 0.5
# Stratifying needs every class in both parts of a cut.
_MIN_ROWS_PER_CLASS = 2


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame


def time_ordered_split(frame: pd.DataFrame, time_column: str) -> Split:
    """Oldest ``TRAIN_FRACTION`` of rows to train, then validation, then the newest as holdout."""
    ordered = frame.sort_values(time_column, kind="stable")
    n = len(ordered)
    train_end = round(n * TRAIN_FRACTION)
    validation_end = train_end + round((n - train_end) * VALIDATION_SHARE_OF_REST)
    return Split(
        ordered.iloc[:train_end],
        ordered.iloc[train_end:validation_end],
        ordered.iloc[validation_end:],
    )


def stratified_split(frame: pd.DataFrame, label: str, seed: int) -> Split:
    """A seeded random split keeping the class mix in every part (when every class has rows
    enough to split; a plain random split otherwise)."""
    train, rest = train_test_split(
        frame, train_size=TRAIN_FRACTION, random_state=seed, stratify=_strata(frame, label)
    )
    validation, holdout = train_test_split(
        rest,
        train_size=VALIDATION_SHARE_OF_REST,
        random_state=seed,
        stratify=_strata(rest, label),
    )
    return Split(train, validation, holdout)


def _strata(frame: pd.DataFrame, label: str) -> pd.Series | None:
    counts = frame[label].value_counts()
    return frame[label] if counts.min() >= _MIN_ROWS_PER_CLASS else None
