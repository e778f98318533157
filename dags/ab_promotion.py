"""
### A/B promotion

Every hour, and as soon as a new challenger is announced (the `relearn://models/challenger`
Asset), for each configured model (or the one chosen in the trigger form):

1. **decide** — with no test running, a pending test (e.g. from drift retraining) or an untested
   `challenger` is started at the first stage (10 %; a decay retraining's candidate at the 50 %
   stage, `abtest.decay_start_percent`, or promoted at once when its fresh holdout already
   proves it: `abtest.offline_significance`). A running test is judged on the prediction
   log since its start, per arm (labelled rows, accuracy, macro F1, mean confidence, p95
   latency, error rate), with an anytime-valid sequential test (mSPRT, alpha 0.05) so hourly
   looks do not inflate false promotions:
   **expand** 10 → 25 → 50 % (after 24 / 48 h since the start; stable, then positive),
   **promote** to 100 % after 72 h when significantly better by >= 2 % (`champion` moves to the
   challenger, the old one keeps `previous_champion`), **rollback** when significantly worse or
   a guardrail breaks (latency, error rate, accuracy/F1 floors; `challenger` removed),
   otherwise **hold** (too few samples or inconclusive). Every decision is stored with its
   numbers in `ab_decisions`; every alias move in `alias_history`.
2. **request_approval** — only with `abtest.require_approval`, for a test that passed: an event
   on `relearn://abtests/approval`; the `ab_approval` DAG asks a human (Browse → Required
   Actions) while these hourly checks go on.

"Now" is the run's data interval end. Params: `model`, `action` (check, expand, pause, resume,
rollback, promote; or rollback_champion: `champion` back to `rollback_to` = previous, best or a
version, `min_f1` with best), `traffic` (for expand). Thresholds: `abtest` in `relearn.yaml`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task_group

from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.abtest import ROLLBACK_CHAMPION, ABTestOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import CHALLENGER_ASSET, models_for_action, request_approval


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 * * * *", timezone="UTC"), assets=[CHALLENGER_ASSET]
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["relearn", "deployment", "ab-test"],
    dagrun_timeout=timeout(Limit.CHECK_RUN),
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=1)),
        "execution_timeout": timeout(Limit.CHECK),
    },
    params={
        "model": model_param(),
        "action": Param(
            "check",
            enum=["check", "expand", "pause", "resume", "rollback", "promote", ROLLBACK_CHAMPION],
            description="check: the policy decides; anything else overrides it for the one "
            "model named in 'model'",
        ),
        "traffic": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=100,
            description="Challenger share in % for expand (empty: the next stage)",
        ),
        "rollback_to": Param(
            "previous",
            type="string",
            description="For rollback_champion: previous (the last known good), best (the "
            "earlier version with the best recorded holdout F1) or a version number",
        ),
        "min_f1": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            description="For rollback_champion with best: the most recent earlier version "
            "whose holdout F1 is at least this",
        ),
    },
)
def ab_promotion() -> None:
    @task_group
    def promotion(model_name: str) -> None:
        request_approval(ABTestOperator(task_id="decide", model_name=model_name).output)

    promotion.expand(model_name=models_for_action())


ab_promotion()
