"""Replays of whole A/B tests against the real policy, hour by hour, for decision quality.

Each hour ``hourly_labelled`` outcomes arrive; the challenger's share of them follows the
test's traffic, and each arm's correct answers are binomial with its true accuracy. The
policy (``relearn.abtest.policy.decide``) sees the cumulative figures, exactly as the hourly
DAG would, and its decisions are applied until it promotes, rolls back or the horizon ends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from relearn.abtest import policy
from relearn.abtest.arms import ArmStats
from relearn.abtest.stats import Stratum

if TYPE_CHECKING:
    from relearn.config import ABTestConfig

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Replay:
    outcome: str  # promoted | rolled_back | running (still undecided at the horizon)
    hours: int
    final_traffic: int


def _arm(arm: str, labelled: int, correct: int) -> ArmStats:
    return ArmStats(arm, None, labelled, labelled, correct, None, None, None)


def replay_test(
    champion_accuracy: float,
    challenger_accuracy: float,
    cfg: ABTestConfig,
    *,
    seed: int,
    hourly_labelled: int = 400,
    horizon_hours: int = 14 * 24,
    after_decay: bool = False,
) -> Replay:
    """One test from its start (at the stage ``policy.start_stage`` gives) until a verdict or
    the horizon."""
    rng = np.random.default_rng(seed)
    stage = policy.start_stage(cfg, after_decay=after_decay)
    state = policy.TestState(
        test_id=f"replay-{seed}",
        stage_index=stage,
        traffic_percent=cfg.stages[stage],
        started_at=START,
    )
    periods = [[0, 0, 0, 0]]  # per traffic period: champion n, correct, challenger n, correct
    for hour in range(1, horizon_hours + 1):
        to_challenger = rng.binomial(hourly_labelled, state.traffic_percent / 100)
        to_champion = hourly_labelled - to_challenger
        current = periods[-1]
        current[0] += to_champion
        current[1] += rng.binomial(to_champion, champion_accuracy)
        current[2] += to_challenger
        current[3] += rng.binomial(to_challenger, challenger_accuracy)
        totals = [sum(column) for column in zip(*periods, strict=True)]
        decision = policy.decide(
            state,
            _arm("champion", totals[0], totals[1]),
            _arm("challenger", totals[2], totals[3]),
            cfg,
            START + timedelta(hours=hour),
            [Stratum(*period) for period in periods],
        )
        if decision.action == policy.PROMOTE:
            return Replay("promoted", hour, 100)
        if decision.action == policy.ROLLBACK:
            return Replay("rolled_back", hour, 0)
        if decision.action in (policy.EXPAND, policy.REBALANCE):
            periods.append([0, 0, 0, 0])
            state = replace(
                state,
                traffic_percent=decision.traffic,
                stage_index=decision.stage_index
                if decision.stage_index is not None
                else state.stage_index,
            )
    return Replay("running", horizon_hours, state.traffic_percent)


def decision_quality(
    cfg: ABTestConfig,
    *,
    tests: int,
    champion_accuracy: float = 0.80,
    lifts: tuple[float, ...] = (0.0, -0.03, 0.05),
    seed: int = 0,
    **replay_options: int | bool,
) -> dict[float, dict[str, float]]:
    """Share of tests promoted / rolled back / undecided per relative lift of the challenger."""
    table = {}
    for lift in lifts:
        outcomes = [
            replay_test(
                champion_accuracy,
                champion_accuracy * (1 + lift),
                cfg,
                seed=seed * 1_000_003 + i,
                **replay_options,
            )
            for i in range(tests)
        ]
        table[lift] = {
            name: sum(o.outcome == name for o in outcomes) / tests
            for name in ("promoted", "rolled_back", "running")
        } | {"median_hours": sorted(o.hours for o in outcomes)[tests // 2]}
    return table
