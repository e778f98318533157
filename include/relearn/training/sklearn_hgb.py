"""``SklearnHGBClassifier``: histogram gradient boosting, what most teams use on tabular data.

Categorical features go in natively (each category is a code in the configured order, an
unknown or missing one is a missing value the trees route on their own), numeric features
raw: trees need neither scaling nor one-hot encoding. Training stops early on the validation
set when one is given.

Retraining refits. scikit-learn's ``warm_start`` would add trees to the champion, but it bins
the new data afresh and then scores the old trees on those new bins, which is only exact on
the data the ensemble was first fitted on; so a second ``fit`` starts from scratch with the
same hyperparameters (``training.hgb``), like ``sklearn_logreg``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from relearn.config import FeatureType, ModelKind
from relearn.evaluation import log_loss
from relearn.training.classifier import TabularClassifier, TrainingHistory, validation_metrics

if TYPE_CHECKING:
    from pathlib import Path

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

ESTIMATOR_FILE = "estimator.joblib"
# Below this many rows, and without a validation set, early stopping would hold out too few
# rows to judge by; scikit-learn's own "auto" uses 10,000.
_MIN_ROWS_FOR_INTERNAL_VALIDATION = 1000


def encoded_matrix(features: pd.DataFrame, model_cfg: ModelConfig) -> np.ndarray:
    """``feature_frame`` output as float64: numeric values as they are (NaN stays missing),
    categories as their index in the configured list (unknown or missing: NaN)."""
    columns = []
    for feature in model_cfg.features:
        column = features[feature.name]
        if feature.type is FeatureType.CATEGORICAL:
            codes = pd.Categorical(column, categories=feature.categories).codes
            columns.append(np.where(codes < 0, np.nan, codes).astype("float64"))
        else:
            columns.append(column.to_numpy(dtype="float64", na_value=np.nan))
    return np.column_stack(columns)


class SklearnHGBClassifier(TabularClassifier):
    """``HistGradientBoostingClassifier`` with native categoricals; every ``fit`` refits.

    ``epochs`` and ``learning_rate`` (the torch MLP's) are ignored: boosting iterations and
    shrinkage come from ``training.hgb``. The history has one entry, with ``iterations``.
    """

    kind = ModelKind.SKLEARN_HGB

    def __init__(self, model_cfg: ModelConfig) -> None:
        super().__init__(model_cfg)
        self.estimator: HistGradientBoostingClassifier | None = None

    @property
    def is_fitted(self) -> bool:
        return self.estimator is not None

    def _new_estimator(self, *, early_stopping: bool) -> HistGradientBoostingClassifier:
        params = self.model_cfg.training
        hgb = params.hgb
        return HistGradientBoostingClassifier(
            learning_rate=hgb.learning_rate,
            max_iter=hgb.max_iter,
            max_leaf_nodes=hgb.max_leaf_nodes,
            max_depth=hgb.max_depth,
            min_samples_leaf=hgb.min_samples_leaf,
            l2_regularization=hgb.l2_regularization,
            categorical_features=[
                f.type is FeatureType.CATEGORICAL for f in self.model_cfg.features
            ],
            early_stopping=early_stopping,
            scoring="loss",
            validation_fraction=params.validation_fraction,
            n_iter_no_change=hgb.n_iter_no_change,
            random_state=params.random_seed,
        )

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
        x = encoded_matrix(features, self.model_cfg)
        fit_kwargs: dict[str, np.ndarray] = {}
        if validation is not None:
            # Early stopping can only score rows of classes the training labels contain.
            val_y = np.array([self.classes.index(label) for label in validation[1]])
            known = np.isin(val_y, y)
            if known.any():
                fit_kwargs = {
                    "X_val": encoded_matrix(validation[0], self.model_cfg)[known],
                    "y_val": val_y[known],
                }
        early_stopping = bool(fit_kwargs) or len(x) >= _MIN_ROWS_FOR_INTERNAL_VALIDATION
        estimator = self._new_estimator(early_stopping=early_stopping).fit(x, y, **fit_kwargs)
        self.estimator = estimator
        entry: dict[str, float] = {
            "epoch": 1,
            "train_loss": log_loss(
                [self.classes[i] for i in y], self._predict_proba(features), self.classes
            ),
            "iterations": float(estimator.n_iter_),
        }
        if validation is not None:
            val_features, val_labels = validation
            entry.update(
                validation_metrics(val_labels, self._predict_proba(val_features), self.classes)
            )
        entry["seconds"] = time.perf_counter() - started
        log.info(
            "%s: fitted gradient boosting on %d rows (%d of up to %d iterations%s): %s",
            self.model_cfg.name,
            len(features),
            estimator.n_iter_,
            estimator.max_iter,
            ", early-stopped on the validation loss" if early_stopping else "",
            ", ".join(
                f"{key} {value:.4f}"
                for key, value in entry.items()
                if key not in ("epoch", "iterations")
            ),
        )
        return TrainingHistory(epochs=[entry], best_epoch=1)

    def _predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if self.estimator is None:
            raise RuntimeError(f"{type(self).__name__} for '{self.model_cfg.name}' is not fitted")
        # A class absent from the training labels has no column in scikit-learn's output.
        proba = np.zeros((len(features), len(self.classes)))
        proba[:, self.estimator.classes_] = self.estimator.predict_proba(
            encoded_matrix(features, self.model_cfg)
        )
        return proba

    def _save_artifacts(self, directory: Path) -> None:
        joblib.dump(self.estimator, directory / ESTIMATOR_FILE)

    def _load_artifacts(self, directory: Path) -> None:
        self.estimator = joblib.load(directory / ESTIMATOR_FILE)
