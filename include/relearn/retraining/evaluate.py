"""Step ``evaluate``: gate the candidate against absolute bars and the champion."""

from __future__ import annotations

import logging
import tempfile
from typing import TYPE_CHECKING, Any

import mlflow

from relearn.analysis.run import analyze_retraining_run
from relearn.data.window import HOLDOUT
from relearn.drift.reference import log_profile
from relearn.evaluation import classification_metrics, flat_metrics
from relearn.gates import decide
from relearn.registry import model_uri
from relearn.retraining import RetrainingError, artifacts
from relearn.retraining.options import ReinforceOptions
from relearn.retraining.record import load_run
from relearn.retraining.results import StepResult, StepStatus, finished
from relearn.services import utcnow
from relearn.store import runs
from relearn.store.db import transaction

if TYPE_CHECKING:
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.gates import GateDecision
    from relearn.services import Services

log = logging.getLogger(__name__)


def evaluate(services: Services, model_cfg: ModelConfig, retraining_run_id: str) -> StepResult:
    """Score candidate and pinned champion on the same holdout and gate the candidate.

    ``EVALUATED`` (publish is next), or ``DRY_RUN``: the decision is kept and the run is
    completed without registering anything.
    """
    run = load_run(services, retraining_run_id)
    if run.finished:
        return finished(retraining_run_id, model_cfg.name, run.status)
    options = ReinforceOptions.from_record(run.params)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = artifacts.load_dataset(
            services, model_cfg, run.mlflow_run_id, tmp, splits=(HOLDOUT,)
        )
    holdout, truth = dataset.features("holdout"), dataset.labels("holdout")
    if not truth:
        raise RetrainingError("the holdout is empty: the window has too few labelled rows")
    candidate = artifacts.load_registered_classifier(
        services.tracking_uri, f"models:/{artifacts.required_candidate(services, run)}"
    )
    probabilities = candidate.predict_proba(holdout)
    metrics = classification_metrics(truth, probabilities, model_cfg.classes)
    champion_metrics = _champion_metrics(services, model_cfg, run, holdout, truth)
    decision = decide(metrics, champion_metrics, model_cfg.gates)
    with artifacts.mlflow_run(services, run.mlflow_run_id):
        _log_decision(metrics, champion_metrics, decision)
        # The holdout is recent traffic the candidate never trained on: its drift reference.
        log_profile(
            model_cfg, holdout, probabilities, metrics["accuracy"], predict=candidate.predict_proba
        )
    results = {"holdout": metrics, "champion_holdout": champion_metrics, "gate": decision.as_dict()}
    analyze_retraining_run(services, model_cfg, run, holdout, truth, probabilities)
    return _record(services, model_cfg, run, results, decision, dry_run=options.dry_run)


def _record(
    services: Services,
    model_cfg: ModelConfig,
    run: runs.RetrainingRun,
    results: dict[str, Any],
    decision: GateDecision,
    *,
    dry_run: bool,
) -> StepResult:
    """Keep every number behind the decision on the run; a dry run ends here, completed."""
    with transaction(services.database_url) as connection:
        runs.merge_metrics(connection, run.id, results)
        if dry_run:
            runs.complete_run(connection, run.id, completed_at=utcnow(), metrics={"dry_run": True})
    verdict = "blessed" if decision.blessed else "rejected"
    reasons = "; ".join(decision.reasons) or "every gate passed"
    log.info("%s: candidate %s: %s", model_cfg.name, verdict, reasons)
    if dry_run:
        status, detail = StepStatus.DRY_RUN, f"dry run: candidate {verdict}, not registered"
    else:
        status, detail = StepStatus.EVALUATED, f"candidate {verdict}: {reasons}"
    return StepResult(status, str(run.id), model_cfg.name, detail=detail, blessed=decision.blessed)


def _champion_metrics(
    services: Services,
    model_cfg: ModelConfig,
    run: runs.RetrainingRun,
    holdout: pd.DataFrame,
    truth: list[str],
) -> dict[str, Any] | None:
    """The pinned champion's metrics on the same holdout (None when there was no champion)."""
    version = run.params.get("champion_version")
    if not version:
        return None
    champion = artifacts.load_registered_classifier(
        services.tracking_uri, model_uri(model_cfg.name, version)
    )
    return classification_metrics(truth, champion.predict_proba(holdout), model_cfg.classes)


def _log_decision(
    metrics: dict[str, Any],
    champion_metrics: dict[str, Any] | None,
    decision: GateDecision,
) -> None:
    """Holdout metrics of both, the gate's decision and verdict, to the active MLflow run."""
    mlflow.log_metrics(flat_metrics(metrics, prefix="holdout_"))
    if champion_metrics:
        mlflow.log_metrics(flat_metrics(champion_metrics, prefix="champion_holdout_"))
    mlflow.log_dict(decision.as_dict(), "gate.json")
    mlflow.set_tag("relearn.gate", "blessed" if decision.blessed else "rejected")
