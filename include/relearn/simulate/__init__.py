"""Seeded synthetic traffic for the demo, the tests and the benchmarks.

``World`` generates rows and true labels for a model's schema (with optional drift);
``simulate_traffic`` and ``run_live`` feed them to a predictor and reveal the labels late.
"""

from __future__ import annotations

from relearn.simulate.traffic import PredictionSink, TrafficStats, run_live, simulate_traffic
from relearn.simulate.world import ConceptShift, CovariateShift, Drift, World

__all__ = [
    "ConceptShift",
    "CovariateShift",
    "Drift",
    "PredictionSink",
    "TrafficStats",
    "World",
    "run_live",
    "simulate_traffic",
]
