"""
### Request a retraining

Files one row in `model_retraining_requests` from the trigger form (or REST `conf`): the
`manual_retraining` DAG picks it up within seconds. Params: `model`, `reason` (stored verbatim,
at most 2,000 characters), `priority` (`high` | `normal` | `low`), `requested_by` (a user UUID,
optional). An unknown model or a bad value fails the run with a message saying what to fix.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.params import model_param
from relearn_airflow.tasks import create_request


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["relearn", "retraining"],
    dagrun_timeout=timeout(Limit.CHECK_RUN),
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(seconds=30)),
        "execution_timeout": timeout(Limit.BOOKKEEPING),
    },
    params={
        "model": model_param(optional=False),
        "reason": Param(None, type=["null", "string"], maxLength=2000),
        "priority": Param("normal", enum=["high", "normal", "low"]),
        "requested_by": Param(None, type=["null", "string"], description="User UUID"),
    },
)
def request_retraining() -> None:
    create_request()


request_retraining()
