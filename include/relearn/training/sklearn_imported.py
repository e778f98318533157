"""``ImportedSklearnClassifier``: a scikit-learn classifier trained elsewhere, behind the common
interface.

It wraps an estimator a team already has (a classifier or a ``Pipeline`` with
``predict_proba``), so Relearn serves, monitors, A/B-tests and gates it like its own kinds.
Relearn has no recipe of its own for it, so every ``fit`` refits ``sklearn.base.clone`` of the
estimator (the same hyperparameters, nothing learnt) on the rows given plus a sample of the
reference data kept with it: a refitted version still learns from what the original was
validated on, and the sample travels on to every refitted version.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Self

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier

from relearn.config import ModelKind
from relearn.evaluation import label_indices, log_loss
from relearn.training.classifier import TabularClassifier, TrainingHistory, validation_metrics
from relearn.training.preprocessing import feature_frame

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

# cloudpickle, as MLflow's sklearn flavour does: a pipeline with a lambda in a
# FunctionTransformer must survive the round trip.
ESTIMATOR_FILE = "estimator.pkl"
REFERENCE_SAMPLE_FILE = "reference_sample.parquet"


class UnsupportedEstimatorError(ValueError):
    """The estimator cannot be served or refitted by Relearn; the message says why."""


class ImportedSklearnClassifier(TabularClassifier):
    """A fitted scikit-learn classifier plus the reference sample its refits learn from too.

    ``label_values`` are the estimator's own labels of the configured classes, in the
    configured order (``0``/``1`` for classes ``"0"``/``"1"``): a refit gets labels of the
    type the estimator was trained on. ``epochs`` and ``learning_rate`` do not apply.
    """

    kind = ModelKind.SKLEARN_IMPORTED

    def __init__(self, model_cfg: ModelConfig) -> None:
        super().__init__(model_cfg)
        self.estimator: Any = None
        self.label_values: list[Any] = []
        self.reference_sample: pd.DataFrame | None = None

    @classmethod
    def wrap(cls, model_cfg: ModelConfig, estimator: Any, reference: pd.DataFrame) -> Self:
        """The fitted ``estimator`` as a classifier of ``model_cfg``'s schema.

        ``reference`` holds the configured features and label of rows the estimator was
        validated on; up to ``training.reference_rows`` of them are kept for refits.

        :raises UnsupportedEstimatorError: not a fitted classifier with ``predict_proba``,
            other classes than configured, features the configuration lacks, or not cloneable.
        """
        classifier = cls(model_cfg.model_copy(update={"kind": ModelKind.SKLEARN_IMPORTED}))
        classifier.label_values = check_estimator(estimator, model_cfg)
        classifier.estimator = estimator
        rows = min(len(reference), model_cfg.training.reference_rows)
        sample = reference.sample(n=rows, random_state=model_cfg.training.random_seed)
        kept = feature_frame(sample, model_cfg).reset_index(drop=True)
        kept[model_cfg.label] = sample[model_cfg.label].astype(str).to_numpy()
        label_indices(kept[model_cfg.label].tolist(), classifier.classes)  # known classes only
        classifier.reference_sample = kept
        # The rows it was validated on are its validation split: calibrate on them.
        classifier.calibrate(kept, kept[model_cfg.label].tolist())
        return classifier

    @property
    def is_fitted(self) -> bool:
        return self.estimator is not None

    @property
    def input_columns(self) -> list[str]:
        """The columns the estimator reads: its own names if it knows them, else the config's."""
        names = getattr(self.estimator, "feature_names_in_", None)
        return self.model_cfg.feature_names if names is None else [str(n) for n in names]

    def _fit(
        self,
        features: pd.DataFrame,
        y: np.ndarray,
        validation: tuple[pd.DataFrame, list[str]] | None,
        *,
        epochs: int | None,
        learning_rate: float | None,
    ) -> TrainingHistory:
        if self.estimator is None:
            raise RuntimeError(f"no imported estimator to refit for '{self.model_cfg.name}'")
        started = time.perf_counter()
        frame, y = self._with_reference(features, y)
        targets = np.asarray(self.label_values)[y]
        self.estimator = clone(self.estimator).fit(frame[self.input_columns], targets)
        entry: dict[str, float] = {
            "epoch": 1,
            "train_loss": log_loss(
                [self.classes[i] for i in y], self._predict_proba(frame), self.classes
            ),
        }
        if validation is not None:
            val_features, val_labels = validation
            entry.update(
                validation_metrics(val_labels, self._predict_proba(val_features), self.classes)
            )
        entry["seconds"] = time.perf_counter() - started
        log.info(
            "%s: refitted a clone of %s on %d rows (%d of them reference): %s",
            self.model_cfg.name,
            type(self.estimator).__name__,
            len(frame),
            len(frame) - len(features),
            ", ".join(f"{key} {value:.4f}" for key, value in entry.items() if key != "epoch"),
        )
        return TrainingHistory(epochs=[entry], best_epoch=1)

    def _with_reference(
        self, features: pd.DataFrame, y: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows given plus as many kept reference rows (all, if fewer are kept).

        One reference row per new row: the window's lessons weigh as much as what the model
        was validated on, so a refit learns the new errors without forgetting the rest.
        """
        if self.reference_sample is None or self.reference_sample.empty:
            return features, y
        rows = min(len(self.reference_sample), len(features))
        sample = self.reference_sample.sample(
            n=rows, random_state=self.model_cfg.training.random_seed
        )
        frame = pd.concat([features, sample[self.model_cfg.feature_names]], ignore_index=True)
        labels = label_indices(sample[self.model_cfg.label].tolist(), self.classes)
        return frame, np.concatenate([y, labels])

    def _predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if self.estimator is None:
            raise RuntimeError(f"{type(self).__name__} for '{self.model_cfg.name}' is not fitted")
        # A refit on a window without some class has no column for it.
        proba = np.zeros((len(features), len(self.classes)))
        proba[:, class_positions(self.estimator, self.classes)] = self.estimator.predict_proba(
            features[self.input_columns]
        )
        return proba

    def _save_artifacts(self, directory: Path) -> None:
        with (directory / ESTIMATOR_FILE).open("wb") as file:
            cloudpickle.dump({"estimator": self.estimator, "label_values": self.label_values}, file)
        if self.reference_sample is not None:
            self.reference_sample.to_parquet(directory / REFERENCE_SAMPLE_FILE, index=False)

    def _load_artifacts(self, directory: Path) -> None:
        with (directory / ESTIMATOR_FILE).open("rb") as file:
            state = cloudpickle.load(file)
        self.estimator, self.label_values = state["estimator"], state["label_values"]
        sample = directory / REFERENCE_SAMPLE_FILE
        self.reference_sample = pd.read_parquet(sample) if sample.is_file() else None


def class_positions(estimator: Any, classes: Sequence[str]) -> list[int]:
    """Where each of the estimator's ``classes_`` goes among the configured classes."""
    return [list(classes).index(str(value)) for value in estimator.classes_]


def check_estimator(estimator: Any, model_cfg: ModelConfig) -> list[Any]:
    """The estimator's labels of the configured classes, in their order, if Relearn can use it.

    :raises UnsupportedEstimatorError: with what is wrong and what to do.
    """
    what = type(estimator).__name__
    if not is_classifier(estimator):
        raise UnsupportedEstimatorError(
            f"{what} is not a scikit-learn classifier (Relearn imports classifiers and "
            "Pipelines ending in one)"
        )
    if not hasattr(estimator, "predict_proba"):
        raise UnsupportedEstimatorError(
            f"{what} has no predict_proba (an SVC needs probability=True; LinearSVC never has "
            "one: wrap it in CalibratedClassifierCV)"
        )
    own = getattr(estimator, "classes_", None)
    if own is None:
        raise UnsupportedEstimatorError(f"{what} is not fitted (it has no classes_)")
    labels = {str(value): value for value in own}
    if sorted(labels) != sorted(model_cfg.classes) or len(labels) != len(own):
        raise UnsupportedEstimatorError(
            f"{what} predicts classes {sorted(labels)} but model '{model_cfg.name}' is "
            f"configured with {sorted(model_cfg.classes)}: make `classes` in the "
            "configuration the estimator's classes_ (as strings)"
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        unknown = [str(n) for n in names if str(n) not in model_cfg.feature_names]
        if unknown:
            raise UnsupportedEstimatorError(
                f"{what} reads feature(s) {unknown} that model '{model_cfg.name}' does not "
                "configure: add them to its features"
            )
    elif getattr(estimator, "n_features_in_", len(model_cfg.features)) != len(model_cfg.features):
        raise UnsupportedEstimatorError(
            f"{what} was fitted on {estimator.n_features_in_} unnamed columns but model "
            f"'{model_cfg.name}' configures {len(model_cfg.features)} features: fit it on a "
            "DataFrame with named columns, or configure exactly its columns in its order"
        )
    try:
        clone(estimator)
    except (TypeError, RuntimeError) as error:
        raise UnsupportedEstimatorError(
            f"{what} cannot be cloned, so Relearn could not refit it ({error})"
        ) from None
    return [labels[name] for name in model_cfg.classes]
