"""A model's reference distribution, built once from the rows it was evaluated on.

``build_profile`` summarises the training data (and optionally the model's predictions on
it) into a ``ReferenceProfile`` that round-trips through JSON, so the hourly check
(``relearn.drift.compare``) never reloads training data. Per numeric feature: quantile-bin
counts over the whole reference (PSI is exact), a sorted uniform sample (by default 20,000
values, for KS and Wasserstein) and moments; per categorical feature: counts of the
configured categories plus an ``__other__`` bucket; optionally the predicted-class mix and
the confidence histogram.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from relearn.config import FeatureType
from relearn.drift import stats
from relearn.drift.columns import (
    OTHER,
    category_counts,
    check_columns,
    check_length,
    numeric_values,
    run_jobs,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd

    from relearn.config import ModelConfig

PROFILE_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_SAMPLE_SIZE = 20_000


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
    there (None when unknown). ``importances`` are each feature's share of what moves the
    model's predictions (``relearn.drift.importance``), the weights of the drift score; a
    profile written before they existed has None (the score then weighs features equally).
    """

    model: str
    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    predicted_classes: CategoricalProfile | None = None
    confidence: Histogram | None = None
    reference_accuracy: float | None = None
    importances: dict[str, float] | None = None
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
            "importances": self.importances,
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
        importances = data.get("importances")
        return cls(
            model=str(data["model"]),
            rows=int(data["rows"]),
            numeric={p.name: p for p in numeric},
            categorical={p.name: p for p in categorical},
            predicted_classes=predicted_classes,
            confidence=None if confidence is None else Histogram.from_dict(confidence),
            reference_accuracy=None if accuracy is None else float(accuracy),
            importances=(
                None if importances is None else {str(k): float(v) for k, v in importances.items()}
            ),
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
    importances: dict[str, float] | None = None,
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
    if sample_size < 1:
        raise ValueError(f"sample_size must be positive, got {sample_size}")
    rows = len(features)
    if rows == 0:
        raise ValueError("cannot build a drift profile from zero rows")
    check_columns(features, model_cfg)
    check_length(predicted_labels, rows, "predicted_labels")
    check_length(confidences, rows, "confidences")
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    if importances is not None and set(importances) != set(model_cfg.feature_names):
        raise ValueError(
            f"importances name {sorted(importances)}, the model's features are "
            f"{sorted(model_cfg.feature_names)}"
        )

    jobs: list[Callable[[], NumericProfile | CategoricalProfile]] = []
    for feature in model_cfg.features:
        if feature.type is FeatureType.NUMERIC:
            values = numeric_values(features[feature.name])
            stream = np.random.default_rng([seed % 2**64, zlib.crc32(feature.name.encode())])
            jobs.append(partial(_profile_numeric, feature.name, values, bins, sample_size, stream))
        else:
            column = features[feature.name]
            jobs.append(partial(_profile_categorical, feature.name, column, feature.categories))
    results = run_jobs(jobs, rows, workers)
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
        importances=None if importances is None else dict(importances),
        bins=bins,
        sample_size=sample_size,
        seed=seed,
    )


def _profile_numeric(
    name: str, values: np.ndarray, bins: int, sample_size: int, stream: np.random.Generator
) -> NumericProfile:
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
    counts, missing = category_counts(values, categories)
    return CategoricalProfile(name, [*categories, OTHER], counts, missing)
