"""Drift detection: exact two-sample statistics and a stored reference profile.

``build_profile`` (``relearn.drift.profile``) summarises the training data once; ``compare``
(``relearn.drift.compare``) checks a production window against that profile in well under a
second for a million rows, without the training data. See ``relearn.drift.compare`` for the
decision rule and ``relearn.drift.stats`` for the statistics; ``relearn.drift.monitor`` runs
one check of a model's champion end to end.
"""

from __future__ import annotations

from relearn.drift.compare import DriftReport, FeatureDrift, PredictionDrift, Verdict, compare
from relearn.drift.profile import (
    CategoricalProfile,
    Histogram,
    NumericProfile,
    ReferenceProfile,
    build_profile,
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
