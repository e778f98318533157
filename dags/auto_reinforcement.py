"""
### Auto-reinforcement

Every day at 02:00 UTC, for each configured model (or the one chosen in the trigger form):

1. **record_run** — a `model_retraining_runs` row goes to `running` (once per DAG run and model);
2. **prepare_data** — the last `lookback_days` of labelled predictions are loaded in SQL and
   validated with Great Expectations; bad rows are quarantined with their reasons
   (`prediction_quarantine`), an unusable window fails the run with the GX result attached;
   fewer than `min_error_samples` high-confidence errors completes the run as
   *insufficient data* and skips the rest;
3. **train** — fine-tunes the champion on the errors plus a replay sample of correct cases (or
   trains from scratch), early-stopped, curves and confusion matrix logged to MLflow;
4. **validate_model** — absolute quality bars and no regression against the champion on the
   same holdout (`gates` in `relearn.yaml`);
5. **register** — a new MLflow version tagged with its lineage; alias `challenger` only if
   blessed, and an event on the `relearn://models/challenger` Asset.

The champion is never touched here. Params: see the trigger form; REST `conf` takes the same keys.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task_group

from relearn_airflow.callbacks import mark_retraining_run_failed
from relearn_airflow.chains import retraining_steps
from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.retraining import StartRetrainingRunOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import announce_challenger, configured_models


@dag(
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timeout(Limit.RETRAINING_RUN),
    doc_md=__doc__,
    tags=["relearn", "retraining"],
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=2)),
        "on_failure_callback": mark_retraining_run_failed,
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={
        "model": model_param(),
        # Empty means "as configured in relearn.yaml" (the value in brackets is the default).
        "lookback_days": Param(
            None, type=["null", "integer"], minimum=1, maximum=365, description="Days (7)"
        ),
        "confidence_threshold": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            description="Errors at or above (0.7)",
        ),
        "min_error_samples": Param(
            None, type=["null", "integer"], minimum=1, description="Fewer: nothing to learn (10)"
        ),
        "fine_tune": Param(True, type="boolean", description="Off: train from scratch"),
        "epochs": Param(None, type=["null", "integer"], minimum=1, maximum=500, description="(5)"),
        "learning_rate": Param(
            None, type=["null", "number"], exclusiveMinimum=0, maximum=1, description="(0.001)"
        ),
        "replay_ratio": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=20,
            description="Correct cases per error (10)",
        ),
        "incremental": Param(
            None,
            type=["null", "boolean"],
            description="Fine-tune one day at a time, oldest first (false)",
        ),
        "dry_run": Param(False, type="boolean", description="Train and gate, register nothing"),
        "source": Param("auto_daily", enum=["auto_daily", "manual", "decay_triggered"]),
        "request_id": Param(None, type=["null", "string"]),
        "triggered_by": Param(None, type=["null", "string"]),
    },
)
def auto_reinforcement() -> None:
    @task_group
    def retrain(model_name: str) -> None:
        run = StartRetrainingRunOperator(task_id="record_run", model_name=model_name).output
        announce_challenger(retraining_steps(model_name, run).output)

    retrain.expand(model_name=configured_models())


auto_reinforcement()
