"""
### Drift monitor

Every hour, for each configured model (or the one chosen in the trigger form):

1. **check_drift** — the champion's predictions of the last `window_hours` are compared with
   the reference profile stored with its version: per feature PSI, KS and Wasserstein
   (numeric) or PSI, Jensen-Shannon and chi-squared (categorical), the prediction mix, the
   accuracy on rows whose outcome is known, and the accuracy estimated from the calibrated
   confidences (CBPE) of the champion and any challenger. Verdict `decayed` (accuracy fell),
   `drifted` (the importance-weighted drift score reached `threshold`), `estimated_decay`
   (outcomes not in yet, the estimated accuracy fell: a warning that retrains only with
   `drift.retrain_on_estimated_decay`), `stable` or `insufficient_data` (fewer than
   `min_rows` rows). Every check writes a `drift_reports` row; a drifted, decayed or
   estimated_decay one also an HTML report in MLflow (each feature's share of the score).
   A `decayed` champion first makes way for a previous champion that is clearly better on the
   rows since the decline (action `comeback`, at once, reason in the alias history; never with
   `abtest.require_approval` or while a test is live; `drift.comeback_versions` 0 turns it off).
2. **retraining_wanted** — skips the rest unless the check asked for retraining: never on a
   dry run, after a comeback, nor while the model cools down (a retraining running, an A/B
   test pending or paused, or the last drift retraining or comeback less than
   `cooldown_hours` ago).
3. **record_run … register** — the same steps as auto-reinforcement, with source
   `drift_triggered` (on the last `retrain_lookback_days`) or `decay_triggered` (on the rows
   since the decline the check found, from all errors, at `decay_learning_rate_factor` times
   the learning rate; the check waits until those rows can fill the gates' holdout); a blessed
   version becomes `challenger` and gets a pending A/B test at the first traffic stage.

Params: see the trigger form; empty ones take `relearn.yaml`'s `drift` values.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task_group

from relearn_airflow.callbacks import mark_retraining_run_failed
from relearn_airflow.chains import retraining_steps
from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.drift import DriftCheckOperator
from relearn_airflow.operators.retraining import StartRetrainingRunOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import announce_challenger, configured_models, retraining_wanted


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timeout(Limit.RETRAINING_RUN),
    doc_md=__doc__,
    tags=["relearn", "monitoring", "retraining"],
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=1)),
        "on_failure_callback": mark_retraining_run_failed,
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={
        "model": model_param(),
        "window_hours": Param(
            None, type=["null", "integer"], minimum=1, maximum=24 * 31, description="Hours (24)"
        ),
        "threshold": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=1,
            description="Importance-weighted drift score that counts as drift (0.2)",
        ),
        "min_rows": Param(
            None, type=["null", "integer"], minimum=1, description="Fewer: no verdict (200)"
        ),
        "dry_run": Param(False, type="boolean", description="Report only, never retrain"),
        "epochs": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=500,
            description="Epochs of a triggered retraining (5)",
        ),
    },
)
def drift_monitor() -> None:
    @task_group
    def monitor(model_name: str) -> None:
        check = DriftCheckOperator(task_id="check_drift", model_name=model_name)
        run = StartRetrainingRunOperator(
            task_id="record_run", model_name=model_name, options=retraining_wanted(check.output)
        ).output
        announce_challenger(retraining_steps(model_name, run).output)

    monitor.expand(model_name=configured_models())


drift_monitor()
