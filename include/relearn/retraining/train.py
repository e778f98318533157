"""Step ``train``: fine-tune the pinned champion (or train from scratch), log the candidate."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow

from relearn.config import ModelKind
from relearn.data.dataset import TRAIN, VALIDATION
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
    from relearn.config import ModelConfig
    from relearn.data.dataset import RetrainingDataset
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
        dataset = artifacts.load_dataset(
            services, model_cfg, run.mlflow_run_id, tmp, splits=(TRAIN, VALIDATION)
        )
        with artifacts.mlflow_run(services, run.mlflow_run_id):
            mlflow.log_params(
                {
                    "fine_tune": options.fine_tune,
                    "learning_rate": learning_rate,
                    "epochs": options.epochs,
                    "incremental": options.incremental,
                }
            )
            if options.incremental and "predicted_at" not in dataset.frame.columns:
                log.warning("%s: the snapshot has no prediction times: one batch", model_cfg.name)
            if options.incremental and "predicted_at" in dataset.frame.columns:
                history, training = _fit_by_day(classifier, dataset, options, learning_rate)
            else:
                history = classifier.fit(
                    dataset.features("train"),
                    dataset.labels("train"),
                    val_frame=dataset.features("validation"),
                    val_labels=dataset.labels("validation"),
                    epochs=options.epochs,
                    learning_rate=learning_rate,
                )
                training = {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch}
            candidate_id = _log_candidate(model_cfg, classifier, dataset, history, Path(tmp))
    with transaction(services.database_url) as connection:
        runs.merge_metrics(
            connection, run.id, {"training": {**training, "history": history.epochs}}
        )
    log.info("%s: candidate %s trained (%s)", model_cfg.name, candidate_id, training)
    return candidate_id


def _fit_by_day(
    classifier: TabularClassifier,
    dataset: RetrainingDataset,
    options: ReinforceOptions,
    learning_rate: float,
) -> tuple[TrainingHistory, dict[str, Any]]:
    """Fine-tune one day of the window at a time, oldest first, checkpointing after each.

    The model as it stood after each batch is kept in the active MLflow run
    (``checkpoints/batch_NNN``).
    """
    train = dataset.part("train")
    batches = daily_batches(
        train[dataset.model_cfg.feature_names], dataset.labels("train"), train["predicted_at"]
    )

    def checkpoint(entry: dict[str, float]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            classifier.save(Path(tmp))
            mlflow.log_artifacts(tmp, f"checkpoints/batch_{int(entry['batch']):03d}")

    batch_metrics = classifier.fit_batches(
        batches,
        val_frame=dataset.features("validation"),
        val_labels=dataset.labels("validation"),
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


def _log_candidate(
    model_cfg: ModelConfig,
    classifier: TabularClassifier,
    dataset: RetrainingDataset,
    history: TrainingHistory,
    tmp: Path,
) -> str:
    """Log curves, the validation confusion matrix and the model to the active MLflow run."""
    predicted = classifier.predict_proba(dataset.features("validation")).argmax(axis=1)
    matrix = confusion(
        dataset.labels("validation"), [model_cfg.classes[i] for i in predicted], model_cfg.classes
    )
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
