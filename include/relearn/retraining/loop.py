"""The whole retraining loop in one process (the CLI, drift's CLI, the bench)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.retraining.evaluate import evaluate
from relearn.retraining.prepare import prepare
from relearn.retraining.publish import publish
from relearn.retraining.record import fail, load_run, start
from relearn.retraining.runlog import captured_log
from relearn.retraining.train import train
from relearn.services import utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.retraining.options import ReinforceOptions
    from relearn.services import Services
    from relearn.store.runs import RetrainingRun

STEPS = (prepare, train, evaluate, publish)


def reinforce(
    services: Services,
    model_cfg: ModelConfig,
    options: ReinforceOptions,
    *,
    trigger_key: str,
    now: datetime | None = None,
    log_name: str = "cli",
) -> RetrainingRun:
    """Start the run, then each step until one leaves nothing to do; the finished run row.

    Any error fails the run (with the error as its reason) and is raised again. The loop's log
    is kept as ``logs/<log_name>.log`` in the run's MLflow run.
    """
    started = start(services, model_cfg, options, trigger_key=trigger_key, now=now or utcnow())
    run_id = started.retraining_run_id
    try:
        with captured_log(services, model_cfg, run_id, log_name):
            for step in STEPS:
                if step(services, model_cfg, run_id).terminal:
                    break
    except Exception as error:
        fail(services, run_id, error)
        raise
    return load_run(services, run_id)
