"""``analyze``: the error analysis of one model's labelled predictions, as a typed result.

Pure computation on frames already read (and cleaned) by the window readers: no database, no
MLflow. ``Findings`` round-trips through JSON (``to_dict`` / ``from_dict``) for the table and
the MLflow artifact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from relearn.analysis.calibration import Calibration, ConfusionPair, calibration, confusion_pairs
from relearn.analysis.levels import encode, fit_levels
from relearn.analysis.segments import Rate, Segment, search
from relearn.analysis.suggest import Suggestion, SuggestionKind, suggestions

if TYPE_CHECKING:
    import pandas as pd

    from relearn.config import ModelConfig


class AnalysisStatus(StrEnum):
    ANALYSED = "analysed"
    INSUFFICIENT_DATA = "insufficient_data"  # fewer labelled rows than ``min_rows``


class Role(StrEnum):
    """What the champion is compared with."""

    CANDIDATE = "candidate"  # a retraining run's candidate, on the same holdout rows
    CHALLENGER = "challenger"  # the live A/B test's challenger, on its own traffic


@dataclass(frozen=True)
class AnalysisOptions:
    """``min_support``: rows a segment needs to be tested; ``alpha``: the false discovery
    rate (Benjamini-Hochberg); ``bins``: quantile bins per numeric feature;
    ``max_categories``: most frequent values kept per categorical feature (the rest is
    ``other``); ``pairs``: test two-way combinations; ``max_segments``: segments kept."""

    min_rows: int = 100
    min_support: int = 50
    alpha: float = 0.05
    bins: int = 5
    max_categories: int = 10
    pairs: bool = True
    calibration_bins: int = 10
    max_segments: int = 20


@dataclass(frozen=True)
class Predictions:
    """Labelled predictions of one model: feature columns, truth, prediction, confidence."""

    features: pd.DataFrame
    actual: list[str]
    predicted: list[str]
    confidence: np.ndarray

    @property
    def wrong(self) -> np.ndarray:
        return np.fromiter(
            (a != p for a, p in zip(self.actual, self.predicted, strict=True)),
            dtype=bool,
            count=len(self.actual),
        )


@dataclass(frozen=True)
class Findings:
    """Where the champion is wrong, and what to do about it (ranked ``suggestions``)."""

    status: AnalysisStatus
    rows: int
    errors: int
    error_rate: float | None
    segments: list[Segment] = field(default_factory=list)
    tested_segments: int = 0
    confusion: list[ConfusionPair] = field(default_factory=list)
    calibration: Calibration | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    compared: Rate | None = None  # the compared model's overall errors
    alpha: float = AnalysisOptions.alpha
    min_support: int = AnalysisOptions.min_support

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "segments": [s.to_dict() for s in self.segments],
            "tested_segments": self.tested_segments,
            "confusion": [asdict(c) for c in self.confusion],
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "suggestions": [{**asdict(s), "kind": s.kind.value} for s in self.suggestions],
            "compared": None if self.compared is None else asdict(self.compared),
            "alpha": self.alpha,
            "min_support": self.min_support,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Findings:
        """Read back what ``to_dict`` wrote (Relearn's own table and artifact)."""
        calibration_ = data.get("calibration")
        compared = data.get("compared")
        return cls(
            status=AnalysisStatus(data["status"]),
            rows=data["rows"],
            errors=data["errors"],
            error_rate=data["error_rate"],
            segments=[Segment.from_dict(s) for s in data.get("segments", [])],
            tested_segments=data.get("tested_segments", 0),
            confusion=[ConfusionPair(**c) for c in data.get("confusion", [])],
            calibration=None if calibration_ is None else Calibration.from_dict(calibration_),
            suggestions=[
                Suggestion(s["rank"], SuggestionKind(s["kind"]), s["text"], s["subject"])
                for s in data.get("suggestions", [])
            ],
            compared=None if compared is None else Rate(**compared),
            alpha=data.get("alpha", AnalysisOptions.alpha),
            min_support=data.get("min_support", AnalysisOptions.min_support),
        )


def analyze(
    model_cfg: ModelConfig,
    champion: Predictions,
    *,
    compared: tuple[Role, Predictions] | None = None,
    options: AnalysisOptions | None = None,
) -> Findings:
    """Confusion pairs, significant segments, calibration and suggestions of ``champion``;
    each segment also carries the ``compared`` model's error on it."""
    options = options or AnalysisOptions()
    wrong = champion.wrong
    rows, errors = len(wrong), int(wrong.sum())
    overall = _rate(compared) if compared else None
    common = {"alpha": options.alpha, "min_support": options.min_support, "compared": overall}
    if rows < options.min_rows:
        return Findings(
            AnalysisStatus.INSUFFICIENT_DATA,
            rows,
            errors,
            errors / rows if rows else None,
            **common,
        )
    levels = fit_levels(
        model_cfg, champion.features, bins=options.bins, max_categories=options.max_categories
    )
    codes = encode(levels, champion.features)
    found = search(
        levels,
        codes,
        wrong,
        min_support=options.min_support,
        alpha=options.alpha,
        pairs=options.pairs,
    )
    segments = found.segments[: options.max_segments]
    if compared:
        other = compared[1]
        other_codes = (
            codes if other.features is champion.features else encode(levels, other.features)
        )
        columns = {lv.feature: i for i, lv in enumerate(levels)}
        segments = [_with_compared(s, compared[0], other, other_codes, columns) for s in segments]
    confusion = confusion_pairs(champion.actual, champion.predicted)
    reliability = calibration(champion.confidence, ~wrong, options.calibration_bins)
    return Findings(
        status=AnalysisStatus.ANALYSED,
        rows=rows,
        errors=errors,
        error_rate=errors / rows,
        segments=segments,
        tested_segments=found.tested,
        confusion=confusion,
        calibration=reliability,
        suggestions=suggestions(
            error_rate=errors / rows,
            segments=segments,
            tested=found.tested,
            alpha=options.alpha,
            confusion=confusion,
            calibration=reliability,
            classes=len(model_cfg.classes),
        ),
        **common,
    )


def _rate(compared: tuple[Role, Predictions]) -> Rate:
    role, predictions = compared
    return Rate(role.value, len(predictions.actual), int(predictions.wrong.sum()))


def _with_compared(
    segment: Segment,
    role: Role,
    other: Predictions,
    codes: np.ndarray,
    columns: dict[str, int],
) -> Segment:
    mask = segment.mask(codes, columns)
    rate = Rate(role.value, int(mask.sum()), int(other.wrong[mask].sum()))
    return Segment(**{**segment.__dict__, "compared": rate})
