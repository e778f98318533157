"""One step of a running test: what to do next (policy or a human's action), and doing it.

``next_decision`` gathers the two arms' figures and asks ``relearn.abtest.policy``, unless
a human's action decides; ``apply_decision`` carries the decision out — promotion and rollback
as crash-safe alias moves (``relearn.abtest.aliases``), any other step as a change of the test's
traffic — and records it with its numbers in ``ab_decisions``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relearn.abtest import policy
from relearn.abtest.aliases import PREVIOUS_CHAMPION, move_aliases
from relearn.abtest.arms import arm_stats, strata
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.store import abtests
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one call did to the model's test."""

    action: str
    reason: str
    test_id: str | None = None
    traffic: int | None = None
    version: str | None = None
    numbers: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "numbers": self.numbers or {}}


def next_decision(
    services: Services,
    model_cfg: ModelConfig,
    test: abtests.ABTest,
    action: str,
    traffic: int | None,
    now: datetime,
) -> policy.Decision:
    """A human's ``action`` (rollback, promote, expand) as a decision, else the policy's."""
    cfg = model_cfg.abtest
    if action == "rollback":
        return policy.Decision(policy.ROLLBACK, 0, "rolled back by hand")
    if action == "promote":
        return policy.Decision(
            policy.PROMOTE, 100, "promoted by hand", stage_index=len(cfg.stages) - 1
        )
    if action == "expand":
        following = min(test.stage_index + 1, len(cfg.stages) - 1)
        share = traffic or cfg.stages[following]
        if share >= 100:
            return policy.Decision(
                policy.PROMOTE, 100, "expanded to 100 % by hand", stage_index=following
            )
        return policy.Decision(policy.EXPAND, share, "expanded by hand", stage_index=following)
    return _policy_decision(services, model_cfg, test, now)


def paused_hours(decided: list[abtests.DecisionRow], now: datetime) -> float:
    """Hours between each ``pause`` decision and the ``resume`` after it (or ``now``)."""
    total, paused_at = 0.0, None
    for d in decided:
        if d.action == "pause" and paused_at is None:
            paused_at = d.decided_at
        elif d.action == "resume" and paused_at is not None:
            total += (d.decided_at - paused_at).total_seconds() / 3600
            paused_at = None
    if paused_at is not None:
        total += (now - paused_at).total_seconds() / 3600
    return total


def _policy_decision(
    services: Services, model_cfg: ModelConfig, test: abtests.ABTest, now: datetime
) -> policy.Decision:
    """The policy's verdict on the arms' figures since the test started."""
    window = abtests.ArmWindow(
        model_cfg.name, test.champion_version, test.challenger_version, test.started_at, now
    )
    with transaction(services.database_url) as connection:
        arms = arm_stats(connection, window, list(model_cfg.classes))
        decided = abtests.decisions(connection, test.id)
        changes = [
            d.decided_at
            for d in decided
            if d.action != "start" and d.traffic_after != d.traffic_before
        ]
        periods = strata(connection, window, changes)
    state = policy.TestState(
        test_id=str(test.id),
        stage_index=test.stage_index,
        traffic_percent=test.traffic_percent,
        started_at=test.started_at,
        approval=test.approval,
        paused_hours=paused_hours(decided, now),
    )
    return policy.decide(
        state, arms["champion"], arms["challenger"], model_cfg.abtest, now, periods
    )


def apply_decision(
    services: Services,
    model_cfg: ModelConfig,
    test: abtests.ABTest,
    decision: policy.Decision,
    *,
    now: datetime,
    trigger_key: str,
    by: str,
) -> Outcome:
    """Carry a decision out and record it with its numbers (alias moves crash-safely)."""
    row = abtests.DecisionRow(
        test_id=test.id,
        decided_at=now,
        action=decision.action,
        traffic_before=test.traffic_percent,
        traffic_after=decision.traffic,
        reason=decision.reason,
        numbers=decision.numbers,
        decided_by=by,
        trigger_key=trigger_key,
    )

    def record(connection: Connection) -> None:
        abtests.record_decision(connection, row)

    if decision.action == policy.PROMOTE:
        _promote(services, model_cfg.name, test, decision, by=by, record=record)
    elif decision.action == policy.ROLLBACK:
        _roll_back(services, model_cfg.name, test, decision, by=by, record=record)
    else:
        _adjust(services, test, decision, now=now, record=record)
    log.info(
        "%s: A/B test %s: %s -> %d %% (%s)",
        model_cfg.name,
        test.id,
        decision.action,
        decision.traffic,
        decision.reason,
    )
    return Outcome(
        decision.action,
        decision.reason,
        str(test.id),
        decision.traffic,
        test.challenger_version,
        decision.numbers,
    )


def _promote(
    services: Services,
    name: str,
    test: abtests.ABTest,
    decision: policy.Decision,
    *,
    by: str,
    record: Callable[[Connection], None],
) -> None:
    """The challenger becomes champion; the old champion stays reachable as the last good one."""
    move_aliases(
        services,
        name,
        [
            (CHAMPION, test.challenger_version),
            (PREVIOUS_CHAMPION, test.champion_version),
            (CHALLENGER, None),
        ],
        reason=f"A/B test {test.id}: {decision.reason}",
        changed_by=by,
        ab_test_id=str(test.id),
        test_status=abtests.PROMOTED,
        before_apply=record,
    )


def _roll_back(
    services: Services,
    name: str,
    test: abtests.ABTest,
    decision: policy.Decision,
    *,
    by: str,
    record: Callable[[Connection], None],
) -> None:
    """End the test; the ``challenger`` alias goes unless it already points elsewhere."""
    current = aliases(registry_client(services.tracking_uri), name)
    targets: list[tuple[str, str | None]] = (
        [(CHALLENGER, None)] if current.get(CHALLENGER) == test.challenger_version else []
    )
    move_aliases(
        services,
        name,
        targets,
        reason=f"A/B test {test.id}: {decision.reason}",
        changed_by=by,
        ab_test_id=str(test.id),
        test_status=abtests.ROLLED_BACK,
        before_apply=record,
    )


def _adjust(
    services: Services,
    test: abtests.ABTest,
    decision: policy.Decision,
    *,
    now: datetime,
    record: Callable[[Connection], None],
) -> None:
    """Hold, expand, rebalance or ask for approval: the test's traffic and stage change."""
    changes: dict[str, Any] = {"traffic_percent": decision.traffic}
    if decision.stage_index is not None and decision.stage_index != test.stage_index:
        changes |= {"stage_index": decision.stage_index, "stage_started_at": now}
    if decision.action == policy.AWAIT_APPROVAL:
        changes["approval"] = "requested"
    with transaction(services.database_url) as connection:
        record(connection)
        abtests.update_test(connection, test.id, **changes)
