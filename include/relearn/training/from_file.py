"""Train or fine-tune one model from a dataset file, without Airflow or MLflow.

For experiments and debugging outside the pipeline (``relearn train``): the result is a saved
classifier plus its history, metrics and report images in one directory.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from relearn.config import FeatureType, ModelKind, TrainingConfig, load_config
from relearn.evaluation import classification_metrics, confusion
from relearn.onboarding.files import Batch, DatasetError, numbers
from relearn.training.factory import load_classifier, new_classifier
from relearn.training.incremental import batch_history, ordered_batches
from relearn.training.reports import confusion_matrix_png, training_curve_png

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.training.classifier import TabularClassifier, TrainingHistory

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
SPLITS = ("train", "validation", "holdout")
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
CURVE_FILE = "training_curve.png"
CONFUSION_FILE = "confusion_matrix.png"
# What a saved model must share with the configured one for fine-tuning to make sense.
_SCHEMA_FIELDS = {"kind", "label", "classes", "features"}

Split = tuple[pd.DataFrame, list[str]]


@dataclass(frozen=True)
class Splits:
    """The dataset's rows with their labels: train, validation and an optional holdout."""

    train: Split
    validation: Split
    holdout: Split | None

    @property
    def rows(self) -> dict[str, int]:
        return {
            "train": len(self.train[0]),
            "validation": len(self.validation[0]),
            "holdout": 0 if self.holdout is None else len(self.holdout[0]),
        }


def train_from_dataset(
    dataset: Path,
    config: Path,
    output_dir: Path,
    *,
    model: str | None = None,
    fine_tune: bool = False,
    model_path: Path | None = None,
    learning_rate: float | None = None,
    epochs: int | None = None,
    random_seed: int | None = None,
    batches: int | None = None,
) -> dict[str, Any]:
    """Train ``model`` (default: the first configured) on ``dataset``; write and return metrics.

    ``dataset`` is a ``.parquet`` or ``.csv`` file with the feature and label columns and an
    optional ``split`` column (train|validation|holdout); without it a stratified
    train/validation split is drawn. ``fine_tune`` continues training the classifier saved in
    ``model_path`` (the torch kind at the lower fine-tune learning rate unless
    ``learning_rate`` is given). ``epochs``, ``learning_rate`` and ``random_seed`` override
    the configuration. ``batches`` splits the training rows into that many batches in time
    order (the model's ``time_column`` when the file has it, else file order) and trains on
    each in turn for ``epochs``, saving ``checkpoints/batch_NNN/`` after each; the result then
    has one ``history`` entry per batch. Writes ``model/``, ``history.json``, ``metrics.json``
    and the two report PNGs into ``output_dir``.

    :raises FileNotFoundError: ``dataset`` or ``model_path`` does not exist.
    :raises ValueError: bad configuration, arguments or dataset; the message names the cause.
    """
    started = time.perf_counter()
    if fine_tune and model_path is None:
        raise ValueError("fine-tuning needs model_path, the directory of a saved classifier")
    model_cfg = _model_config(config, model, learning_rate, epochs, random_seed)
    splits = _read_splits(Path(dataset), model_cfg)
    classifier = _classifier(model_cfg, fine_tune, model_path)
    log.info(
        "%s %s %s on %s: %s rows",
        "fine-tuning" if fine_tune else "training",
        model_cfg.kind,
        model_cfg.name,
        dataset,
        splits.rows,
    )
    output_dir = Path(output_dir)
    if batches is None:
        train, train_y = splits.train
        val, val_y = splits.validation
        history = classifier.fit(
            train, train_y, val_frame=val, val_labels=val_y, learning_rate=learning_rate
        )
    else:
        history = _fit_in_batches(classifier, splits, batches, learning_rate, output_dir)
    model_dir = _save_model(classifier, history, output_dir)
    validation, holdout = _evaluate(classifier, splits, output_dir)
    result = {
        "model": model_cfg.name,
        "kind": str(model_cfg.kind),
        "fine_tune": fine_tune,
        "batches": batches,
        "rows": splits.rows,
        "epochs_run": len(history.epochs),
        "best_epoch": history.best_epoch,
        "history": history.epochs,
        "validation": validation,
        "holdout": holdout,
        "model_dir": str(model_dir),
        "seconds": round(time.perf_counter() - started, 3),
    }
    (output_dir / METRICS_FILE).write_text(json.dumps(result, indent=2))
    log.info(
        "%s: validation accuracy %.3f, f1 %.3f after %d epoch(s); saved to %s",
        model_cfg.name,
        validation["accuracy"],
        validation["f1_macro"],
        len(history.epochs),
        output_dir,
    )
    return result


def _fit_in_batches(
    classifier: TabularClassifier,
    splits: Splits,
    count: int,
    learning_rate: float | None,
    output_dir: Path,
) -> TrainingHistory:
    """Train on ``count`` time-ordered batches of the training rows, checkpointing each."""
    train, train_y = splits.train
    val, val_y = splits.validation
    time_column = classifier.model_cfg.time_column
    order = train[time_column] if time_column and time_column in train.columns else None
    if order is None:
        log.info(
            "%s: no time column in the file: batches follow the file's row order",
            classifier.model_cfg.name,
        )

    def checkpoint(entry: dict[str, float]) -> None:
        classifier.save(output_dir / CHECKPOINT_DIR / f"batch_{int(entry['batch']):03d}")

    batch_metrics = classifier.fit_batches(
        ordered_batches(train, train_y, count, order),
        val_frame=val,
        val_labels=val_y,
        epochs_per_batch=classifier.model_cfg.training.epochs,
        learning_rate=learning_rate,
        on_batch=checkpoint,
    )
    return batch_history(batch_metrics)


def _classifier(
    model_cfg: ModelConfig, fine_tune: bool, model_path: Path | None
) -> TabularClassifier:
    """The saved classifier to fine-tune, else a new one of the configured kind."""
    if fine_tune and model_path is not None:
        return _load_for_fine_tuning(Path(model_path), model_cfg)
    if model_path is not None:
        log.warning("ignoring model_path %s: not fine-tuning, training from scratch", model_path)
    return new_classifier(model_cfg)


def _save_model(classifier: TabularClassifier, history: TrainingHistory, output_dir: Path) -> Path:
    """Write the classifier, its history and its training curve; the classifier's directory."""
    model_dir = output_dir / MODEL_DIR
    classifier.save(model_dir)
    history_json = {"epochs": history.epochs, "best_epoch": history.best_epoch}
    (output_dir / HISTORY_FILE).write_text(json.dumps(history_json, indent=2))
    training_curve_png(history, output_dir / CURVE_FILE)
    return model_dir


def _evaluate(
    classifier: TabularClassifier, splits: Splits, output_dir: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validation and holdout metrics, and the confusion matrix of the most independent set
    (holdout when there is one)."""
    classes = classifier.classes
    val, val_y = splits.validation
    proba = classifier.predict_proba(val)
    validation = classification_metrics(val_y, proba, classes)
    holdout_metrics = None
    shown_y, shown_name = val_y, "validation"
    if splits.holdout is not None:
        holdout, shown_y = splits.holdout
        shown_name = "holdout"
        proba = classifier.predict_proba(holdout)
        holdout_metrics = classification_metrics(shown_y, proba, classes)
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    confusion_matrix_png(
        confusion(shown_y, predicted, classes),
        classes,
        output_dir / CONFUSION_FILE,
        title=f"{classifier.model_cfg.name} on {shown_name}",
    )
    return validation, holdout_metrics


def _model_config(
    config: Path,
    model: str | None,
    learning_rate: float | None,
    epochs: int | None,
    random_seed: int | None,
) -> ModelConfig:
    """The chosen model's configuration with the command-line overrides applied (validated)."""
    relearn_config = load_config(config)
    model_cfg = relearn_config.model(model) if model else relearn_config.models[0]
    overrides = {
        key: value
        for key, value in (
            ("learning_rate", learning_rate),
            ("epochs", epochs),
            ("random_seed", random_seed),
        )
        if value is not None
    }
    # model_validate rather than model_copy(update=...), so an out-of-range value fails here.
    training = TrainingConfig.model_validate({**model_cfg.training.model_dump(), **overrides})
    return model_cfg.model_copy(update={"training": training})


def _load_for_fine_tuning(model_path: Path, model_cfg: ModelConfig) -> TabularClassifier:
    """The saved classifier, trained further with this run's training settings.

    Its schema must match the configured model's; its network shape (``hidden_units``) is
    kept, since the saved weights only fit that shape.
    """
    if not model_path.is_dir():
        raise FileNotFoundError(f"model_path {model_path} is not a directory")
    classifier = load_classifier(model_path)
    saved = classifier.model_cfg
    different = sorted(
        name for name in _SCHEMA_FIELDS if getattr(saved, name) != getattr(model_cfg, name)
    )
    if different:
        raise ValueError(
            f"the classifier in {model_path} does not match model '{model_cfg.name}' of the "
            f"configuration: different {', '.join(different)}"
        )
    training = model_cfg.training.model_copy(update={"hidden_units": saved.training.hidden_units})
    classifier.model_cfg = model_cfg.model_copy(update={"training": training})
    if model_cfg.kind in (ModelKind.SKLEARN_LOGREG, ModelKind.SKLEARN_HGB):
        log.warning("%s: %s cannot fine-tune: refitting", model_cfg.name, model_cfg.kind)
    return classifier


def _read_splits(dataset: Path, model_cfg: ModelConfig) -> Splits:
    """Train, validation and (if the file has one) holdout rows with their labels."""
    frame = _read_frame(dataset, model_cfg)
    label = model_cfg.label
    labels = frame[label]
    if labels.isna().any():
        raise ValueError(
            f"{dataset}: column '{label}' has {int(labels.isna().sum())} missing label(s)"
        )
    labels = labels.map(str)
    unknown = sorted(set(labels) - set(model_cfg.classes))
    if unknown:
        raise ValueError(
            f"{dataset}: column '{label}' has unknown label(s) {unknown} "
            f"(classes: {model_cfg.classes})"
        )
    frame = frame.assign(**{label: labels})
    if SPLIT_COLUMN in frame.columns:
        parts = _split_by_column(dataset, frame)
    else:
        parts = _split_randomly(frame, model_cfg)
    train, validation, holdout = ((part, part[label].tolist()) for part in parts)
    for name, (part, _) in (("train", train), ("validation", validation)):
        if part.empty:
            raise ValueError(f"{dataset}: no {name} rows")
    return Splits(train, validation, None if holdout[0].empty else holdout)


def _read_frame(dataset: Path, model_cfg: ModelConfig) -> pd.DataFrame:
    if not dataset.is_file():
        raise FileNotFoundError(f"dataset {dataset} not found")
    suffix = dataset.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(dataset)
    elif suffix == ".csv":
        # Labels and splits as text, so that classes such as "0"/"1" are not read as numbers.
        frame = pd.read_csv(dataset, dtype={model_cfg.label: str, SPLIT_COLUMN: str})
    else:
        raise ValueError(f"dataset {dataset}: unsupported file type '{suffix}' (.parquet or .csv)")
    missing = [c for c in [*model_cfg.feature_names, model_cfg.label] if c not in frame.columns]
    if missing:
        raise ValueError(
            f"dataset {dataset}: missing column(s) {missing} for model '{model_cfg.name}' "
            f"(features {model_cfg.feature_names}, label '{model_cfg.label}')"
        )
    return _checked_cells(dataset, frame, model_cfg)


def _checked_cells(dataset: Path, frame: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """The frame with numeric features as numbers; a bad cell raises with its row in the file
    and its column, as bootstrap names it (the classifier would name a position in the split
    drawn from the file)."""
    batch = Batch(1, frame.reset_index(drop=True))
    parsed = {}
    for feature in model_cfg.features:
        empty = batch.frame[feature.name].isna()
        if not feature.nullable:
            _fail(dataset, batch, feature.name, empty, "empty, and the feature is not nullable")
        if feature.type is FeatureType.NUMERIC:
            values = numbers(batch, feature.name, dataset)
            _fail(dataset, batch, feature.name, np.isinf(values), "{value} is not finite")
            parsed[feature.name] = values
    return batch.frame.assign(**parsed)


def _fail(dataset: Path, batch: Batch, column: str, where: pd.Series, problem: str) -> None:
    """Raise for the first row where ``where`` holds; ``problem`` may name the cell's value."""
    if where.any():
        position = int(where.to_numpy().argmax())
        value = batch.frame[column].iloc[position]
        value = repr(value.item() if isinstance(value, np.generic) else value)
        raise DatasetError(
            f"dataset {dataset}: row {batch.row_number(position)}, column '{column}': "
            + problem.format(value=value)
        )


def _split_by_column(dataset: Path, frame: pd.DataFrame) -> list[pd.DataFrame]:
    split = frame[SPLIT_COLUMN]
    unknown = sorted({str(value) for value in split.unique()} - set(SPLITS))
    if unknown:
        raise ValueError(
            f"{dataset}: column '{SPLIT_COLUMN}' has unknown value(s) {unknown} "
            f"(expected {', '.join(SPLITS)})"
        )
    return [frame[split == name] for name in SPLITS]


def _split_randomly(frame: pd.DataFrame, model_cfg: ModelConfig) -> list[pd.DataFrame]:
    """A seeded train/validation split, stratified when every class has two rows to split."""
    labels = frame[model_cfg.label]
    stratify = labels if labels.value_counts().min() >= 2 else None
    train, validation = train_test_split(
        frame,
        test_size=model_cfg.training.validation_fraction,
        random_state=model_cfg.training.random_seed,
        stratify=stratify,
    )
    return [train, validation, frame.iloc[:0]]
