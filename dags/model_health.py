"""
### Model health

Every hour, for each configured model: is a `champion` deployed in MLflow, did it serve traffic in
the last `window_hours`, and is its labelled accuracy within 0.10 of the accuracy it was
registered with? Each check writes a `health_checks` row (status `healthy`, `degraded` or
`unhealthy`); an `unhealthy` model (no champion) fails its task so failure alerts fire.

Params: `model` (empty = every configured model), `window_hours`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from relearn_airflow.limits import Limit, timeout
from relearn_airflow.operators.health import ModelHealthOperator
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
        "retry_delay": pendulum.duration(minutes=2),
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={
        "model": model_param(),
        "window_hours": Param(24, type="integer", minimum=1, maximum=24 * 30),
    },
)
def model_health() -> None:
    ModelHealthOperator.partial(
        task_id="check_health", window_hours="{{ params.window_hours }}"
    ).expand(model_name=configured_models())


model_health()
