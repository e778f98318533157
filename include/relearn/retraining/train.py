"""Step ``train``: fine-tune the pinned champion (or train from scratch), log the candidate."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow

from relearn.config import ModelKind
from relearn.data.dataset import TRAIN, VALIDATION
from relearn.data.memory import release_unused
from relearn.evaluation import confusion
from relearn.registry import model_uri
from relearn.retraining import artifacts
from relearn.retraining.options import ReinforceOptions
from relearn.retraining.record import load_run
from relearn.retraining.results import StepResult, StepStatus, finished
from relearn.services import NoChampionError
from relearn.store import runs
from relearn.store.db import transaction
from relearn.training.factory import new_classifier
from relearn.training.incremental import batch_history, daily_batches
from relearn.training.pyfunc import log_pyfunc_model
from relearn.training.reports import confusion_matrix_png, training_curve_png

if TYPE_CHECKING:
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.services import Services
    from relearn.training.classifier import TabularClassifier, TrainingHistory

log = logging.getLogger(__name__)


def train(services: Services, model_cfg: ModelConfig, retraining_run_id: str) -> StepResult:
    """Fine-tune the pinned champion (or train from scratch) and log the candidate model.

    ``TRAINED`` with the candidate's logged-model id (a retry finds the one it logged).
    Raises ``NoChampionError`` when asked to fine-tune a model that has no champion.
    """
    run = load_run(services, retraining_run_id)
    if run.finished:
        return finished(retraining_run_id, model_cfg.name, run.status)
    candidate_id = artifacts.candidate_model_id(services, run)
    if candidate_id is None:
        candidate_id = _train(services, model_cfg, run)
    else:
        log.info("%s: candidate %s already trained", model_cfg.name, candidate_id)
    return StepResult(
        StepStatus.TRAINED,
        retraining_run_id,
        model_cfg.name,
        detail=f"candidate {candidate_id}",
        candidate_model_id=candidate_id,
    )


def _train(services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun) -> str:
    """Fit, log the candidate to the run's MLflow run and its history to the row; its id."""
    options = ReinforceOptions.from_record(run.params)
    classifier, learning_rate = _starting_point(services, model_cfg, run, options)
    with tempfile.TemporaryDirectory() as tmp:
        splits = _load_splits(services, model_cfg, run, tmp, options)
        with artifacts.mlflow_run(services, run.mlflow_run_id):
            mlflow.log_params(
                {
                    "fine_tune": options.fine_tune,
                    "learning_rate": learning_rate,
                    "epochs": options.epochs,
                    "incremental": options.incremental,
                }
            )
            if options.incremental and splits.times is None:
                log.warning("%s: the snapshot has no prediction times: one batch", model_cfg.name)
            if options.incremental and splits.times is not None:
                history, training = _fit_by_day(
                    classifier, splits, splits.times, options, learning_rate
                )
            else:
                history = classifier.fit(
                    splits.train,
                    splits.train_labels,
                    val_frame=splits.validation,
                    val_labels=splits.validation_labels,
                    epochs=options.epochs,
                    learning_rate=learning_rate,
                )
                training = {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch}
            matrix = _validation_confusion(model_cfg, classifier, splits)
            # The rows are not needed any more: free them before the plots and the model log.
            del splits
            release_unused()
            candidate_id = _log_candidate(model_cfg, classifier, matrix, history, Path(tmp))
    with transaction(services.database_url) as connection:
        runs.merge_metrics(
            connection, run.id, {"training": {**training, "history": history.epochs}}
        )
    log.info("%s: candidate %s trained (%s)", model_cfg.name, candidate_id, training)
    return candidate_id


@dataclass(frozen=True)
class _Splits:
    """What fitting reads of the snapshot: features and labels of train and validation, and
    the training rows' prediction times for an incremental fit (None: not needed or absent)."""

    train: pd.DataFrame
    train_labels: list[str]
    validation: pd.DataFrame
    validation_labels: list[str]
    times: pd.Series | None


def _load_splits(
    services: Services,
    model_cfg: ModelConfig,
    run: runs.RetrainingRun,
    tmp: str,
    options: ReinforceOptions,
) -> _Splits:
    """The training and validation parts of the run's snapshot, the snapshot itself freed.

    The step's peak is reached while fitting: the loaded frame (and what the Parquet read left
    in pyarrow's pool) would otherwise stay resident under it.
    """
    dataset = artifacts.load_dataset(
        services, model_cfg, run.mlflow_run_id, tmp, splits=(TRAIN, VALIDATION)
    )
    has_times = options.incremental and "predicted_at" in dataset.frame.columns
    splits = _Splits(
        train=dataset.features(TRAIN),
        train_labels=dataset.labels(TRAIN),
        validation=dataset.features(VALIDATION),
        validation_labels=dataset.labels(VALIDATION),
        times=dataset.part(TRAIN)["predicted_at"] if has_times else None,
    )
    del dataset
    release_unused()
    return splits


def _fit_by_day(
    classifier: TabularClassifier,
    splits: _Splits,
    times: pd.Series,
    options: ReinforceOptions,
    learning_rate: float,
) -> tuple[TrainingHistory, dict[str, Any]]:
    """Fine-tune one day of the window at a time, oldest first, checkpointing after each.

    The model as it stood after each batch is kept in the active MLflow run
    (``checkpoints/batch_NNN``).
    """
    batches = daily_batches(splits.train, splits.train_labels, times)

    def checkpoint(entry: dict[str, float]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            classifier.save(Path(tmp))
            mlflow.log_artifacts(tmp, f"checkpoints/batch_{int(entry['batch']):03d}")

    batch_metrics = classifier.fit_batches(
        batches,
        val_frame=splits.validation,
        val_labels=splits.validation_labels,
        epochs_per_batch=options.epochs,
        learning_rate=learning_rate,
        on_batch=checkpoint,
    )
    training = {"batches": len(batch_metrics), "epochs_per_batch": options.epochs}
    return batch_history(batch_metrics), training


def _starting_point(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, options: ReinforceOptions
) -> tuple[TabularClassifier, float]:
    """The classifier to fit and its learning rate: the pinned champion's, or a new one.

    An imported champion is the starting point even when asked to train from scratch: its
    ``fit`` refits an unfitted clone of its estimator, and Relearn has no other recipe for it.
    """
    champion_version = run.params.get("champion_version")
    champion = (
        artifacts.load_registered_classifier(
            services.tracking_uri, model_uri(model_cfg.name, champion_version)
        )
        if champion_version is not None
        else None
    )
    if champion is not None and champion.kind is ModelKind.SKLEARN_IMPORTED:
        log.info("%s: refitting the imported champion v%s", model_cfg.name, champion_version)
        return champion, options.learning_rate
    if not options.fine_tune:
        return new_classifier(model_cfg), options.learning_rate
    if champion is None:
        raise NoChampionError(model_cfg.name)
    return champion, options.learning_rate * model_cfg.training.fine_tune_lr_factor


def _validation_confusion(
    model_cfg: ModelConfig, classifier: TabularClassifier, splits: _Splits
) -> list[list[int]]:
    """The fitted candidate's confusion matrix on the validation split."""
    predicted = classifier.predict_proba(splits.validation).argmax(axis=1)
    return confusion(
        splits.validation_labels, [model_cfg.classes[i] for i in predicted], model_cfg.classes
    )


def _log_candidate(
    model_cfg: ModelConfig,
    classifier: TabularClassifier,
    matrix: list[list[int]],
    history: TrainingHistory,
    tmp: Path,
) -> str:
    """Log curves, the validation confusion matrix and the model to the active MLflow run."""
    for epoch in history.epochs:
        metrics = {k: v for k, v in epoch.items() if k != "epoch"}
        mlflow.log_metrics(metrics, step=int(epoch["epoch"]))
    mlflow.log_artifact(str(training_curve_png(history, tmp / "training_curve.png")))
    mlflow.log_artifact(
        str(confusion_matrix_png(matrix, model_cfg.classes, tmp / "confusion_validation.png"))
    )
    info = log_pyfunc_model(classifier, model_cfg)
    mlflow.set_tag(artifacts.CANDIDATE_TAG, info.model_id)
    return info.model_id
