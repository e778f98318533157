"""A model's reference distribution, built once, and the drift check of a window against it.

``build_profile`` summarises the training data (and optionally the model's predictions on
it) into a ``ReferenceProfile`` that round-trips through JSON, so the hourly check never
reloads training data. ``compare`` measures a window of production rows against it:

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
(p-value below ``SIGNIFICANCE``; the p-value only vetoes, it never flags on its own). The
window's ``score`` is the share of assessed features that drift, compared with the model's
``drift.threshold`` (0.2 by default: at least a fifth of the inputs moved).

numpy and pandas are imported inside functions (ruff TID253: the core stays cheap to import).
"""

from __future__ import annotations

import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any

from relearn.config import FeatureType
from relearn.drift import stats

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import pandas as pd

    from relearn.config import ModelConfig

PROFILE_VERSION = 1
OTHER = "__other__"
DEFAULT_BINS = 10
DEFAULT_SAMPLE_SIZE = 20_000

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
# Below this many rows the thread pool costs more than it saves.
_PARALLEL_MIN_ROWS = 50_000


class Verdict(StrEnum):
    DRIFTED = "drifted"
    STABLE = "stable"
    INSUFFICIENT_DATA = "insufficient_data"


# --- the profile ----------------------------------------------------------------------------


@dataclass(eq=False)
class NumericProfile:
    """One numeric feature of the reference: quantile bins, a sorted sample and moments.

    ``counts`` are over the whole reference (so PSI is exact); ``sample`` is a uniform
    sample without replacement of at most ``sample_size`` finite values, sorted, used by KS
    and Wasserstein. ``std`` is the population standard deviation of the finite values.
    """

    name: str
    rows: int
    missing: int
    mean: float
    std: float
    edges: np.ndarray
    counts: np.ndarray
    sample: np.ndarray

    @property
    def scale(self) -> float:
        """The Wasserstein unit: the reference std, or 1.0 for a constant reference column."""
        return self.std if self.std > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "sample": self.sample.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericProfile:
        import numpy as np

        return cls(
            name=str(data["name"]),
            rows=int(data["rows"]),
            missing=int(data["missing"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            edges=np.asarray(data["edges"], dtype=np.float64),
            counts=np.asarray(data["counts"], dtype=np.int64),
            sample=np.asarray(data["sample"], dtype=np.float64),
        )


@dataclass(eq=False)
class CategoricalProfile:
    """Counts per category: the configured ones, then ``__other__`` for anything else."""

    name: str
    categories: list[str]
    counts: list[int]
    missing: int

    @property
    def rows(self) -> int:
        return sum(self.counts)

    @property
    def frequencies(self) -> dict[str, float]:
        total = self.rows or 1
        return {c: n / total for c, n in zip(self.categories, self.counts, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "categories": list(self.categories),
            "counts": list(self.counts),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalProfile:
        return cls(
            name=str(data["name"]),
            categories=[str(c) for c in data["categories"]],
            counts=[int(n) for n in data["counts"]],
            missing=int(data["missing"]),
        )


@dataclass(eq=False)
class Histogram:
    """Quantile-bin counts of a numeric quantity (the model's confidence)."""

    edges: np.ndarray
    counts: np.ndarray
    missing: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        import numpy as np

        return cls(
            edges=np.asarray(data["edges"], dtype=np.float64),
            counts=np.asarray(data["counts"], dtype=np.int64),
            missing=int(data["missing"]),
        )


@dataclass(eq=False)
class ReferenceProfile:
    """Everything a drift check needs from the reference data, JSON-serialisable.

    ``predicted_classes`` and ``confidence`` are present when the profile was built with the
    model's predictions on the reference rows; ``reference_accuracy`` is the model's accuracy
    there (None when unknown).
    """

    model: str
    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    predicted_classes: CategoricalProfile | None = None
    confidence: Histogram | None = None
    reference_accuracy: float | None = None
    bins: int = DEFAULT_BINS
    sample_size: int = DEFAULT_SAMPLE_SIZE
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "model": self.model,
            "rows": self.rows,
            "bins": self.bins,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "reference_accuracy": self.reference_accuracy,
            "numeric": [p.to_dict() for p in self.numeric.values()],
            "categorical": [p.to_dict() for p in self.categorical.values()],
            "predicted_classes": (
                None if self.predicted_classes is None else self.predicted_classes.to_dict()
            ),
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        """Inverse of ``to_dict``; a ValueError for a profile written by another version."""
        version = data.get("version")
        if version != PROFILE_VERSION:
            raise ValueError(
                f"unsupported drift profile version {version!r} (expected {PROFILE_VERSION}); "
                "rebuild the profile"
            )
        numeric = [NumericProfile.from_dict(p) for p in data["numeric"]]
        categorical = [CategoricalProfile.from_dict(p) for p in data["categorical"]]
        predicted = data.get("predicted_classes")
        predicted_classes = None if predicted is None else CategoricalProfile.from_dict(predicted)
        confidence = data.get("confidence")
        accuracy = data.get("reference_accuracy")
        return cls(
            model=str(data["model"]),
            rows=int(data["rows"]),
            numeric={p.name: p for p in numeric},
            categorical={p.name: p for p in categorical},
            predicted_classes=predicted_classes,
            confidence=None if confidence is None else Histogram.from_dict(confidence),
            reference_accuracy=None if accuracy is None else float(accuracy),
            bins=int(data["bins"]),
            sample_size=int(data["sample_size"]),
            seed=int(data["seed"]),
        )


def build_profile(
    features: pd.DataFrame,
    model_cfg: ModelConfig,
    *,
    predicted_labels: Sequence[str] | np.ndarray | pd.Series | None = None,
    confidences: Sequence[float] | np.ndarray | pd.Series | None = None,
    accuracy: float | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    bins: int = DEFAULT_BINS,
    workers: int | None = None,
) -> ReferenceProfile:
    """Summarise the reference rows of ``model_cfg``'s features (extra columns are ignored).

    The sample of each numeric feature is drawn from its own seeded stream (``seed`` and the
    feature name), so the same data and seed always give the same profile, and adding a
    feature does not change the others' samples. A feature without any value raises.
    """
    import numpy as np

    if sample_size < 1:
        raise ValueError(f"sample_size must be positive, got {sample_size}")
    rows = len(features)
    if rows == 0:
        raise ValueError("cannot build a drift profile from zero rows")
    _check_columns(features, model_cfg)
    _check_length(predicted_labels, rows, "predicted_labels")
    _check_length(confidences, rows, "confidences")
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")

    jobs: list[Callable[[], NumericProfile | CategoricalProfile]] = []
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            values = _numeric_values(features[feature.name])
            stream = np.random.default_rng([seed % 2**64, zlib.crc32(feature.name.encode())])
            jobs.append(partial(_profile_numeric, feature.name, values, bins, sample_size, stream))
        else:
            column = features[feature.name]
            jobs.append(partial(_profile_categorical, feature.name, column, feature.categories))
    results = _run(jobs, rows, workers)
    for result in results:
        if result.rows == 0:
            raise ValueError(f"feature '{result.name}' has no value in the reference data")

    predicted = None
    if predicted_labels is not None:
        predicted = _profile_categorical("predicted_class", predicted_labels, model_cfg.classes)
    confidence = None
    if confidences is not None:
        values = stats.finite_sorted(confidences)
        if values.size == 0:
            raise ValueError("confidences has no finite value")
        edges = stats.quantile_edges(values, bins)
        confidence = Histogram(
            edges, stats.bin_counts_sorted(values, edges), missing=rows - values.size
        )
    return ReferenceProfile(
        model=model_cfg.name,
        rows=rows,
        numeric={r.name: r for r in results if isinstance(r, NumericProfile)},
        categorical={r.name: r for r in results if isinstance(r, CategoricalProfile)},
        predicted_classes=predicted,
        confidence=confidence,
        reference_accuracy=None if accuracy is None else float(accuracy),
        bins=bins,
        sample_size=sample_size,
        seed=seed,
    )


def _profile_numeric(
    name: str, values: np.ndarray, bins: int, sample_size: int, stream: np.random.Generator
) -> NumericProfile:
    import numpy as np

    ordered = stats.finite_sorted(values)
    missing = values.size - ordered.size
    if ordered.size == 0:
        empty = np.empty(0)
        return NumericProfile(name, 0, missing, 0.0, 0.0, empty, empty.astype(np.int64), empty)
    edges = stats.quantile_edges(ordered, bins)
    if ordered.size > sample_size:
        # Sorted indices into a sorted array give a sorted sample without another sort.
        picked = np.sort(stream.choice(ordered.size, size=sample_size, replace=False))
        sample = ordered[picked]
    else:
        sample = ordered
    return NumericProfile(
        name=name,
        rows=int(ordered.size),
        missing=int(missing),
        mean=float(ordered.mean()),
        std=float(ordered.std()),
        edges=edges,
        counts=stats.bin_counts_sorted(ordered, edges),
        sample=np.ascontiguousarray(sample),
    )


def _profile_categorical(
    name: str, values: Sequence[str] | np.ndarray | pd.Series, categories: Sequence[str]
) -> CategoricalProfile:
    counts, missing = _category_counts(values, categories)
    return CategoricalProfile(name, [*categories, OTHER], counts, missing)


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift statistics in a window.

    ``rows`` counts the window's usable (non-missing, finite) values; a feature with fewer
    than ``min_rows`` of them is not ``assessed`` (no statistics, not in the score).
    ``effects`` names the thresholds reached (e.g. ``"wasserstein>=0.1"``); ``drifted`` is
    true when there is at least one and the change is significant.
    """

    name: str
    type: str
    rows: int
    missing: int
    assessed: bool
    drifted: bool = False
    effects: tuple[str, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "rows": self.rows,
            "missing": self.missing,
            "assessed": self.assessed,
            "drifted": self.drifted,
            "effects": list(self.effects),
            "stats": _json_safe(self.stats),
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
        return _json_safe(
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
            "score": _finite_or_none(self.score),
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
    _check_length(predicted_labels, rows, "predicted_labels")
    _check_length(confidences, rows, "confidences")

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

    _check_columns(current, model_cfg)
    if rows < min_rows:
        return report(Verdict.INSUFFICIENT_DATA, None, [], None)

    jobs: list[Callable[[], FeatureDrift]] = []
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            values = _numeric_values(current[feature.name])
            jobs.append(partial(_compare_numeric, profile.numeric[feature.name], values, min_rows))
        else:
            reference = profile.categorical[feature.name]
            jobs.append(partial(_compare_categorical, reference, current[feature.name], min_rows))
    features = _run(jobs, rows, workers)
    prediction = _compare_predictions(profile, predicted_labels, confidences, min_rows)

    assessed = [f for f in features if f.assessed]
    if not assessed:
        return report(Verdict.INSUFFICIENT_DATA, None, features, prediction)
    score = sum(f.drifted for f in assessed) / len(assessed)
    verdict = Verdict.DRIFTED if score >= threshold else Verdict.STABLE
    return report(verdict, score, features, prediction)


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
    )


def _effects(measured: dict[str, float], thresholds: dict[str, float]) -> tuple[str, ...]:
    """The effect sizes at or over their threshold, e.g. ``("psi>=0.2",)``."""
    return tuple(f"{key}>={limit:g}" for key, limit in thresholds.items() if measured[key] >= limit)


def _compare_categorical(
    reference: CategoricalProfile, values: pd.Series, min_rows: int
) -> FeatureDrift:
    counts, missing = _category_counts(values, reference.categories[:-1])
    usable = sum(counts)
    if usable < min_rows:
        return FeatureDrift(reference.name, FeatureType.CATEGORICAL.value, usable, missing, False)
    chi2, pvalue = stats.chi_squared(reference.counts, counts)
    measured = {
        "psi": stats.category_psi(reference.counts, counts),
        "js": stats.jensen_shannon_distance(reference.counts, counts),
    }
    effects = _effects(measured, CATEGORICAL_THRESHOLDS)
    return FeatureDrift(
        name=reference.name,
        type=FeatureType.CATEGORICAL.value,
        rows=usable,
        missing=missing,
        assessed=True,
        drifted=bool(effects) and pvalue < SIGNIFICANCE,
        effects=effects,
        stats={**measured, "chi2": chi2, "chi2_pvalue": pvalue},
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
        counts, _ = _category_counts(predicted_labels, reference.categories[:-1])
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


# --- helpers --------------------------------------------------------------------------------


def _run(jobs: list[Callable[[], Any]], rows: int, workers: int | None) -> list[Any]:
    """Run ``jobs`` in order, on a thread pool when the window is large enough to gain."""
    workers = _usable_cpus() if workers is None else workers
    workers = min(workers, len(jobs))
    if workers <= 1 or rows < _PARALLEL_MIN_ROWS:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relearn-drift") as pool:
        return list(pool.map(lambda job: job(), jobs))


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _numeric_values(column: pd.Series) -> np.ndarray:
    """A float64 array of the column without copying when it already is one."""
    import numpy as np

    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _category_counts(
    values: Sequence[str] | np.ndarray | pd.Series, categories: Sequence[str]
) -> tuple[list[int], int]:
    """Counts per configured category then ``__other__``, and the number of missing values.

    Values are compared as strings, so a column read back as numbers still matches
    categories configured as ``"1"``, ``"2"``.
    """
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    observed = series.value_counts(dropna=True, sort=False)
    missing = int(len(series) - observed.sum())
    if pd.api.types.infer_dtype(observed.index, skipna=True) not in ("string", "empty"):
        observed = observed.groupby(observed.index.map(str)).sum()
    known = observed.reindex(list(categories), fill_value=0)
    counts = [int(n) for n in known.to_numpy()]
    return [*counts, int(observed.sum()) - sum(counts)], missing


def _check_columns(frame: pd.DataFrame, model_cfg: ModelConfig) -> None:
    absent = [name for name in model_cfg.feature_names if name not in frame.columns]
    if absent:
        raise ValueError(f"missing feature column(s) {absent} for model {model_cfg.name}")


def _check_length(values: Sequence[Any] | None, rows: int, what: str) -> None:
    if values is not None and len(values) != rows:
        raise ValueError(f"{what} has {len(values)} entries for {rows} rows")


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


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return _finite_or_none(value)
    return value
