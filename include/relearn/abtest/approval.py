"""A human's answer to a test's approval request (``await_approval``), carried out.

A test that passed with ``abtest.require_approval`` waits for a person; their answer
promotes or rolls back through the same ``relearn.abtest.decision`` step as the policy's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.abtest import policy
from relearn.abtest.aliases import locked
from relearn.abtest.decision import Outcome, apply_decision
from relearn.store import abtests
from relearn.store.db import transaction

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.services import Services


@locked
def answer_approval(
    services: Services,
    model_cfg: ModelConfig,
    *,
    test_id: str,
    approved: bool,
    now: datetime,
    trigger_key: str,
    by: str,
) -> Outcome:
    """Carry out a human's answer to ``await_approval``: promote, or roll back.

    Only for the test that asked, while it is still running and waiting: an answer that
    arrives after the test ended (rolled back by a guardrail, replaced) changes nothing.
    """
    with transaction(services.database_url) as connection:
        test = abtests.get_test(connection, test_id)
    if test.status != abtests.RUNNING or test.approval != "requested":
        return Outcome(
            "none",
            f"test {test_id} is {test.status} (approval {test.approval}): answer ignored",
            test_id,
        )
    with transaction(services.database_url) as connection:
        abtests.update_test(connection, test.id, approval="approved" if approved else "rejected")
    decision = (
        policy.Decision(policy.PROMOTE, 100, f"approved by {by}", stage_index=len(test.stages) - 1)
        if approved
        else policy.Decision(policy.ROLLBACK, 0, f"promotion rejected by {by}")
    )
    return apply_decision(
        services, model_cfg, test, decision, now=now, trigger_key=trigger_key, by=by
    )
