"""
### Manual retraining

Serves `model_retraining_requests`, one at a time, as soon as they arrive (the DAG runs
continuously; at most one run, so exactly one sensor waits):

1. **wait_for_request** — a deferrable sensor: while nothing is pending it holds no worker
   slot; its trigger wakes on the table's `NOTIFY` (any `INSERT`, from any client) or a
   fallback poll. It then claims the most urgent request (high, normal, low; oldest first) with
   `FOR UPDATE SKIP LOCKED` and a lease, so each request is served exactly once.
2. The auto-reinforcement steps run for the request's model with `source='manual'`,
   `request_id` and `triggered_by` = the requester; the request links to the run at once.
3. **close_request** — the request becomes `completed` when the run completed (a new version,
   a rejected candidate or "insufficient data" alike), `failed` with the run's error otherwise.

Make a request with the `request_retraining` DAG's trigger form, `relearn request create`, or a
plain `INSERT INTO model_retraining_requests (model_name, reason, priority) VALUES (...)`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from relearn_airflow.callbacks import mark_retraining_run_failed
from relearn_airflow.chains import retraining_steps
from relearn_airflow.limits import Limit, retry_delay, timeout, waiting_run_timeout
from relearn_airflow.operators.retraining import StartRetrainingRunOperator
from relearn_airflow.sensors.requests import RetrainingRequestSensor
from relearn_airflow.tasks import announce_challenger, close_request

REQUEST = "ti.xcom_pull(task_ids='wait_for_request')"


@dag(
    schedule="@continuous",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=waiting_run_timeout(Limit.REQUEST_WAIT, then=Limit.RETRAINING_RUN),
    doc_md=__doc__,
    tags=["relearn", "retraining"],
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=1)),
        "on_failure_callback": mark_retraining_run_failed,
        "execution_timeout": timeout(Limit.BOOKKEEPING),
    },
)
def manual_retraining() -> None:
    request = RetrainingRequestSensor(
        task_id="wait_for_request",
        # Also bounds each blocking wait of the trigger, so the triggerer stops within seconds.
        poll_interval=5,
        # Handed to every deferral: a quiet week (RELEARN_TIMEOUT_REQUEST_WAIT_MINUTES)
        # ends the run as skipped; the next run waits again.
        timeout=timeout(Limit.REQUEST_WAIT),
        soft_fail=True,
        # Airflow 3.3.2 can fail a resumed deferred task when the request arrives in the ~5 s
        # after the deferral (apache/airflow#67287, #71580); the retry gets its own claim back,
        # so retry fast instead of after the DAG's 1-minute delay.
        retries=3,
        retry_delay=pendulum.duration(seconds=5),
    )
    model_name = "{{ " + REQUEST + "['model_name'] }}"
    record = StartRetrainingRunOperator(
        task_id="record_run",
        model_name=model_name,
        options={
            "source": "manual",
            "request_id": "{{ " + REQUEST + "['id'] }}",
            "triggered_by": "{{ " + REQUEST + "['requested_by'] or '' }}",
        },
    )
    announced = announce_challenger(retraining_steps(model_name, record.output).output)
    request >> record
    [request, announced] >> close_request()


manual_retraining()
