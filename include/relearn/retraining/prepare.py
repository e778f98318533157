"""Step ``prepare``: load and validate the window, select the errors, snapshot the dataset."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from relearn.data.dataset import build_dataset, count_high_confidence_errors
from relearn.data.memory import release_unused, system_allocator
from relearn.data.window import load_window
from relearn.registry import registry_client
from relearn.retraining import RetrainingError, artifacts
from relearn.retraining.options import ReinforceOptions
from relearn.retraining.record import load_run
from relearn.retraining.results import StepResult, StepStatus, finished
from relearn.services import utcnow
from relearn.store import runs
from relearn.store.db import transaction
from relearn.validation import validate_window

if TYPE_CHECKING:
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.data.dataset import RetrainingDataset
    from relearn.services import Services
    from relearn.validation import ValidationReport

log = logging.getLogger(__name__)

INSUFFICIENT_DATA = "insufficient data"


def prepare(services: Services, model_cfg: ModelConfig, retraining_run_id: str) -> StepResult:
    """Load and validate the window, select the errors and snapshot the dataset.

    ``READY`` with the dataset's digest, or ``INSUFFICIENT`` (the run is completed: too few
    errors to learn from). An unusable batch raises ``RetrainingError`` naming the problems
    and the stored GX result (the caller fails the run with that message).
    """
    run = load_run(services, retraining_run_id)
    if run.finished:
        return finished(retraining_run_id, model_cfg.name, run.status)
    if run.dataset_digest:
        return StepResult(
            StepStatus.READY,
            retraining_run_id,
            model_cfg.name,
            detail="the dataset was snapshot before",
            dataset_digest=run.dataset_digest,
        )
    # The window's text from malloc (see ``relearn.data.memory``); freed memory goes back
    # before the caller's next step, which may run in this process.
    with system_allocator():
        result = _snapshot(services, model_cfg, run, retraining_run_id)
    release_unused()
    return result


def _snapshot(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, retraining_run_id: str
) -> StepResult:
    """The work of ``prepare`` on a run whose dataset is not snapshot yet."""
    options = ReinforceOptions.from_record(run.params)
    window = _load(services, model_cfg, run, options)
    if window.empty:
        return _insufficient(services, model_cfg, run, errors=0, options=options)
    report, mlflow_run_id = _validate(services, model_cfg, run, window)
    del window  # with bad rows quarantined the valid rows are a copy: free the window first
    release_unused()  # and what validation freed, before the dataset's copy of the rows
    valid = report.valid
    del report  # ``build_dataset`` drops the valid rows' columns as it copies them
    errors = count_high_confidence_errors(valid, options.confidence_threshold)
    if errors < options.min_error_samples:
        return _insufficient(services, model_cfg, run, errors=errors, options=options)
    dataset = build_dataset(
        valid,
        model_cfg,
        confidence_threshold=options.confidence_threshold,
        seed=model_cfg.training.random_seed,
    )
    del valid
    artifacts.log_dataset(services, mlflow_run_id, dataset)
    _record_dataset(services, run, dataset, errors=errors)
    return StepResult(
        StepStatus.READY,
        retraining_run_id,
        model_cfg.name,
        detail=f"{errors} high-confidence errors to learn from",
        errors=errors,
        dataset_digest=dataset.digest,
    )


def _load(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, options: ReinforceOptions
) -> pd.DataFrame:
    """The labelled window the run was pinned to, filtered and sampled in SQL."""
    window_end = datetime.fromisoformat(run.params["window_end"])
    rf = model_cfg.reinforcement
    with transaction(services.database_url) as connection:
        window = load_window(
            connection,
            model_cfg,
            since=options.window_start(window_end),
            until=window_end,
            confidence_threshold=options.confidence_threshold,
            replay_ratio=options.replay_ratio,
            holdout_fraction=rf.holdout_fraction,
            max_holdout_rows=rf.max_holdout_rows,
            seed=model_cfg.training.random_seed,
        )
    log.info("%s: loaded %d rows of the window ending %s", model_cfg.name, len(window), window_end)
    return window


def _validate(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, window: pd.DataFrame
) -> tuple[ValidationReport, str]:
    """Validate the window, keep the GX result and the quarantined rows; raise if unusable.

    Returns the report and the MLflow run (created here) that holds the GX result.
    """
    report = validate_window(window, model_cfg, now=utcnow(), raise_on_unusable=False)
    mlflow_run_id = artifacts.ensure_mlflow_run(services, model_cfg, run)
    registry_client(services.tracking_uri).log_dict(
        mlflow_run_id, report.result, artifacts.VALIDATION_ARTIFACT
    )
    with transaction(services.database_url) as connection:
        runs.quarantine_rows(connection, run.id, _quarantined(report.quarantined))
        runs.merge_metrics(connection, run.id, {"data_validation": report.summary()})
    if not report.usable:
        raise RetrainingError(
            "the window is unusable: "
            + "; ".join(report.problems)
            + f" (Great Expectations result: {artifacts.VALIDATION_ARTIFACT} of MLflow run "
            f"{mlflow_run_id})"
        )
    return report, mlflow_run_id


def _record_dataset(
    services: Services, run: runs.RetrainingRun, dataset: RetrainingDataset, *, errors: int
) -> None:
    """Pin the snapshot on the run's row: later steps and retries train on exactly it."""
    sizes = dataset.sizes
    with transaction(services.database_url) as connection:
        runs.merge_metrics(connection, run.id, {"errors": errors, "dataset": sizes})
        runs.update_run(
            connection,
            run.id,
            dataset_digest=dataset.digest,
            dataset_size=sizes["train"] + sizes["validation"],
        )


def _insufficient(
    services: Services,
    model_cfg: ModelConfig,
    run: runs.RetrainingRun,
    *,
    errors: int,
    options: ReinforceOptions,
) -> StepResult:
    """Too few lessons is not a failure: complete the run and leave everything else alone."""
    metrics = {
        "outcome": INSUFFICIENT_DATA,
        "errors": errors,
        "min_error_samples": options.min_error_samples,
    }
    with transaction(services.database_url) as connection:
        runs.complete_run(connection, run.id, completed_at=utcnow(), metrics=metrics)
    detail = (
        f"{errors} high-confidence errors < {options.min_error_samples}: "
        "insufficient data, nothing to learn"
    )
    log.info("%s: %s", model_cfg.name, detail)
    return StepResult(
        StepStatus.INSUFFICIENT, str(run.id), model_cfg.name, detail=detail, errors=errors
    )


def _quarantined(frame: pd.DataFrame) -> list[tuple[str, list[str], dict[str, Any]]]:
    rows = frame.drop(columns=["reasons"]).to_dict(orient="records")
    return [
        (str(row["prediction_id"]), list(reasons), row)
        for row, reasons in zip(rows, frame["reasons"], strict=True)
    ]
