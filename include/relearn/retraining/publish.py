"""Step ``publish``: register the candidate, complete the run, then hand a blessed one over."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from relearn.registry import register_version, registry_client
from relearn.retraining import RetrainingError, artifacts
from relearn.retraining.handover import ALIASED_KEY, alias_challenger
from relearn.retraining.record import load_run
from relearn.retraining.results import StepResult, StepStatus, finished
from relearn.services import utcnow
from relearn.store import runs
from relearn.store.db import transaction

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)


def publish(services: Services, model_cfg: ModelConfig, retraining_run_id: str) -> StepResult:
    """Register the candidate, complete the run, then (if blessed) alias it ``challenger``.

    In that order, so an alias never points at a version whose run is not ``completed``; a
    retry after a crash finds the version it registered and sets the alias it missed.
    """
    run = load_run(services, retraining_run_id)
    if run.status == runs.FAILED:
        raise RetrainingError(f"run {retraining_run_id} failed: {run.error_message}")
    if run.status == runs.COMPLETED and run.model_version is None:
        # Completed without a candidate to register: insufficient data, or a dry run.
        return finished(retraining_run_id, model_cfg.name, run.status, blessed=False)
    blessed = bool(((run.metrics or {}).get("gate") or {}).get("blessed"))
    if run.status == runs.COMPLETED and (not blessed or (run.metrics or {}).get(ALIASED_KEY)):
        # Fully published before: the alias may have moved on since, so leave it alone.
        return finished(
            retraining_run_id,
            model_cfg.name,
            run.status,
            version=run.model_version,
            blessed=blessed,
        )
    version = _register(services, model_cfg, run, blessed=blessed)
    with transaction(services.database_url) as connection:
        runs.complete_run(
            connection, run.id, completed_at=utcnow(), metrics={}, model_version=version
        )
    outcome = alias_challenger(services, model_cfg, run, version) if blessed else "no alias"
    detail = f"v{version} registered, {'blessed' if blessed else 'not blessed'} ({outcome})"
    log.info("%s %s", model_cfg.name, detail)
    return StepResult(
        StepStatus.PUBLISHED,
        retraining_run_id,
        model_cfg.name,
        detail=detail,
        blessed=blessed,
        version=version,
    )


def _register(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, *, blessed: bool
) -> str:
    """The candidate's registered version, created once per run (found again by its tag)."""
    return register_version(
        registry_client(services.tracking_uri),
        model_cfg.name,
        artifacts.required_candidate(services, run),
        run_id=run.mlflow_run_id,
        key_tag=artifacts.RUN_TAG,
        tags={
            artifacts.RUN_TAG: str(run.id),
            "relearn.source": run.source,
            "relearn.trigger_key": run.trigger_key or "",
            "relearn.dataset_digest": run.dataset_digest or "",
            "relearn.gate": "blessed" if blessed else "rejected",
            "relearn.parent_version": run.params.get("champion_version") or "",
            "relearn.reference_accuracy": f"{run.metrics['holdout']['accuracy']:.6f}",
        },
    )
