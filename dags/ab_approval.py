"""
### A/B approval

Runs when `ab_promotion` announces an A/B test that passed while `abtest.require_approval` is
on (the `relearn://abtests/approval` Asset). For each announced test a human answers under
Browse → Required Actions: **Approve** promotes the challenger to `champion` now (the old one
keeps `previous_champion`); **Reject** rolls it back. The answer applies only to the test that
asked and only while it still waits; meanwhile the hourly checks keep guarding it (a guardrail
can still roll it back).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from relearn_airflow.limits import Limit, retry_delay, timeout, waiting_run_timeout
from relearn_airflow.operators.approval import PromotionApprovalOperator
from relearn_airflow.tasks import APPROVAL_ASSET, approval_requests


@dag(
    schedule=[APPROVAL_ASSET],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["relearn", "deployment", "ab-test"],
    dagrun_timeout=waiting_run_timeout(Limit.APPROVAL_WAIT, then=Limit.CHECK_RUN),
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=1)),
        # Bounds the asking and the carrying out; the wait itself is response_timeout.
        "execution_timeout": timeout(Limit.CHECK),
    },
)
def ab_approval() -> None:
    PromotionApprovalOperator.partial(
        task_id="approve_promotion", response_timeout=timeout(Limit.APPROVAL_WAIT)
    ).expand(request=approval_requests())


ab_approval()
