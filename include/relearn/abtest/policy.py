"""What an A/B test does next, from the two arms' figures: pure, so replays decide the same.

Staged policy (default), checked in this order:

1. **guardrails** (from ``min_guardrail_samples`` labelled rows per arm): the challenger's p95
   latency above the champion's by more than ``max_latency_increase`` (+ ``latency_slack_ms``),
   its error rate above the champion's by more than ``max_error_rate_increase``, or its
   accuracy / macro F1 under ``min_accuracy`` / ``min_f1`` -> **rollback** at once (a broken
   model should not wait for significance);
2. **significantly worse** (the anytime-valid interval of challenger - champion accuracy is
   below 0, ``relearn.abtest.stats``) -> **rollback**;
3. fewer labelled rows in an arm than the next step needs -> **hold** (never fail a test for
   lack of traffic): ``min_guardrail_samples`` to widen the test to the next stage,
   ``min_samples_per_arm`` to promote;
4. less time since the start than ``min_dwell_hours`` for the next stage -> **hold**;
5. the next stage's bar: the first step needs the challenger *stable* (not significantly
   worse: already true here), later steps *positive* (accuracy above the champion's), the
   final step (100 %) a *passed* test (significantly better and relative improvement
   >= ``min_improvement``) -> **expand** / **promote** (or **await_approval** first when
   ``require_approval``); otherwise **hold** as inconclusive.

Two exits keep a test from holding the model's only test slot for long:

- **decisive** (before 3.-5., from ``min_guardrail_samples`` per arm): even the lower end of
  the anytime-valid interval beats the champion by ``min_improvement`` (relative) ->
  **promote** at once. After a change that broke the champion, the better model then serves
  within hours, not after a week of stages; the interval is valid at every look, so an A/A
  test passes this bar less often than it passes the final stage's (``bench/abtest.py``);
- **inconclusive** after ``max_duration_hours`` since the start (a test that has not passed,
  of either policy, whatever step it would take next) -> **rollback**: the champion stays,
  the challenger goes, and the next blessed candidate can be tested.

``replaces`` is the deployer's rule for letting a clearly better waiting candidate take a
running test's place (``relearn.abtest.replace``).

Bandit policy: the challenger's share is P(challenger better) under Beta posteriors
(Thompson sampling), kept within [``bandit_floor``, 1 - ``bandit_floor``], so traffic moves to
the better arm while the test runs. It stops by the same anytime-valid rules: rollback on the
guardrails or when significantly worse, promotion when passed (significantly better by
``min_improvement``, enough samples, ``min_dwell_hours[-1]`` since the start). The posterior
probability alone is not used to stop: looked at hourly, it would end an A/A test early often.
Until ``min_guardrail_samples`` per arm the share stays at most ``stages[0]``. Shares go down as
well as up, so (unlike the staged policy) a unit may change arms during a bandit test.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relearn.abtest.stats import (
    Comparison,
    Stratum,
    compare_strata,
    mcnemar_bound,
    probability_challenger_better,
)
from relearn.gates import TOLERANCE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from relearn.abtest.arms import ArmStats
    from relearn.config import ABTestConfig, DriftConfig

HOLD, EXPAND, PROMOTE, ROLLBACK = "hold", "expand", "promote", "rollback"
REBALANCE, AWAIT_APPROVAL = "rebalance", "await_approval"


@dataclass(frozen=True)
class TestState:
    """What the policy needs to know about the test itself."""

    test_id: str
    stage_index: int
    traffic_percent: int
    started_at: datetime
    approval: str | None = None
    # Hours the test spent paused since its start: no traffic, no evidence, so they count
    # neither towards a stage's dwell nor towards max_duration_hours.
    paused_hours: float = 0.0


@dataclass(frozen=True)
class Decision:
    action: str
    traffic: int
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    stage_index: int | None = None


def decide(
    test: TestState,
    champion: ArmStats,
    challenger: ArmStats,
    cfg: ABTestConfig,
    now: datetime,
    strata: list[Stratum] | None = None,
) -> Decision:
    """The next action for ``test`` at ``now`` (see the module doc).

    ``champion`` / ``challenger`` are the totals since the start (samples, guardrails);
    ``strata`` the labelled counts per period of constant split, on which the accuracies are
    compared (default: one stratum of the totals).
    """
    comparison = compare_strata(
        strata
        or [Stratum(champion.labelled, champion.correct, challenger.labelled, challenger.correct)],
        alpha=cfg.alpha,
    )
    numbers = {
        "champion": champion.to_dict(),
        "challenger": challenger.to_dict(),
        "comparison": comparison.to_dict(),
        "hours_running": (now - test.started_at).total_seconds() / 3600 - test.paused_hours,
    }

    def decision(action: str, traffic: int, reason: str, stage: int | None = None) -> Decision:
        return Decision(action, traffic, reason, numbers, stage)

    breach = guardrail_breach(champion, challenger, cfg)
    if breach:
        return decision(ROLLBACK, 0, f"guardrail: {breach}")
    if comparison.significantly_worse:
        return decision(ROLLBACK, 0, f"significantly worse: {_interval(comparison)}")
    if test.approval == "rejected":
        return decision(ROLLBACK, 0, "promotion rejected by a human")
    if decisive(comparison, champion, challenger, cfg):
        return _pass(test, cfg, numbers, "decisive", comparison, len(cfg.stages) - 1)
    if cfg.policy == "bandit":
        verdict = _bandit(test, champion, challenger, cfg, now, numbers, comparison)
    else:
        verdict = _staged(test, champion, challenger, cfg, numbers, comparison)
    hours = numbers["hours_running"]
    if verdict.action in (HOLD, REBALANCE, EXPAND) and hours >= cfg.max_duration_hours:
        return decision(
            ROLLBACK,
            0,
            f"inconclusive after {hours:.0f} h (max_duration_hours {cfg.max_duration_hours:g}): "
            f"{verdict.reason}",
        )
    return verdict


def start_stage(cfg: ABTestConfig, *, after_decay: bool) -> int:
    """The stage a new test starts at: the first; for a candidate of a decay retraining, the
    largest stage below 100 % at most ``decay_start_percent``. The bandit policy always starts
    at the first: it holds an unproven challenger there until the guardrails can see it."""
    if not after_decay or cfg.policy == "bandit":
        return 0
    eligible = [i for i, share in enumerate(cfg.stages[:-1]) if share <= cfg.decay_start_percent]
    return max(eligible, default=0)


def offline_promotion(
    holdout: Mapping[str, Any] | None,
    champion_holdout: Mapping[str, Any] | None,
    cfg: ABTestConfig,
    min_gain: float,
) -> str | None:
    """Why a decay retraining's candidate of today's champion is promoted without a test, or
    None: its gate's holdout (``classification_metrics`` of it and of the champion on the
    same rows since the decline) shows it ``min_gain`` more accurate, and McNemar's test
    (``stats.mcnemar_bound``) significant at ``offline_significance``. A live test would
    only gather the same kind of evidence an outcome delay later. Never with
    ``require_approval`` (a person decides) nor under the bandit policy."""
    if not cfg.offline_significance or cfg.require_approval or cfg.policy == "bandit":
        return None
    if not holdout or not champion_holdout or not holdout.get("n"):
        return None
    rows, accuracy = int(holdout["n"]), float(holdout["accuracy"])
    champion = float(champion_holdout["accuracy"])
    if accuracy - champion < min_gain - TOLERANCE:
        return None
    pvalue = mcnemar_bound(rows, accuracy, champion)
    if pvalue >= cfg.offline_significance:
        return None
    return (
        f"decisive offline: holdout accuracy {accuracy:.3f} vs the decayed champion's "
        f"{champion:.3f} on {rows} rows since the decline (McNemar p <= {pvalue:.2g}, "
        f"offline_significance {cfg.offline_significance:g})"
    )


def offline_evidence_fresh(age: timedelta, drift: DriftConfig) -> bool:
    """Whether a decay candidate's holdout proof (its window ended ``age`` ago) may still
    promote it without a test: at most a cooldown plus the outcome delay old. A candidate
    that waited longer behind another test is tested: the traffic may have moved on."""
    return age <= timedelta(hours=drift.cooldown_hours + drift.outcome_delay_hours)


def replaces(running_gain: float | None, waiting_gain: float | None, margin: float) -> bool:
    """A waiting candidate takes a running test's place when its holdout gain over the
    champion beats the running challenger's by ``margin``. A challenger whose gain is unknown
    (a version registered by hand, not by a retraining run) is someone's choice: kept."""
    if waiting_gain is None or running_gain is None:
        return False
    return waiting_gain >= running_gain + margin - TOLERANCE


def decisive(
    comparison: Comparison, champion: ArmStats, challenger: ArmStats, cfg: ABTestConfig
) -> bool:
    """Even the interval's lower end beats the champion by ``min_improvement`` (relative), on
    at least ``min_guardrail_samples`` labelled rows per arm (so the guardrails saw it)."""
    if min(champion.labelled, challenger.labelled) < cfg.min_guardrail_samples:
        return False
    return comparison.low > 0 and comparison.low >= cfg.min_improvement * (champion.accuracy or 0.0)


def _staged(
    test: TestState,
    champion: ArmStats,
    challenger: ArmStats,
    cfg: ABTestConfig,
    numbers: dict[str, Any],
    comparison: Comparison,
) -> Decision:
    """The staged policy's next step once no rollback or decisive win applies (3.-5.)."""

    def decision(action: str, traffic: int, reason: str, stage: int | None = None) -> Decision:
        return Decision(action, traffic, reason, numbers, stage)

    following = test.stage_index + 1
    if following >= len(cfg.stages):
        return decision(HOLD, test.traffic_percent, "already at the last stage")
    # Evidence sized to the step: the guardrails' sample to widen the test, the full sample to
    # promote (at 60 outcomes/h, 1,000 rows at 10 % would take a week before the first step).
    needed = (
        cfg.min_samples_per_arm if following == len(cfg.stages) - 1 else cfg.min_guardrail_samples
    )
    low = min(champion.labelled, challenger.labelled)
    if low < needed:
        return decision(
            HOLD, test.traffic_percent, f"{low} labelled rows in the smaller arm (< {needed})"
        )
    hours = numbers["hours_running"]
    dwell = cfg.min_dwell_hours[test.stage_index]
    if hours < dwell:
        return decision(
            HOLD,
            test.traffic_percent,
            f"{hours:.1f} h since start (< {dwell:g} h for the next stage)",
        )
    target = cfg.stages[following]
    if following == len(cfg.stages) - 1:
        if not comparison.significantly_better or comparison.relative < cfg.min_improvement:
            return decision(
                HOLD,
                test.traffic_percent,
                f"not passed yet: {_interval(comparison)}, improvement "
                f"{comparison.relative:+.1%} (needs >= {cfg.min_improvement:.0%} and "
                "significance)",
            )
        return _pass(test, cfg, numbers, "passed", comparison, following)
    if following >= 2 and comparison.difference <= 0:
        return decision(HOLD, test.traffic_percent, f"not positive yet: {_interval(comparison)}")
    bar = "stable" if following == 1 else "positive"
    return decision(EXPAND, target, f"{bar}: {_interval(comparison)}", following)


def _pass(
    test: TestState,
    cfg: ABTestConfig,
    numbers: dict[str, Any],
    bar: str,
    comparison: Comparison,
    stage: int | None,
) -> Decision:
    """Promote a challenger that passed ``bar``, or ask a human first (``require_approval``)."""
    if cfg.require_approval and test.approval != "approved":
        return Decision(AWAIT_APPROVAL, test.traffic_percent, f"{bar}: awaiting approval", numbers)
    return Decision(PROMOTE, 100, f"{bar}: {_interval(comparison)}", numbers, stage)


def guardrail_breach(champion: ArmStats, challenger: ArmStats, cfg: ABTestConfig) -> str | None:
    """The first guardrail the challenger breaks, or None."""
    if min(champion.labelled, challenger.labelled) < cfg.min_guardrail_samples:
        return None
    limit = (champion.latency_p95_ms or 0) * (1 + cfg.max_latency_increase) + cfg.latency_slack_ms
    latencies = (challenger.latency_p95_ms, champion.latency_p95_ms)
    if None not in latencies and challenger.latency_p95_ms > limit:
        return (
            f"p95 latency {challenger.latency_p95_ms:.2f} ms > {limit:.2f} ms "
            f"(champion {champion.latency_p95_ms:.2f} ms + {cfg.max_latency_increase:.0%} "
            f"+ {cfg.latency_slack_ms:g} ms)"
        )
    increase = challenger.error_rate - champion.error_rate
    if increase > cfg.max_error_rate_increase:
        return (
            f"error rate {challenger.error_rate:.3f} is {increase:.3f} above the champion's "
            f"(limit {cfg.max_error_rate_increase:.3f})"
        )
    if cfg.min_accuracy is not None and challenger.accuracy < cfg.min_accuracy:
        return f"accuracy {challenger.accuracy:.3f} < {cfg.min_accuracy:.3f}"
    if cfg.min_f1 is not None and (challenger.f1_macro or 0) < cfg.min_f1:
        return f"macro F1 {challenger.f1_macro or 0:.3f} < {cfg.min_f1:.3f}"
    return None


def _interval(comparison: Any) -> str:
    return (
        f"accuracy difference {comparison.difference:+.4f} "
        f"(anytime-valid interval [{comparison.low:+.4f}, {comparison.high:+.4f}])"
    )


def _bandit(
    test: TestState,
    champion: ArmStats,
    challenger: ArmStats,
    cfg: ABTestConfig,
    now: datetime,
    numbers: dict[str, Any],
    comparison: Comparison,
) -> Decision:
    seed = zlib.crc32(f"{test.test_id}@{now.isoformat()}".encode())
    better = probability_challenger_better(
        champion.correct, champion.labelled, challenger.correct, challenger.labelled, seed=seed
    )
    numbers["probability_challenger_better"] = better
    enough = min(champion.labelled, challenger.labelled) >= cfg.min_samples_per_arm
    hours = numbers["hours_running"]
    if (
        enough
        and comparison.significantly_better
        and comparison.relative >= cfg.min_improvement
        and hours >= cfg.min_dwell_hours[-1]
    ):
        return _pass(test, cfg, numbers, "passed", comparison, None)
    floor = max(1, round(cfg.bandit_floor * 100))
    share = min(100 - floor, max(floor, round(better * 100)))
    if min(champion.labelled, challenger.labelled) < cfg.min_guardrail_samples:
        # Until the guardrails can see it, an unproven model gets no more than the first stage.
        share = min(share, cfg.stages[0])
    action = HOLD if share == test.traffic_percent else REBALANCE
    return Decision(action, share, f"Thompson share: P(challenger better) = {better:.3f}", numbers)
