"""Put simulated, optionally drifted traffic into the real prediction log for a fixed period.

Each test module uses its own period, so windows never overlap across tests.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from relearn.services import Services
from relearn.serving.predictor import Predictor
from relearn.serving.router import SplitRouter, live_split
from relearn.simulate.traffic import simulate_traffic
from relearn.simulate.world import ConceptShift, CovariateShift, World
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from relearn.config import ModelConfig
    from relearn.simulate.traffic import TrafficStats


def log_traffic(
    model_cfg: ModelConfig,
    database_url: str,
    tracking_uri: str,
    *,
    start: datetime,
    end: datetime,
    concept_shift: float | None = None,
    covariate_shift: float | None = None,
    covariate_features: Sequence[str] | float = 0.5,
    seed: int = 11,
    per_hour: float = 60,
) -> TrafficStats:
    """Predictions with the champion for ``[start, end)``, outcomes an hour later.

    ``concept_shift`` (0..1] changes the label function from ``start`` on, so every
    prediction of the period meets the new concept; ``covariate_shift`` moves
    ``covariate_features`` (names, or a fraction of the numeric ones) by that many standard
    deviations instead (labels follow the inputs).
    """
    world = World(model_cfg)
    if concept_shift:
        world = world.with_drift(ConceptShift(start=start, strength=concept_shift))
    if covariate_shift:
        world = world.with_drift(
            CovariateShift(start=start, features=covariate_features, shift_std=covariate_shift)
        )
    ids = random.Random(f"{seed}@{start.isoformat()}")  # repeatable, unique per period
    with Predictor(
        Services(database_url, tracking_uri),
        model_cfg,
        new_id=lambda: uuid.UUID(int=ids.getrandbits(128), version=4),
    ) as predictor:
        return simulate_traffic(
            world,
            predictor,
            start=start,
            end=end,
            predictions_per_hour=per_hour,
            outcome_delay=timedelta(hours=1),
            rng=np.random.default_rng(seed),
        )


def drop_feature(database_url: str, feature: str, *, start: datetime, end: datetime) -> None:
    """A producer that stopped sending ``feature`` for ``[start, end)``."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE prediction_log SET features = features - %s "
            "WHERE predicted_at >= %s AND predicted_at < %s",
            (feature, start, end),
        )


def register_copy(model_cfg: ModelConfig, tracking_uri: str, *, name: str, source: str) -> str:
    """Register the classifier of ``models:/<model_cfg.name>/<source>`` again as ``name``.

    An identical challenger (an A/A test) without training one; returns the new version.
    """
    import mlflow

    from relearn.registry import model_uri
    from relearn.retraining.artifacts import load_registered_classifier
    from relearn.training.pyfunc import log_pyfunc_model

    classifier = load_registered_classifier(tracking_uri, model_uri(model_cfg.name, source))
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(f"relearn/{name}")
    with mlflow.start_run(run_name=f"{name}-copy-of-v{source}"):
        info = log_pyfunc_model(classifier, model_cfg, registered_model_name=name)
    return str(info.registered_model_version)


def serve_by_split(
    model_cfg: ModelConfig,
    services: Services,
    world: World,
    *,
    units: Sequence[str],
    start: datetime,
    hours: int,
) -> None:
    """One prediction per unit each hour, routed by the model's live A/B split (read afresh
    every time), with its outcome at once."""
    router = SplitRouter(live_split(services.database_url, model_cfg.name), ttl=0)
    rng = np.random.default_rng(int(start.timestamp()))
    with Predictor(services, model_cfg, router=router) as predictor:
        for hour in range(hours):
            at = start + timedelta(hours=hour)
            frame, labels = world.sample(len(units), at, rng)
            predictions = predictor.predict(frame, unit_ids=list(units), at=at)
            predictor.record_outcomes(
                (p.prediction_id, str(label), at)
                for p, label in zip(predictions, labels, strict=True)
            )
