"""``SklearnLogRegClassifier``: a logistic-regression baseline behind the common interface.

It trains in well under a second and has no epochs, so it suits models where a linear
decision boundary is enough and a cheap, fully reproducible refit beats fine-tuning.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from relearn.config import ModelKind
from relearn.evaluation import log_loss
from relearn.training.classifier import TabularClassifier, TrainingHistory, validation_metrics
from relearn.training.preprocessing import build_preprocessor

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"


class SklearnLogRegClassifier(TabularClassifier):
    """Preprocessor + ``LogisticRegression``; every ``fit`` refits from scratch.

    ``epochs`` and ``learning_rate`` do not apply and are ignored; the history has one entry.
    """

    kind = ModelKind.SKLEARN_LOGREG

    def __init__(self, model_cfg: ModelConfig) -> None:
        super().__init__(model_cfg)
        self.pipeline: Pipeline | None = None

    @property
    def is_fitted(self) -> bool:
        return self.pipeline is not None

    def _fit(
        self,
        features: pd.DataFrame,
        y: np.ndarray,
        validation: tuple[pd.DataFrame, list[str]] | None,
        *,
        epochs: int | None,
        learning_rate: float | None,
    ) -> TrainingHistory:
        started = time.perf_counter()
        pipeline = Pipeline(
            [
                ("preprocess", build_preprocessor(self.model_cfg)),
                (
                    "classify",
                    LogisticRegression(
                        max_iter=1000, random_state=self.model_cfg.training.random_seed
                    ),
                ),
            ]
        ).fit(features, y)
        self.pipeline = pipeline
        entry: dict[str, float] = {
            "epoch": 1,
            "train_loss": log_loss(
                [self.classes[i] for i in y], self._predict_proba(features), self.classes
            ),
        }
        if validation is not None:
            val_features, val_labels = validation
            proba = self._predict_proba(val_features)
            entry.update(validation_metrics(val_labels, proba, self.classes))
        entry["seconds"] = time.perf_counter() - started
        log.info(
            "%s: fitted logistic regression on %d rows: %s",
            self.model_cfg.name,
            len(features),
            ", ".join(f"{key} {value:.4f}" for key, value in entry.items() if key != "epoch"),
        )
        return TrainingHistory(epochs=[entry], best_epoch=1)

    def _predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"{type(self).__name__} for '{self.model_cfg.name}' is not fitted")
        # A class absent from the training labels has no column in scikit-learn's output.
        proba = np.zeros((len(features), len(self.classes)))
        proba[:, self.pipeline.classes_] = self.pipeline.predict_proba(features)
        return proba

    def _save_artifacts(self, directory: Path) -> None:
        joblib.dump(self.pipeline, directory / PIPELINE_FILE)

    def _load_artifacts(self, directory: Path) -> None:
        self.pipeline = joblib.load(directory / PIPELINE_FILE)
