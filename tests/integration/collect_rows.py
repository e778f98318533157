"""Prediction rows for the collection tests and benchmarks: valid for a model, by design."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from relearn.config import ModelConfig


def feature_values(model_cfg: ModelConfig, rng: np.random.Generator) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for feature in model_cfg.features:
        if feature.categories:
            values[feature.name] = str(rng.choice(feature.categories))
        else:
            low = 0.0 if feature.min is None else feature.min
            high = low + 100.0 if feature.max is None else feature.max
            values[feature.name] = round(float(rng.uniform(low, high)), 3)
    return values


def prediction_rows(
    model_cfg: ModelConfig, n: int, *, seed: int = 0, at: datetime | None = None
) -> list[dict[str, Any]]:
    """``n`` JSON-ready rows of the collection API, all valid for ``model_cfg``."""
    rng = np.random.default_rng(seed)
    moment = at or datetime.now(UTC) - timedelta(minutes=5)
    rows = []
    for i in range(n):
        label = str(rng.choice(model_cfg.classes))
        rows.append(
            {
                "prediction_id": str(uuid.uuid4()),
                "features": feature_values(model_cfg, rng),
                "predicted_label": label,
                "confidence": round(float(rng.uniform(0.5, 1.0)), 4),
                "model_version": "1",
                "unit_id": f"unit-{i}",
                "latency_ms": 3.5,
                "predicted_at": moment.isoformat(),
            }
        )
    return rows
