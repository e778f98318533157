"""
### Model health

Every hour, for each configured model, `check_health` scores it over the last `window_hours`:
`score = 0.4 * availability + 0.4 * error_score + 0.2 * latency_score` (champion deployed and
loading, traffic vs the same hours of the last 7 days; labelled accuracy vs the registered
reference; p95 latency vs `health.latency_budget_ms`). Status `healthy` >= 0.8 > `degraded` >= 0.5
> `unhealthy`; each part below 0.8 adds an issue and a recommendation. One `health_checks` row per
model and run; a model with no champion (or one that does not load) fails its task.

Then `alerts` raises the alerts of this run's interval (health below 0.8, drift or decay found,
a failed retraining, a rollback, a request stuck past its lease) into the `alerts` table, once
per event and at most once per `health.alert_cooldown_hours` per model and kind, and sends them
through the Airflow connections `relearn_alerts_webhook` (http) and `relearn_alerts_smtp`
(smtp), whichever exist (none: logged only). `all_checked` succeeds only when every check did,
so an unhealthy model fails the run even though `alerts` ran.

Params: `model` (empty = every configured model), `window_hours`.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, dag

from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.health import AlertsOperator, ModelHealthOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import configured_models


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["relearn", "monitoring"],
    dagrun_timeout=timeout(Limit.CHECK_RUN),
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=2)),
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={
        "model": model_param(),
        "window_hours": Param(24, type="integer", minimum=1, maximum=24 * 30),
    },
)
def model_health() -> None:
    models = configured_models()
    checks = ModelHealthOperator.partial(
        task_id="check_health", window_hours="{{ params.window_hours }}"
    ).expand(model_name=models)
    # After every check, however it ended: an unhealthy model's failed task is worth an alert.
    checks >> AlertsOperator(task_id="alerts", model_names=models, trigger_rule="all_done")
    # A leaf that only succeeds when every check did, so an unhealthy model fails the run.
    checks >> EmptyOperator(task_id="all_checked")


model_health()
