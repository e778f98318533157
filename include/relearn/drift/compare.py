"""The drift check of a window of production rows against a stored reference profile.

``compare`` measures the window against the profile (``relearn.drift.profile``):

- numeric features: PSI on the reference's quantile bins (exact, from whole-reference bin
  counts), KS statistic and p-value and the Wasserstein distance in reference standard
  deviations (exact for the stored reference sample, by default 20,000 values, against the
  whole window);
- categorical features: PSI, Jensen-Shannon distance and a chi-squared goodness-of-fit
  test over the configured categories plus an ``__other__`` bucket;
- predictions: PSI of the predicted-class mix and of the confidence distribution.

Decisions rest on effect sizes, so that a huge window does not alarm on trivia: a feature
drifts when one of its effects reaches its threshold (``NUMERIC_THRESHOLDS`` /
``CATEGORICAL_THRESHOLDS``) *and* the window is large enough for that to be credible
(p-value below ``SIGNIFICANCE``; the p-value only vetoes, it never flags on its own).

The window's ``score`` weighs each drifted feature by how much it matters and how far it
moved: ``score = min(1, sum(weight * min(strength, MAX_STRENGTH)))`` over the drifted
features significant at ``SIGNIFICANCE / assessed features``, where ``weight`` is the
feature's share of the champion's permutation importance (stored in the profile; equal
shares for a profile without importances) renormalised over the assessed features, and
``strength`` the largest ratio of an effect to its threshold (1 just at the threshold). The
score is compared with the model's ``drift.threshold`` (0.2 by default). So one feature
carrying 40 % of the model's attention, moved by 0.3 sd (Wasserstein 0.3, strength 3),
scores 1; a feature with under 0.2 / 3 = 6.7 % of it never alarms alone, however far it
moves; and with equal weights over six features one strongly drifted feature now alarms
(1/6 x 3 = 0.5) where a share of drifted features (1/6 = 0.17) never did. Each feature's
``weight``, ``strength`` and ``contribution`` are in the report: they explain the score.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any

from relearn.config import FeatureType
from relearn.drift import stats
from relearn.drift.columns import (
    category_counts,
    check_columns,
    check_length,
    finite_or_none,
    json_safe,
    numeric_values,
    run_jobs,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile

log = logging.getLogger(__name__)

# Effect-size thresholds (a feature drifts when any is reached and the change is significant).
# PSI >= 0.2 is the conventional "significant shift". KS >= 0.1 and a Wasserstein distance of
# 0.1 reference sd correspond to moving the mean by roughly 0.25 and 0.1 sd respectively; the
# Wasserstein rule is the more sensitive of the two for location shifts, KS for shape changes.
# A Jensen-Shannon distance of 0.1 (base 2) is about 0.01 bits of divergence, e.g. one
# category of two moving from 50% to 62%.
NUMERIC_THRESHOLDS = {"psi": 0.2, "ks": 0.1, "wasserstein": 0.1}
CATEGORICAL_THRESHOLDS = {"psi": 0.2, "js": 0.1}
PREDICTION_PSI_THRESHOLD = 0.2
# An effect only counts when a window this large would show it by chance with probability
# below SIGNIFICANCE (KS p-value for numeric, chi-squared p-value for categorical features).
# Without this veto, small windows (a few hundred rows) cross the Wasserstein threshold by
# sampling noise alone.
SIGNIFICANCE = 0.01
# A feature far past its thresholds counts at most this many times its weight in the score.
MAX_STRENGTH = 3.0


class Verdict(StrEnum):
    DRIFTED = "drifted"
    STABLE = "stable"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift statistics in a window.

    ``rows`` counts the window's usable (non-missing, finite) values; a feature with fewer
    than ``min_rows`` of them is not ``assessed`` (no statistics, not in the score).
    ``effects`` names the thresholds reached (e.g. ``"wasserstein>=0.1"``); ``drifted`` is
    true when there is at least one and the change is significant. ``strength`` is the
    largest effect-to-threshold ratio; ``weight`` the feature's importance share and
    ``contribution`` what it adds to the window's score (0 unless drifted).
    """

    name: str
    type: str
    rows: int
    missing: int
    assessed: bool
    drifted: bool = False
    effects: tuple[str, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)
    strength: float = 0.0
    weight: float = 0.0
    contribution: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "rows": self.rows,
            "missing": self.missing,
            "assessed": self.assessed,
            "drifted": self.drifted,
            "effects": list(self.effects),
            "stats": json_safe(self.stats),
            **json_safe(
                {
                    "strength": self.strength,
                    "weight": self.weight,
                    "contribution": self.contribution,
                }
            ),
        }


@dataclass(frozen=True)
class PredictionDrift:
    """Change of the model's output: predicted-class mix and confidence distribution.

    Reported beside the feature score, not inside it: a prediction shift with stable inputs
    is a model or pipeline change rather than data drift, and the caller may act on it.
    """

    rows: int
    class_psi: float | None
    confidence_psi: float | None
    drifted: bool
    class_frequencies: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "rows": self.rows,
                "class_psi": self.class_psi,
                "confidence_psi": self.confidence_psi,
                "drifted": self.drifted,
                "class_frequencies": self.class_frequencies,
            }
        )


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one drift check; ``to_dict()`` is JSON-safe (no NaN or infinity)."""

    model: str
    verdict: Verdict
    score: float | None
    threshold: float
    rows: int
    min_rows: int
    features: list[FeatureDrift]
    prediction: PredictionDrift | None
    reference_rows: int
    reference_accuracy: float | None

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def drifted(self) -> bool:
        return self.verdict is Verdict.DRIFTED

    def feature(self, name: str) -> FeatureDrift:
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "verdict": str(self.verdict),
            "score": finite_or_none(self.score),
            "threshold": self.threshold,
            "rows": self.rows,
            "min_rows": self.min_rows,
            "drifted_features": self.drifted_features,
            "features": [f.to_dict() for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "reference": {"rows": self.reference_rows, "accuracy": self.reference_accuracy},
        }


def compare(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    model_cfg: ModelConfig,
    *,
    predicted_labels: Sequence[str] | np.ndarray | pd.Series | None = None,
    confidences: Sequence[float] | np.ndarray | pd.Series | None = None,
    threshold: float | None = None,
    min_rows: int | None = None,
    workers: int | None = None,
) -> DriftReport:
    """Check the ``current`` window against ``profile``.

    ``threshold`` and ``min_rows`` default to the model's ``drift`` configuration. A window
    with fewer than ``min_rows`` rows gets the verdict ``insufficient_data`` and no
    statistics; so does one in which no feature has ``min_rows`` usable values. Otherwise
    ``score`` = drifted / assessed features and the verdict is ``drifted`` when
    ``score >= threshold``. Features run in a thread pool for large windows (numpy's sort
    and searches release the GIL); ``workers`` defaults to the usable CPUs.
    """
    threshold = model_cfg.drift.threshold if threshold is None else threshold
    min_rows = model_cfg.drift.min_rows if min_rows is None else min_rows
    _check_profile(profile, model_cfg)
    rows = len(current)
    check_length(predicted_labels, rows, "predicted_labels")
    check_length(confidences, rows, "confidences")

    def report(
        verdict: Verdict,
        score: float | None,
        features: list[FeatureDrift],
        prediction: PredictionDrift | None,
    ) -> DriftReport:
        return DriftReport(
            model=model_cfg.name,
            verdict=verdict,
            score=score,
            threshold=threshold,
            rows=rows,
            min_rows=min_rows,
            features=features,
            prediction=prediction,
            reference_rows=profile.rows,
            reference_accuracy=profile.reference_accuracy,
        )

    check_columns(current, model_cfg)
    if rows < min_rows:
        return report(Verdict.INSUFFICIENT_DATA, None, [], None)

    jobs: list[Callable[[], FeatureDrift]] = []
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            values = numeric_values(current[feature.name])
            jobs.append(partial(_compare_numeric, profile.numeric[feature.name], values, min_rows))
        else:
            reference = profile.categorical[feature.name]
            jobs.append(partial(_compare_categorical, reference, current[feature.name], min_rows))
    features = run_jobs(jobs, rows, workers)
    prediction = _compare_predictions(profile, predicted_labels, confidences, min_rows)

    if not any(f.assessed for f in features):
        return report(Verdict.INSUFFICIENT_DATA, None, features, prediction)
    features = weigh(features, profile)
    score = min(1.0, sum(f.contribution for f in features))
    verdict = Verdict.DRIFTED if score >= threshold else Verdict.STABLE
    return report(verdict, score, features, prediction)


def weigh(features: list[FeatureDrift], profile: ReferenceProfile) -> list[FeatureDrift]:
    """``features`` with their weight (importance share among the assessed ones) and their
    contribution to the score (weight x capped strength, for drifted features).

    One feature can now alarm on its own, so a contribution needs the family-wise
    significance ``SIGNIFICANCE / assessed features`` (Bonferroni): among six features, one
    flagged by chance at p < 0.01 in a small window does not raise the alarm.
    """
    assessed = [f.name for f in features if f.assessed]
    importances = profile.importances
    if importances is None:
        log.info("%s: the reference profile has no importances: equal weights", profile.model)
        importances = dict.fromkeys(assessed, 1.0)
    total = sum(importances.get(name, 0.0) for name in assessed)
    weighed = []
    for item in features:
        if not item.assessed:
            weighed.append(item)
            continue
        weight = importances.get(item.name, 0.0) / total if total > 0 else 1 / len(assessed)
        counts = item.drifted and _pvalue(item) < SIGNIFICANCE / len(assessed)
        contribution = weight * min(item.strength, MAX_STRENGTH) if counts else 0.0
        weighed.append(replace(item, weight=weight, contribution=contribution))
    return weighed


def _compare_numeric(reference: NumericProfile, values: np.ndarray, min_rows: int) -> FeatureDrift:
    ordered = stats.finite_sorted(values)
    usable, missing = int(ordered.size), int(values.size - ordered.size)
    if usable < min_rows:
        return FeatureDrift(reference.name, FeatureType.NUMERIC.value, usable, missing, False)
    psi = stats.psi(reference.counts, stats.bin_counts_sorted(ordered, reference.edges))
    ks, pvalue, wasserstein = stats.ks_wasserstein_sorted(
        reference.sample, ordered, reference.scale
    )
    measured = {"psi": psi, "ks": ks, "wasserstein": wasserstein}
    effects = _effects(measured, NUMERIC_THRESHOLDS)
    strength = _strength(measured, NUMERIC_THRESHOLDS)
    return FeatureDrift(
        name=reference.name,
        type=FeatureType.NUMERIC.value,
        rows=usable,
        missing=missing,
        assessed=True,
        drifted=bool(effects) and pvalue < SIGNIFICANCE,
        effects=effects,
        stats={
            **measured,
            "ks_pvalue": pvalue,
            "mean_shift_std": (float(ordered.mean()) - reference.mean) / reference.scale,
        },
        strength=strength,
    )


def _effects(measured: dict[str, float], thresholds: dict[str, float]) -> tuple[str, ...]:
    """The effect sizes at or over their threshold, e.g. ``("psi>=0.2",)``."""
    return tuple(f"{key}>={limit:g}" for key, limit in thresholds.items() if measured[key] >= limit)


def _pvalue(item: FeatureDrift) -> float:
    value = item.stats.get("ks_pvalue", item.stats.get("chi2_pvalue"))
    return 1.0 if value is None or not math.isfinite(value) else value


def _strength(measured: dict[str, float], thresholds: dict[str, float]) -> float:
    """The largest effect-to-threshold ratio (non-finite effects count as the cap)."""
    ratios = [
        measured[key] / limit if math.isfinite(measured[key]) else MAX_STRENGTH
        for key, limit in thresholds.items()
    ]
    return max(0.0, *ratios)


def _compare_categorical(
    reference: CategoricalProfile, values: pd.Series, min_rows: int
) -> FeatureDrift:
    counts, missing = category_counts(values, reference.categories[:-1])
    usable = sum(counts)
    if usable < min_rows:
        return FeatureDrift(reference.name, FeatureType.CATEGORICAL.value, usable, missing, False)
    chi2, pvalue = stats.chi_squared(reference.counts, counts)
    measured = {
        "psi": stats.category_psi(reference.counts, counts),
        "js": stats.jensen_shannon_distance(reference.counts, counts),
    }
    effects = _effects(measured, CATEGORICAL_THRESHOLDS)
    strength = _strength(measured, CATEGORICAL_THRESHOLDS)
    return FeatureDrift(
        name=reference.name,
        type=FeatureType.CATEGORICAL.value,
        rows=usable,
        missing=missing,
        assessed=True,
        drifted=bool(effects) and pvalue < SIGNIFICANCE,
        effects=effects,
        stats={**measured, "chi2": chi2, "chi2_pvalue": pvalue},
        strength=strength,
    )


def _compare_predictions(
    profile: ReferenceProfile,
    predicted_labels: Sequence[str] | np.ndarray | pd.Series | None,
    confidences: Sequence[float] | np.ndarray | pd.Series | None,
    min_rows: int,
) -> PredictionDrift | None:
    """PSI of class mix and confidence, for whichever the profile and the caller both have."""
    class_psi = confidence_psi = None
    frequencies: dict[str, float] = {}
    rows = 0
    reference = profile.predicted_classes
    if reference is not None and predicted_labels is not None:
        counts, _ = category_counts(predicted_labels, reference.categories[:-1])
        rows = sum(counts)
        if rows >= min_rows:
            class_psi = stats.category_psi(reference.counts, counts)
            frequencies = {c: n / rows for c, n in zip(reference.categories, counts, strict=True)}
    if profile.confidence is not None and confidences is not None:
        values = stats.finite_sorted(confidences)
        rows = max(rows, int(values.size))
        if values.size >= min_rows:
            counts = stats.bin_counts_sorted(values, profile.confidence.edges)
            confidence_psi = stats.psi(profile.confidence.counts, counts)
    if class_psi is None and confidence_psi is None:
        return None
    drifted = any(
        value is not None and value >= PREDICTION_PSI_THRESHOLD
        for value in (class_psi, confidence_psi)
    )
    return PredictionDrift(rows, class_psi, confidence_psi, drifted, frequencies)


def _check_profile(profile: ReferenceProfile, model_cfg: ModelConfig) -> None:
    """The profile must describe exactly this model's features; rebuild it after a change."""
    problems = []
    if profile.model != model_cfg.name:
        problems.append(f"profile is for model '{profile.model}'")
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            if feature.name not in profile.numeric:
                problems.append(f"no numeric profile for '{feature.name}'")
        else:
            reference = profile.categorical.get(feature.name)
            if reference is None:
                problems.append(f"no categorical profile for '{feature.name}'")
            elif reference.categories[:-1] != list(feature.categories):
                problems.append(f"categories of '{feature.name}' changed since the profile")
    if problems:
        raise ValueError(
            f"drift profile does not match model {model_cfg.name}: " + "; ".join(problems)
        )
