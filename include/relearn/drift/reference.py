"""A version's reference profile, stored as an MLflow artifact of the run that trained it.

Written when the version is trained (bootstrap, every retraining) from the rows it was
evaluated on, read by every drift check of that version: a check never touches training data.
"""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException

from relearn.drift.importance import permutation_importance
from relearn.drift.profile import ReferenceProfile, build_profile
from relearn.registry import registry_client

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd

    from relearn.config import ModelConfig

PROFILE_ARTIFACT = "drift/reference_profile.json"


class MissingProfileError(RuntimeError):
    """The version was registered without a reference profile (e.g. by another tool)."""


def log_profile(
    model_cfg: ModelConfig,
    features: pd.DataFrame,
    probabilities: np.ndarray,
    accuracy: float,
    *,
    predict: Callable[[pd.DataFrame], np.ndarray],
) -> ReferenceProfile:
    """Profile ``features`` and the model's predictions on them into the active MLflow run.

    ``predict`` is the model's ``predict_proba``: the permutation importance of each feature
    on these rows becomes its weight in the drift score.
    """
    top = probabilities.argmax(axis=1)
    seed = model_cfg.training.random_seed
    profile = build_profile(
        features,
        model_cfg,
        predicted_labels=[model_cfg.classes[i] for i in top],
        confidences=probabilities.max(axis=1),
        accuracy=accuracy,
        importances=permutation_importance(features, model_cfg, predict, seed=seed),
        seed=seed,
    )
    mlflow.log_dict(profile.to_dict(), PROFILE_ARTIFACT)
    return profile


@lru_cache(maxsize=32)
def load_profile(tracking_uri: str, model_name: str, version: str) -> ReferenceProfile:
    """The stored profile of ``model_name`` v``version`` (cached: versions are immutable)."""
    client = registry_client(tracking_uri)
    run_id = client.get_model_version(model_name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp)
        except (MlflowException, OSError) as error:
            raise MissingProfileError(
                f"{model_name} v{version} has no drift reference profile ({PROFILE_ARTIFACT} "
                f"in run {run_id}); versions registered by Relearn have one: retrain the "
                "model or register it through `relearn bootstrap`/`relearn reinforce`"
            ) from error
        return ReferenceProfile.from_dict(json.loads(Path(path).read_text()))
