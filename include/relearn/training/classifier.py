"""The one interface every model kind implements, and its on-disk format.

Callers (bootstrap, the retraining DAG, the pyfunc wrapper) only ever see
``TabularClassifier``, so adding a kind means a subclass and a case in
``relearn.training.factory`` (which builds and loads classifiers of any kind).
A saved classifier is a directory with ``meta.json`` plus kind-specific files; ``meta.json``
carries everything needed to rebuild it without the original configuration file.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd

from relearn.config import ModelConfig, ModelKind
from relearn.evaluation import classification_metrics, label_indices
from relearn.training.preprocessing import feature_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

META_FILE = "meta.json"
FORMAT_VERSION = 1
# The parts of ModelConfig a saved classifier depends on; thresholds and schedules are not.
_META_FIELDS = {"name", "kind", "label", "classes", "features", "training"}
# Kinds whose ``fit`` starts from scratch, so ``fit_batches`` refits them on all data so far.
_REFIT_KINDS = frozenset(
    {ModelKind.SKLEARN_LOGREG, ModelKind.SKLEARN_HGB, ModelKind.SKLEARN_IMPORTED}
)


@dataclass
class TrainingHistory:
    """Per-epoch metrics of one ``fit`` and the epoch whose weights were kept (1-based).

    Each entry has ``epoch``, ``train_loss`` and ``seconds``, plus ``val_loss``,
    ``val_accuracy`` and the macro ``val_f1``, ``val_precision`` and ``val_recall`` when a
    validation set was given.
    """

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0


class TabularClassifier(ABC):
    """A classifier over the configured features that predicts the configured classes."""

    kind: ClassVar[ModelKind]

    def __init__(self, model_cfg: ModelConfig) -> None:
        self.model_cfg = model_cfg

    @property
    def classes(self) -> list[str]:
        return list(self.model_cfg.classes)

    @property
    @abstractmethod
    def is_fitted(self) -> bool: ...

    def fit(
        self,
        frame: pd.DataFrame,
        labels: Sequence[str],
        *,
        val_frame: pd.DataFrame | None = None,
        val_labels: Sequence[str] | None = None,
        epochs: int | None = None,
        learning_rate: float | None = None,
    ) -> TrainingHistory:
        """Train on ``frame``/``labels`` (strings from ``classes``).

        ``epochs`` and ``learning_rate`` default to ``model_cfg.training``; kinds without
        epochs ignore them. Early stopping and the ``val_*`` history entries need a
        validation set. Calling ``fit`` again continues training where the kind supports it.
        """
        if (val_frame is None) != (val_labels is None):
            raise ValueError("val_frame and val_labels must be given together")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        if learning_rate is not None and learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        labels = list(labels)
        if len(frame) == 0 or len(frame) != len(labels):
            raise ValueError(
                f"frame has {len(frame)} rows and {len(labels)} labels were given; "
                "need the same non-zero number"
            )
        validation = None
        if val_frame is not None and val_labels is not None:
            val_labels = list(val_labels)
            if len(val_frame) == 0 or len(val_frame) != len(val_labels):
                raise ValueError(
                    f"val_frame has {len(val_frame)} rows and {len(val_labels)} labels were "
                    "given; need the same non-zero number"
                )
            label_indices(val_labels, self.classes)  # fail now, not after an epoch
            validation = (feature_frame(val_frame, self.model_cfg), val_labels)
        y = label_indices(labels, self.classes)
        features = feature_frame(frame, self.model_cfg)
        return self._fit(features, y, validation, epochs=epochs, learning_rate=learning_rate)

    def fit_batches(
        self,
        batches: Iterable[tuple[pd.DataFrame, Sequence[str]]],
        *,
        val_frame: pd.DataFrame | None = None,
        val_labels: Sequence[str] | None = None,
        epochs_per_batch: int = 1,
        learning_rate: float | None = None,
        on_batch: Callable[[dict[str, float]], None] | None = None,
    ) -> list[dict[str, float]]:
        """Train on ``batches`` one after another, for data that arrives (or fits) in pieces.

        Batches are consumed lazily. A kind that keeps learning (the torch MLP) continues from
        its current weights: an unfitted model trains from scratch on the first batch and
        fine-tunes on the others (at the fine-tune learning rate unless ``learning_rate`` is
        given). A kind that always refits (``sklearn_logreg``, ``sklearn_hgb``) cannot learn
        incrementally, so it is refitted on every batch seen so far in this call, concatenated.

        Returns one entry per batch: ``batch`` (1-based), ``rows`` (of that batch), the last
        epoch's ``train_loss``, the ``val_*`` metrics of the model as it stands after the
        batch when a validation set is given, and ``seconds``. ``on_batch`` is called with each
        entry once the batch is learned (e.g. to save a checkpoint of the model as it stands).
        """
        if (val_frame is None) != (val_labels is None):
            raise ValueError("val_frame and val_labels must be given together")
        refits = self.kind in _REFIT_KINDS
        seen_frames: list[pd.DataFrame] = []
        seen_labels: list[str] = []
        results: list[dict[str, float]] = []
        for number, (frame, labels) in enumerate(batches, start=1):
            started = time.perf_counter()
            labels, rows = list(labels), len(frame)
            if refits:
                seen_frames.append(frame)
                seen_labels += labels
                frame, labels = pd.concat(seen_frames, ignore_index=True), seen_labels
            history = self.fit(
                frame,
                labels,
                val_frame=val_frame,
                val_labels=val_labels,
                epochs=epochs_per_batch,
                learning_rate=learning_rate,
            )
            entry: dict[str, float] = {
                "batch": number,
                "rows": rows,
                "train_loss": history.epochs[-1]["train_loss"],
            }
            if val_frame is not None and val_labels is not None:
                proba = self.predict_proba(val_frame)
                entry.update(validation_metrics(val_labels, proba, self.classes))
            entry["seconds"] = time.perf_counter() - started
            results.append(entry)
            if on_batch is not None:
                on_batch(entry)
            log.info(
                "%s batch %d: %d rows%s, %s",
                self.model_cfg.name,
                number,
                rows,
                f" (refitted on all {len(frame)} so far)" if refits else "",
                ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("batch", "rows")),
            )
        if not results:
            raise ValueError("fit_batches got no batches")
        return results

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Float64 probabilities of shape (len(frame), len(classes)) in ``classes`` order."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} for '{self.model_cfg.name}' is not fitted")
        features = feature_frame(frame, self.model_cfg)
        if features.empty:
            return np.empty((0, len(self.classes)))
        return self._predict_proba(features)

    @abstractmethod
    def _fit(
        self,
        features: pd.DataFrame,
        y: np.ndarray,
        validation: tuple[pd.DataFrame, list[str]] | None,
        *,
        epochs: int | None,
        learning_rate: float | None,
    ) -> TrainingHistory:
        """Train on checked ``feature_frame`` output and label indices ``y``."""

    @abstractmethod
    def _predict_proba(self, features: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def _save_artifacts(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_artifacts(self, directory: Path) -> None: ...

    def save(self, directory: Path) -> None:
        """Write ``meta.json`` and the fitted state into ``directory`` (created if needed)."""
        if not self.is_fitted:
            raise RuntimeError(f"cannot save an unfitted {type(self).__name__}")
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            **self.model_cfg.model_dump(mode="json", include=_META_FIELDS),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))
        self._save_artifacts(directory)
        log.debug("saved %s classifier %s to %s", self.kind, self.model_cfg.name, directory)

    @classmethod
    def load(cls, directory: Path | str) -> Self:
        """The classifier saved in ``directory``; a ValueError if it is of another kind."""
        directory = Path(directory)
        model_cfg = read_meta(directory)
        if model_cfg.kind is not cls.kind:
            raise ValueError(f"{directory} holds a {model_cfg.kind} classifier, not {cls.kind}")
        classifier = cls(model_cfg)
        classifier._load_artifacts(directory)
        return classifier


def validation_metrics(
    labels: Sequence[str], proba: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """The ``val_*`` entries of a history epoch (the same definitions the gates use)."""
    metrics = classification_metrics(labels, proba, classes)
    return {
        "val_loss": metrics["log_loss"],
        "val_accuracy": metrics["accuracy"],
        "val_f1": metrics["f1_macro"],
        "val_precision": metrics["precision_macro"],
        "val_recall": metrics["recall_macro"],
    }


def read_meta(directory: Path) -> ModelConfig:
    """The model configuration stored with a saved classifier."""
    path = directory / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} is not a saved classifier")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.pop("format", None) != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported classifier format (expected {FORMAT_VERSION})")
    return ModelConfig.model_validate(meta)
