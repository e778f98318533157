"""The replay's models and prediction log: what served each row, and cached predictions."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quality.traffic import START

if TYPE_CHECKING:
    from quality.traffic import Day
    from relearn.config import ModelConfig
    from relearn.training.classifier import TabularClassifier

_ids = itertools.count(1)


@dataclass
class Model:
    classifier: TabularClassifier
    id: int = field(default_factory=lambda: next(_ids))
    reference_accuracy: float | None = None
    gain: float | None = None  # holdout accuracy over the champion's, as the gate saw it
    holdout: dict | None = None  # the gate's metrics of it and of the champion it was
    champion_holdout: dict | None = None  # trained against (``against``), on its holdout
    against: int | None = None
    trained_hour: int | None = None  # the hour its training window ended


class Predictions:
    """Cached predictions of each model on each day's traffic and evaluation sample."""

    def __init__(self, model_cfg: ModelConfig, days: list[Day]) -> None:
        self.cfg, self.days = model_cfg, days
        self._traffic: dict[tuple[int, int], np.ndarray] = {}
        self._accuracy: dict[tuple[int, int], float] = {}

    def proba(self, model: Model, day: int) -> np.ndarray:
        key = (model.id, day)
        if key not in self._traffic:
            self._traffic[key] = model.classifier.predict_proba(self.days[day].frame)
        return self._traffic[key]

    def accuracy(self, model: Model, day: int) -> float:
        key = (model.id, day)
        if key not in self._accuracy:
            d = self.days[day]
            proba = model.classifier.predict_proba(d.eval_frame)
            predicted = np.asarray(self.cfg.classes, dtype=object)[proba.argmax(axis=1)]
            self._accuracy[key] = float(np.mean(predicted == d.eval_labels))
        return self._accuracy[key]


class Log:
    """The prediction log of one policy: what served each row, with its logged answer."""

    def __init__(self, model_cfg: ModelConfig, days: list[Day], delay: float) -> None:
        self.cfg, self.days, self.delay = model_cfg, days, delay
        self.served: list[np.ndarray] = [np.zeros(len(d.labels), dtype=int) for d in days]
        self.predicted: list[np.ndarray] = [np.empty(len(d.labels), dtype=object) for d in days]
        self.confidence: list[np.ndarray] = [np.zeros(len(d.labels)) for d in days]
        self.correct: list[np.ndarray] = [np.zeros(len(d.labels), dtype=bool) for d in days]

    def serve(self, day: int, rows: np.ndarray, model: Model, preds: Predictions) -> None:
        proba = preds.proba(model, day)[rows]
        best = proba.argmax(axis=1)
        self.served[day][rows] = model.id
        self.predicted[day][rows] = np.asarray(self.cfg.classes, dtype=object)[best]
        self.confidence[day][rows] = proba[np.arange(len(rows)), best]
        self.correct[day][rows] = self.predicted[day][rows] == self.days[day].labels[rows]

    def rows(self, since: float, until: float, now: float) -> list[tuple[int, np.ndarray]]:
        """(day, mask) of the rows predicted in [since, until) whose outcome is in by ``now``."""
        out = []
        for d in self.days[max(0, math.floor(since / 24)) : max(0, math.ceil(until / 24))]:
            mask = (d.hours >= since) & (d.hours < until) & (d.hours + self.delay <= now)
            if mask.any():
                out.append((d.index, mask))
        return out

    def labelled(self, since: float, until: float, now: float) -> pd.DataFrame:
        """Rows predicted in [since, until) whose outcome is in by ``now`` (hours)."""
        parts = []
        for index, mask in self.rows(since, until, now):
            d = self.days[index]
            part = d.frame[mask].copy()
            part["actual_label"] = d.labels[mask]
            part["predicted_label"] = self.predicted[d.index][mask]
            part["confidence"] = self.confidence[d.index][mask]
            part["served_by"] = self.served[d.index][mask]
            part["hour"] = d.hours[mask]
            part["predicted_at"] = pd.Timestamp(START) + pd.to_timedelta(d.hours[mask], unit="h")
            part["after"] = d.after[mask]
            part["prediction_id"] = d.row_ids[mask].astype(str)
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
