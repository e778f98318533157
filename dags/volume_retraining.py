"""
### Volume retraining

Every hour, for each configured model (or the one chosen in the trigger form) that sets
`reinforcement.min_new_labelled` in `relearn.yaml` (off otherwise):

1. **check_volume** — a light count in SQL: how many predictions got their outcome since the
   model's last retraining run (of any source), and how long ago that run was. Skips the rest
   unless at least `min_new_labelled` outcomes came in *and* `min_interval_hours` passed (the
   product rule: 50 new labelled samples and 24 h), or while a retraining is still running;
2. **record_run … register** — the same steps as auto-reinforcement, with source
   `auto_volume`; a blessed version becomes `challenger` (an event on the
   `relearn://models/challenger` Asset).

The champion is never touched here. Params: `model`, `dry_run` (train and gate, register
nothing).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task, task_group

from relearn_airflow.callbacks import mark_retraining_run_failed
from relearn_airflow.chains import retraining_steps
from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.retraining import StartRetrainingRunOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import announce_challenger, configured_models


@task
def check_volume(model_name: str, data_interval_end: Any = None) -> dict:
    """The retraining options when the model is due on volume; skips what follows otherwise."""
    from airflow.sdk.exceptions import AirflowSkipException

    from relearn.retraining.volume import AUTO_VOLUME, volume_decision
    from relearn.services import utcnow
    from relearn_airflow.hooks.relearn import RelearnHook

    hook = RelearnHook()
    decision = volume_decision(
        hook.services(), hook.model_config(model_name), now=data_interval_end or utcnow()
    )
    if not decision.due:
        raise AirflowSkipException(f"{decision.verdict}: {decision.reason}")
    return {"source": AUTO_VOLUME}


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timeout(Limit.RETRAINING_RUN),
    doc_md=__doc__,
    tags=["relearn", "retraining"],
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=1)),
        "on_failure_callback": mark_retraining_run_failed,
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={
        "model": model_param(),
        "dry_run": Param(False, type="boolean", description="Train and gate, register nothing"),
    },
)
def volume_retraining() -> None:
    @task_group
    def retrain(model_name: str) -> None:
        run = StartRetrainingRunOperator(
            task_id="record_run", model_name=model_name, options=check_volume(model_name)
        ).output
        announce_challenger(retraining_steps(model_name, run).output)

    retrain.expand(model_name=configured_models())


volume_retraining()
