"""A seeded synthetic classification world that matches one model's feature schema.

The demo, the tests and the benchmarks need traffic whose ground truth is known and whose
drift starts at a chosen moment, without any real data. Everything is derived from one seed:
the same seed always gives the same world, and the same generator the same sample.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.config import FeatureType, ModelConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from relearn.config import Feature

logger = logging.getLogger(__name__)

# Separate random streams per purpose, so that drawing a reference frame or adding a drift
# never changes the world's base parameters.
_STREAM_FEATURE = 1
_STREAM_LABEL = 2
_STREAM_CALIBRATION = 3
_STREAM_REFERENCE = 4
_STREAM_DRIFT = 5
# Stands in for every drift's start when keying its randomness (see ``_drift_rng``).
_KEY_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CALIBRATION_ROWS = 20_000
_DIRICHLET_CONCENTRATION = 3.0


@dataclass(frozen=True)
class Drift:
    """A change of the world that applies to every row stamped at or after ``start``.

    Naive datetimes are read as UTC.
    """

    start: datetime


@dataclass(frozen=True)
class CovariateShift(Drift):
    """Numeric feature means move by ``shift_std`` of their standard deviation.

    ``features`` names the numeric features to move, or is the fraction of numeric features
    to move (picked deterministically from the world seed; see ``World.covariate_features``).
    The label function is unchanged, so labels follow the moved inputs as they would in life.
    """

    features: Sequence[str] | float = 0.5
    shift_std: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.features, float | int):
            if not 0 < self.features <= 1:
                raise ValueError("CovariateShift.features as a fraction must be in (0, 1]")
        else:
            if isinstance(self.features, str) or not self.features:
                raise ValueError("CovariateShift.features must be a non-empty list of names")
            object.__setattr__(self, "features", tuple(self.features))


@dataclass(frozen=True)
class ConceptShift(Drift):
    """The label function changes while every feature distribution stays the same.

    ``strength`` in (0, 1]: the most important feature's effect is scaled by
    ``cos(pi * strength)`` (reversed at 1) and every other effect is rotated by
    ``strength * 90`` degrees towards a fresh random direction. The class bias is
    re-calibrated, so the class mix stays close to ``class_weights``: only accuracy tells.
    """

    strength: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.strength <= 1:
            raise ValueError("ConceptShift.strength must be in (0, 1]")


@dataclass(frozen=True)
class _LabelFunction:
    """Per-class effects, one array per feature in config order, plus the class bias.

    A numeric feature's array has shape (classes, 1) and multiplies the standardised value;
    a categorical feature's array has shape (classes, categories) and is indexed by category.
    """

    effects: tuple[np.ndarray, ...]
    bias: np.ndarray


def _entropy(seed: int, *keys: int) -> list[int]:
    # SeedSequence needs non-negative integers; configs may hold any int.
    return [seed % 2**64, *keys]


def _epoch_ns(at: datetime | Sequence[datetime], n: int) -> np.ndarray:
    """Row timestamps as UTC nanoseconds (naive datetimes are UTC) for cheap comparisons."""
    if isinstance(at, datetime):
        return np.full(n, _epoch_ns([at], 1)[0])
    if len(at) != n:
        raise ValueError(f"got {len(at)} timestamps for {n} rows")
    values = pd.to_datetime(pd.Index(list(at), dtype=object), utc=True)
    return values.tz_convert(None).to_numpy("datetime64[ns]").view("int64")


def _drift_rng(seed: int, drift: Drift) -> np.random.Generator:
    """Randomness owned by one drift: the same drift picks the same changes in any world order.

    Keyed by the drift's kind and parameters but not its start, so a demo or test that places
    its drift relative to the wall clock sees the same change on every run (reproducible).
    """
    key = repr(replace(drift, start=_KEY_EPOCH))
    return np.random.default_rng(_entropy(seed, _STREAM_DRIFT, zlib.crc32(key.encode())))


def _numeric_distribution(feature: Feature, rng: np.random.Generator) -> tuple[float, float]:
    """Mean and std well inside the feature's bounds, so clipping rarely distorts the normal."""
    low, high = feature.min, feature.max
    if low is not None and high is not None:
        span = high - low
        return low + span * rng.uniform(0.35, 0.65), span * rng.uniform(0.06, 0.12)
    std = 10.0 ** rng.uniform(0.0, 2.0)
    if low is not None:
        return low + std * rng.uniform(3.0, 5.0), std
    if high is not None:
        return high - std * rng.uniform(3.0, 5.0), std
    return std * rng.uniform(-3.0, 3.0), std


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class World:
    """The feature distributions and label function of one model, optionally drifting.

    ``seed`` defaults to ``model_cfg.simulation.seed``. Worlds are immutable: ``with_drift``
    returns a new one with the same base parameters.
    """

    def __init__(
        self, model_cfg: ModelConfig, seed: int | None = None, *, drifts: Sequence[Drift] = ()
    ) -> None:
        self.model_cfg = model_cfg
        self.seed = model_cfg.simulation.seed if seed is None else seed
        self.drifts: tuple[Drift, ...] = tuple(drifts)
        self._features = list(model_cfg.features)
        self._numeric = [i for i, f in enumerate(self._features) if f.type is FeatureType.NUMERIC]
        self._means = np.zeros(len(self._features))
        self._stds = np.ones(len(self._features))
        self._probabilities: dict[int, np.ndarray] = {}
        for i, feature in enumerate(self._features):
            rng = np.random.default_rng(
                _entropy(self.seed, _STREAM_FEATURE, zlib.crc32(feature.name.encode()))
            )
            if feature.type is FeatureType.NUMERIC:
                self._means[i], self._stds[i] = _numeric_distribution(feature, rng)
            else:
                concentration = np.full(len(feature.categories), _DIRICHLET_CONCENTRATION)
                self._probabilities[i] = rng.dirichlet(concentration)

        self._calibration = self._draw(
            _CALIBRATION_ROWS,
            np.zeros((_CALIBRATION_ROWS, len(self._features))),
            np.random.default_rng(_entropy(self.seed, _STREAM_CALIBRATION)),
        )
        self._target = self._bias_target()
        self._shifts = [
            (int(_epoch_ns(d.start, 1)[0]), self._shift_vector(d))
            for d in self.drifts
            if isinstance(d, CovariateShift)
        ]
        self._versions, self._version_starts = self._label_versions()
        logger.debug(
            "world for model %s: seed %s, %s drift(s)", model_cfg.name, self.seed, len(self.drifts)
        )

    # --- public API -----------------------------------------------------------------------

    @property
    def feature_means(self) -> dict[str, float]:
        """Pre-drift means of the numeric features."""
        return {self._features[i].name: float(self._means[i]) for i in self._numeric}

    @property
    def feature_stds(self) -> dict[str, float]:
        """Pre-drift standard deviations of the numeric features (before clipping)."""
        return {self._features[i].name: float(self._stds[i]) for i in self._numeric}

    def with_drift(self, *drifts: Drift) -> World:
        """A new world with ``drifts`` added to this one's."""
        return World(self.model_cfg, self.seed, drifts=(*self.drifts, *drifts))

    def covariate_features(self, shift: CovariateShift) -> list[str]:
        """The numeric features ``shift`` moves (or would move) in this world."""
        return [self._features[i].name for i in self._shifted_indices(shift)]

    def sample(
        self, n: int, at: datetime | Sequence[datetime], rng: np.random.Generator
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """``n`` rows stamped ``at`` (one time for all, or one per row) and their true labels.

        Each row gets the drifts active at its own timestamp. Features come in config order
        (numeric float64, categorical str); labels are an object array of class names.
        """
        stamps = _epoch_ns(at, n)
        offsets = np.zeros((n, len(self._features)))
        for start, vector in self._shifts:
            offsets += np.outer(stamps >= start, vector)
        draw = self._draw(n, offsets, rng)
        versions = np.searchsorted(self._version_starts, stamps, side="right")
        return self._frame(draw), self._labels(draw, versions, rng)

    def reference_frame(self, n: int) -> pd.DataFrame:
        """``n`` pre-drift rows with the label column, the same for every call with this seed.

        Used to train the first model version before any traffic exists.
        """
        rng = np.random.default_rng(_entropy(self.seed, _STREAM_REFERENCE))
        draw = self._draw(n, np.zeros((n, len(self._features))), rng)
        frame = self._frame(draw)
        frame[self.model_cfg.label] = self._labels(draw, np.zeros(n, dtype=int), rng)
        return frame

    # --- features -------------------------------------------------------------------------

    def _draw(self, n: int, offsets: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Features with the numeric means moved by ``offsets`` (rows x features)."""
        normals = rng.standard_normal((n, len(self._features)))
        uniforms = rng.random((n, len(self._features)))
        columns = []
        for i, feature in enumerate(self._features):
            if feature.type is FeatureType.NUMERIC:
                values = self._means[i] + offsets[:, i] + self._stds[i] * normals[:, i]
                low = -np.inf if feature.min is None else feature.min
                high = np.inf if feature.max is None else feature.max
                columns.append(np.clip(values, low, high))
            else:
                cumulative = np.cumsum(self._probabilities[i])
                index = np.searchsorted(cumulative, uniforms[:, i] * cumulative[-1], side="right")
                columns.append(np.minimum(index, len(cumulative) - 1))
        return columns

    def _frame(self, draw: list[np.ndarray]) -> pd.DataFrame:
        data = {}
        for feature, column in zip(self._features, draw, strict=True):
            if feature.type is FeatureType.NUMERIC:
                data[feature.name] = column.astype("float64")
            else:
                data[feature.name] = pd.Series(np.asarray(feature.categories)[column], dtype="str")
        return pd.DataFrame(data)

    def _shifted_indices(self, shift: CovariateShift) -> list[int]:
        if isinstance(shift.features, float | int):
            if not self._numeric:
                raise ValueError(f"model {self.model_cfg.name} has no numeric feature to shift")
            count = max(1, round(shift.features * len(self._numeric)))
            chosen = _drift_rng(self.seed, shift).choice(
                len(self._numeric), size=count, replace=False
            )
            return sorted(self._numeric[int(c)] for c in chosen)
        by_name = {f.name: i for i, f in enumerate(self._features)}
        indices = []
        for name in shift.features:
            if by_name.get(name) not in self._numeric:
                raise ValueError(
                    f"CovariateShift: '{name}' is not a numeric feature of {self.model_cfg.name}"
                )
            indices.append(by_name[name])
        return indices

    def _shift_vector(self, shift: CovariateShift) -> np.ndarray:
        vector = np.zeros(len(self._features))
        for i in self._shifted_indices(shift):
            vector[i] = shift.shift_std * self._stds[i]
        return vector

    # --- labels ---------------------------------------------------------------------------

    def _bias_target(self) -> np.ndarray | None:
        """The pre-noise class mix that yields ``class_weights`` once label noise is added."""
        weights = self.model_cfg.simulation.class_weights
        if weights is None:
            return None
        target = np.asarray(weights, dtype=float) / sum(weights)
        noise = self.model_cfg.simulation.label_noise
        if noise < 1:
            target = np.clip((target - noise / len(target)) / (1 - noise), 1e-3, None)
        return target / target.sum()

    def _contributions(
        self, effects: tuple[np.ndarray, ...], draw: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Each feature's (rows x classes) share of the unscaled class scores."""
        parts = []
        for i, (effect, column) in enumerate(zip(effects, draw, strict=True)):
            if i in self._numeric:
                standardised = (column - self._means[i]) / self._stds[i]
                parts.append(np.outer(standardised, effect[:, 0]))
            else:
                parts.append(effect[:, column].T)
        return parts

    def _logits(self, effects: tuple[np.ndarray, ...], draw: list[np.ndarray]) -> np.ndarray:
        strength = self.model_cfg.simulation.signal_strength
        return strength * np.sum(self._contributions(effects, draw), axis=0)

    def _calibrated(self, effects: tuple[np.ndarray, ...]) -> _LabelFunction:
        """Fit the class bias on the calibration sample so the class mix hits the target."""
        bias = np.zeros(len(self.model_cfg.classes))
        if self._target is not None:
            logits = self._logits(effects, self._calibration)
            for _ in range(200):
                step = np.log(self._target) - np.log(_softmax(logits + bias).mean(axis=0))
                bias += step
                if np.abs(step).max() < 1e-6:
                    break
        return _LabelFunction(effects, bias - bias.mean())

    def _label_versions(self) -> tuple[list[_LabelFunction], np.ndarray]:
        """The base label function, then one more per concept shift in order of start."""
        classes = len(self.model_cfg.classes)
        scale = 1 / math.sqrt(len(self._features))
        rng = np.random.default_rng(_entropy(self.seed, _STREAM_LABEL))
        widths = [
            1 if i in self._numeric else len(f.categories) for i, f in enumerate(self._features)
        ]
        effects = tuple(rng.normal(0.0, scale, (classes, width)) for width in widths)
        versions = [self._calibrated(effects)]
        concepts = sorted(
            (int(_epoch_ns(d.start, 1)[0]), i)
            for i, d in enumerate(self.drifts)
            if isinstance(d, ConceptShift)
        )
        for _, index in concepts:
            shift = self.drifts[index]
            effects = self._rotated(
                versions[-1].effects, shift, _drift_rng(self.seed, shift), scale
            )
            versions.append(self._calibrated(effects))
        starts = np.array([start for start, _ in concepts], dtype="int64")
        return versions, starts

    def _rotated(
        self,
        effects: tuple[np.ndarray, ...],
        shift: ConceptShift,
        rng: np.random.Generator,
        scale: float,
    ) -> tuple[np.ndarray, ...]:
        contributions = self._contributions(effects, self._calibration)
        importance = [np.std(c - c.mean(axis=1, keepdims=True)) for c in contributions]
        top = int(np.argmax(importance))
        angle = shift.strength * math.pi / 2
        rotated = []
        for i, effect in enumerate(effects):
            fresh = rng.normal(0.0, scale, effect.shape)
            if i == top:
                rotated.append(math.cos(math.pi * shift.strength) * effect)
            else:
                rotated.append(math.cos(angle) * effect + math.sin(angle) * fresh)
        logger.debug(
            "concept shift at %s: most important feature %s", shift.start, self._features[top].name
        )
        return tuple(rotated)

    def _labels(
        self, draw: list[np.ndarray], versions: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Sample a class per row from its version's softmax, then apply label noise."""
        n = len(versions)
        classes = np.asarray(self.model_cfg.classes, dtype=object)
        uniforms = rng.random(n)
        noisy = rng.random(n) < self.model_cfg.simulation.label_noise
        replacements = rng.integers(0, len(classes), n)
        index = np.zeros(n, dtype=int)
        for version in np.unique(versions):
            rows = versions == version
            function = self._versions[version]
            subset = [column[rows] for column in draw]
            probabilities = _softmax(self._logits(function.effects, subset) + function.bias)
            cumulative = np.cumsum(probabilities, axis=1)
            chosen = (uniforms[rows, None] > cumulative).sum(axis=1)
            index[rows] = np.minimum(chosen, len(classes) - 1)
        return classes[np.where(noisy, replacements, index)]


def wide_model_config() -> ModelConfig:
    """A synthetic 23-feature schema (20 numeric, every other one bounded, and 3 categorical)
    for checks and benchmarks at a realistic width; ``relearn.yaml``'s churn has only 6."""
    numeric = [
        {"name": f"x{i:02d}", "type": "numeric", **({"min": 0, "max": 100} if i % 2 else {})}
        for i in range(20)
    ]
    categorical = [
        {"name": f"c{i}", "type": "categorical", "categories": [f"v{j}" for j in range(3 + i)]}
        for i in range(3)
    ]
    return ModelConfig.model_validate(
        {
            "name": "wide",
            "classes": ["a", "b", "c"],
            "features": numeric + categorical,
            "simulation": {"seed": 11},
        }
    )
