"""Calibrated probabilities for every model kind, and how to measure calibration.

Relearn trusts a model's confidence in three places: the reinforcement step picks confident
mistakes (confidence >= 0.7), confidence-based performance estimation (``relearn.drift.
estimate``) turns confidences into an accuracy while outcomes are late, and the drift check
compares confidence distributions. A network trained on cross-entropy is typically
over-confident and boosted trees can be either way, so each classifier is calibrated on its
validation split right after ``fit``.

The method is temperature scaling on the log-probabilities, ``p_i ∝ p_i ** (1 / T)``, for
every kind (the MLP's logits are its log-probabilities up to a constant, so for it this is
exactly temperature scaling). One parameter fits reliably on a few hundred validation rows,
and it never changes which class is predicted: accuracy, the gates and the A/B comparison see
the same decisions, only the confidences move. ``T`` is chosen by minimising the validation
log loss (a bounded 1-D search over ``log T``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
ECE_BINS = 15
# log T is searched in [-LOG_T_BOUND, LOG_T_BOUND]: T from about 0.05 to 20.
_LOG_T_BOUND = 3.0
_EPS = 1e-12


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature (1.0: the model's own probabilities) and what it did on validation.

    ``ece_before`` / ``ece_after`` are the expected calibration errors on the validation
    split the temperature was fitted on (None when there was none).
    """

    temperature: float = 1.0
    rows: int = 0
    ece_before: float | None = None
    ece_after: float | None = None

    @property
    def identity(self) -> bool:
        return self.temperature == 1.0

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """``proba`` with each row's probabilities raised to ``1/T`` and renormalised."""
        if self.identity or proba.size == 0:
            return proba
        return _tempered(np.asarray(proba, dtype=np.float64), self.temperature)

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "method": "temperature",
            "temperature": self.temperature,
            "rows": self.rows,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
        }

    def save(self, directory: Path) -> None:
        (directory / CALIBRATION_FILE).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Calibration:
        """The saved calibration; a classifier saved before calibration existed gets T = 1."""
        path = directory / CALIBRATION_FILE
        if not path.is_file():
            log.info("%s has no %s: probabilities are uncalibrated", directory, CALIBRATION_FILE)
            return cls()
        data = json.loads(path.read_text())
        return cls(
            temperature=float(data["temperature"]),
            rows=int(data.get("rows", 0)),
            ece_before=data.get("ece_before"),
            ece_after=data.get("ece_after"),
        )


def fit_temperature(proba: np.ndarray, truth: np.ndarray) -> Calibration:
    """The temperature minimising the log loss of ``proba`` against label indices ``truth``."""
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(truth)
    if len(truth) == 0:
        return Calibration()
    rows = np.arange(len(truth))

    def loss(log_t: float) -> float:
        tempered = _tempered(proba, math.exp(log_t))
        return float(-np.log(np.clip(tempered[rows, truth], _EPS, 1.0)).mean())

    result = minimize_scalar(loss, bounds=(-_LOG_T_BOUND, _LOG_T_BOUND), method="bounded")
    temperature = float(math.exp(result.x)) if loss(result.x) < loss(0.0) else 1.0
    return Calibration(
        temperature=temperature,
        rows=len(truth),
        ece_before=expected_calibration_error(truth, proba),
        ece_after=expected_calibration_error(truth, _tempered(proba, temperature)),
    )


def expected_calibration_error(
    truth: np.ndarray, proba: np.ndarray, *, bins: int = ECE_BINS
) -> float:
    """Top-label ECE: |accuracy - mean confidence| per equal-width confidence bin, weighted
    by the bin's share of rows. ``truth`` holds label indices into ``proba``'s columns."""
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(truth)
    if len(truth) == 0:
        raise ValueError("cannot compute a calibration error on zero rows")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    return ece_of(confidence, correct, bins=bins)


def ece_of(confidence: np.ndarray, correct: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Top-label ECE from each row's confidence and whether its prediction was right."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gap = np.bincount(which, weights=correct - confidence, minlength=bins)
    return float(np.abs(gap).sum() / len(confidence))


def _tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """A class with probability 0 (absent from the training labels) stays impossible."""
    logits = np.log(np.clip(proba, _EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.where(proba > 0, np.exp(logits), 0.0)
    return weights / weights.sum(axis=1, keepdims=True)
