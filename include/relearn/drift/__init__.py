"""Drift detection: exact two-sample statistics and a stored reference profile.

``build_profile`` summarises the training data once; ``compare`` checks a production window
against that profile in well under a second for a million rows, without the training data.
See ``relearn.drift.profile`` for the decision rule and ``relearn.drift.stats`` for the
statistics.
"""

from __future__ import annotations

from relearn.drift.profile import (
    CategoricalProfile,
    DriftReport,
    FeatureDrift,
    Histogram,
    NumericProfile,
    PredictionDrift,
    ReferenceProfile,
    Verdict,
    build_profile,
    compare,
)

__all__ = [
    "CategoricalProfile",
    "DriftReport",
    "FeatureDrift",
    "Histogram",
    "NumericProfile",
    "PredictionDrift",
    "ReferenceProfile",
    "Verdict",
    "build_profile",
    "compare",
]
