"""Which classes are mistaken for which, and whether confidence means what it says."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class ConfusionPair:
    """``actual`` predicted as ``predicted``: how often, as a share of all errors and of the
    rows whose true class is ``actual``."""

    actual: str
    predicted: str
    count: int
    share_of_errors: float
    share_of_class: float


def confusion_pairs(actual: Sequence[str], predicted: Sequence[str]) -> list[ConfusionPair]:
    """Every (true -> predicted) mistake, most frequent first."""
    mistakes = Counter((a, p) for a, p in zip(actual, predicted, strict=True) if a != p)
    total = sum(mistakes.values())
    per_class = Counter(actual)
    return [
        ConfusionPair(a, p, n, n / total, n / per_class[a])
        for (a, p), n in sorted(mistakes.items(), key=lambda item: (-item[1], item[0]))
    ]


@dataclass(frozen=True)
class ReliabilityBin:
    """Rows whose confidence fell in ``[low, high)``: their mean confidence and accuracy."""

    low: float
    high: float
    rows: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    """The reliability curve and its expected calibration error (the row-weighted mean gap
    between confidence and accuracy); ``gap`` > 0 means overconfident overall."""

    bins: list[ReliabilityBin]
    ece: float
    mean_confidence: float
    accuracy: float

    @property
    def gap(self) -> float:
        return self.mean_confidence - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": [b.__dict__ for b in self.bins],
            "ece": self.ece,
            "mean_confidence": self.mean_confidence,
            "accuracy": self.accuracy,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            bins=[ReliabilityBin(**b) for b in data["bins"]],
            ece=data["ece"],
            mean_confidence=data["mean_confidence"],
            accuracy=data["accuracy"],
        )


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Calibration:
    """Equal-width confidence bins over [0, 1] (empty ones left out) and the ECE."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    correct = np.asarray(correct, dtype=np.float64)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    rows = np.bincount(index, minlength=bins)
    confidence_sums = np.bincount(index, weights=confidence, minlength=bins)
    correct_sums = np.bincount(index, weights=correct, minlength=bins)
    found = [
        ReliabilityBin(
            low=i / bins,
            high=(i + 1) / bins,
            rows=int(rows[i]),
            mean_confidence=float(confidence_sums[i] / rows[i]),
            accuracy=float(correct_sums[i] / rows[i]),
        )
        for i in np.flatnonzero(rows)
    ]
    total = int(rows.sum())
    ece = sum(b.rows / total * abs(b.accuracy - b.mean_confidence) for b in found) if total else 0.0
    return Calibration(
        bins=found,
        ece=float(ece),
        mean_confidence=float(confidence.mean()) if total else 0.0,
        accuracy=float(correct.mean()) if total else 0.0,
    )
