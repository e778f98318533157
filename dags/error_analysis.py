"""
### Error analysis

Every day, for each configured model (or the one chosen in the trigger form): where was the
champion wrong in the last 24 hours of labelled predictions? The **analyze_errors** task
writes an `error_analyses` row with the confusion pairs, the segments (each categorical
value, numeric quantile bins and two-way combinations) whose error rate is significantly
above the overall rate (Wilson intervals, one-sided binomial tests, Benjamini-Hochberg at a
5 % false discovery rate), the reliability curve and its expected calibration error, and
ranked suggestions; each segment also shows the live A/B challenger's error there, if any.
Unsound rows of the log are left out and counted; a model without a champion is skipped.

Each retraining run gets the same analysis of its holdout (champion vs candidate) from its
`evaluate` step. `relearn analyze --model M` prints one on demand.

Params: `model` (empty = every configured model).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.analysis import ErrorAnalysisOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import configured_models


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["relearn", "monitoring"],
    dagrun_timeout=timeout(Limit.CHECK_RUN),
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=5)),
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={"model": model_param()},
)
def error_analysis() -> None:
    ErrorAnalysisOperator.partial(task_id="analyze_errors").expand(model_name=configured_models())


error_analysis()
