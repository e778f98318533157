"""The A/B test: split, per-arm numbers with a 95 % interval, and the decisions' timeline.

Arm figures are computed now, from the prediction log since the test started (as the hourly
check computes them); the comparison's anytime-valid interval is the one the latest decision
recorded, since that is what the policy acted on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relearn.abtest.arms import ArmStats, arm_stats
from relearn.store import dashboard
from relearn.store.abtests import ArmWindow

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

DECISIONS_LIMIT = 50
Z95 = 1.959964


@dataclass(frozen=True)
class ArmView:
    arm: str
    version: str | None
    predictions: int
    labelled: int
    correct: int
    accuracy: float | None
    accuracy_low: float | None  # Wilson 95 % interval
    accuracy_high: float | None
    latency_p95_ms: float | None
    f1_macro: float | None


@dataclass(frozen=True)
class DecisionView:
    decided_at: datetime
    action: str
    traffic_before: int
    traffic_after: int
    reason: str
    decided_by: str


@dataclass(frozen=True)
class ABTestView:
    id: str
    live: bool
    status: str
    policy: str
    champion_version: str | None
    challenger_version: str
    traffic_percent: int
    stages: list[Any]
    stage_index: int
    started_at: datetime | None
    reason: str | None
    awaiting_approval: bool
    arms: list[ArmView]
    comparison: dict[str, float] | None  # challenger minus champion, latest decision's
    decisions: list[DecisionView]  # oldest first


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """The Wilson score interval of a proportion (sound at 0 and n successes)."""
    if n <= 0:
        return None, None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _arm(stats: ArmStats) -> ArmView:
    low, high = wilson_interval(stats.correct, stats.labelled)
    return ArmView(
        arm=stats.arm,
        version=stats.version,
        predictions=stats.predictions,
        labelled=stats.labelled,
        correct=stats.correct,
        accuracy=stats.accuracy,
        accuracy_low=low,
        accuracy_high=high,
        latency_p95_ms=stats.latency_p95_ms,
        f1_macro=stats.f1_macro,
    )


def _arms(
    connection: Connection, model: str, test: dict[str, Any], classes: list[str], now: datetime
) -> list[ArmView]:
    if test["started_at"] is None or test["champion_version"] is None:
        return []
    until = test.get("ended_at") or now
    window = ArmWindow(
        model, test["champion_version"], test["challenger_version"], test["started_at"], until
    )
    return [_arm(stats) for stats in arm_stats(connection, window, classes).values()]


def read_abtest(
    connection: Connection, model: str, classes: list[str], *, now: datetime
) -> ABTestView | None:
    """The live test, else the latest one (ended), else None."""
    test = dashboard.latest_test(connection, model)
    if test is None:
        return None
    live = test["status"] in dashboard.LIVE_TEST_STATUSES
    rows = dashboard.test_decisions(connection, test["id"], DECISIONS_LIMIT)
    comparison = next(
        (r["numbers"]["comparison"] for r in reversed(rows) if "comparison" in r["numbers"]),
        None,
    )
    return ABTestView(
        id=str(test["id"]),
        live=live,
        status=test["status"],
        policy=test["policy"],
        champion_version=test["champion_version"],
        challenger_version=test["challenger_version"],
        traffic_percent=test["traffic_percent"],
        stages=list(test["stages"] or []),
        stage_index=test["stage_index"],
        started_at=test["started_at"],
        reason=test["reason"],
        awaiting_approval=live and test["approval"] == "requested",
        arms=_arms(connection, model, test, classes, now),
        comparison=comparison,
        decisions=[
            DecisionView(
                decided_at=r["decided_at"],
                action=r["action"],
                traffic_before=r["traffic_before"],
                traffic_after=r["traffic_after"],
                reason=r["reason"],
                decided_by=r["decided_by"],
            )
            for r in rows
        ],
    )
