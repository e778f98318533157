"""A/B statistics, the stage policy, decision quality on replays, and the sticky router."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.metrics import f1_score

from relearn.abtest import policy
from relearn.abtest.arms import ArmStats
from relearn.abtest.simulate import decision_quality
from relearn.abtest.stats import (
    Stratum,
    cluster_variance,
    compare_strata,
    probability_challenger_better,
)
from relearn.config import ABTestConfig
from relearn.evaluation import macro_f1_of_counts
from relearn.serving.router import CHALLENGER_ARM, Split, SplitRouter, choose_arm

START = datetime(2026, 1, 1, tzinfo=UTC)
CFG = ABTestConfig()


def compare_accuracy(a_correct: int, a_n: int, b_correct: int, b_n: int, *, alpha: float):
    """One period's comparison (champion a, challenger b)."""
    return compare_strata([Stratum(a_n, a_correct, b_n, b_correct)], alpha=alpha)


def arm(name: str, labelled: int, accuracy: float, **extra) -> ArmStats:
    values = {"mean_confidence": 0.8, "latency_p95_ms": 1.0, "f1_macro": accuracy} | extra
    return ArmStats(name, "1", labelled, labelled, round(labelled * accuracy), **values)


def state(stage: int = 0, traffic: int = 10, **extra) -> policy.TestState:
    return policy.TestState("t", stage, traffic, START, **extra)


# --- statistics -----------------------------------------------------------------------------


def test_interval_is_centred_on_the_difference_and_shrinks_with_samples():
    small = compare_accuracy(800, 1000, 820, 1000, alpha=0.05)
    large = compare_accuracy(8000, 10000, 8200, 10000, alpha=0.05)
    for result in (small, large):
        assert result.difference == pytest.approx(0.02)
        assert result.low < result.difference < result.high
    assert large.high - large.low < (small.high - small.low) / 2
    assert large.significantly_better and not small.significantly_better
    assert large.relative == pytest.approx(0.025)


def test_hourly_looks_keep_the_false_positive_rate_below_alpha():
    """200 A/A tests looked at 300 times each: the anytime-valid interval excludes 0 in at
    most alpha of them; the fixed-horizon z-test, looked at the same way, far more often."""
    rng = np.random.default_rng(5)
    sequential = naive = 0
    for _ in range(200):
        a = rng.binomial(1, 0.8, 30_000).cumsum()
        b = rng.binomial(1, 0.8, 30_000).cumsum()
        looks = np.arange(100, 30_001, 100)
        flagged = naive_flagged = False
        for n in looks:
            result = compare_accuracy(int(a[n - 1]), n, int(b[n - 1]), n, alpha=0.05)
            flagged |= result.low > 0 or result.high < 0
            se = np.sqrt(2 * 0.8 * 0.2 / n)
            naive_flagged |= abs(result.difference) / se > 1.96
        sequential += flagged
        naive += naive_flagged
    assert sequential / 200 <= 0.05
    assert naive / 200 > 0.2


def test_probability_challenger_better_is_seeded_and_sensible():
    assert probability_challenger_better(800, 1000, 900, 1000, seed=1) > 0.99
    assert probability_challenger_better(900, 1000, 800, 1000, seed=1) < 0.01
    once = probability_challenger_better(80, 100, 82, 100, seed=3)
    assert once == probability_challenger_better(80, 100, 82, 100, seed=3)


# --- the staged policy ----------------------------------------------------------------------


def test_too_few_samples_hold_instead_of_failing():
    # Widening needs the guardrails' sample, promoting min_samples_per_arm.
    for stage, traffic, labelled in ((0, 10, 60), (2, 50, 400)):
        decision = policy.decide(
            state(stage, traffic),
            arm("champion", 5000, 0.8),
            arm("challenger", labelled, 0.8),
            CFG,
            START + timedelta(hours=80),
        )
        assert decision.action == policy.HOLD and "labelled rows" in decision.reason
        assert decision.traffic == traffic


def test_the_first_step_needs_the_guardrail_sample_only():
    # At 60 outcomes/h a 10 % arm has ~110 after a day: enough to widen, not a week's wait.
    decision = policy.decide(
        state(),
        arm("champion", 1000, 0.8),
        arm("challenger", 110, 0.8),
        CFG,
        START + timedelta(hours=25),
    )
    assert (decision.action, decision.traffic) == (policy.EXPAND, 25)


def test_a_decisive_win_promotes_at_once_and_a_narrow_one_does_not():
    champion = arm("champion", 1000, 0.45)
    early = START + timedelta(hours=5)
    decisive = policy.decide(state(), champion, arm("challenger", 150, 0.78), CFG, early)
    assert (decisive.action, decisive.traffic) == (policy.PROMOTE, 100)
    assert decisive.reason.startswith("decisive") and decisive.stage_index == 3
    narrow = policy.decide(state(), champion, arm("challenger", 150, 0.55), CFG, early)
    assert narrow.action == policy.HOLD  # better, but its interval still reaches below +2 %
    asked = policy.decide(
        state(),
        champion,
        arm("challenger", 150, 0.78),
        CFG.model_copy(update={"require_approval": True}),
        early,
    )
    assert asked.action == policy.AWAIT_APPROVAL


@pytest.mark.parametrize("name", ["staged", "bandit"])
def test_an_inconclusive_test_ends_after_max_duration(name):
    cfg = CFG.model_copy(update={"policy": name, "max_duration_hours": 100})
    champion, same = arm("champion", 900, 0.8), arm("challenger", 300, 0.8)
    before = policy.decide(state(2, 50), champion, same, cfg, START + timedelta(hours=99))
    assert before.action in (policy.HOLD, policy.REBALANCE)
    after = policy.decide(state(2, 50), champion, same, cfg, START + timedelta(hours=100))
    assert (after.action, after.traffic) == (policy.ROLLBACK, 0)
    assert after.reason.startswith("inconclusive after 100 h (max_duration_hours 100)")


def test_stages_need_their_dwell_time_and_evidence():
    champion, equal = arm("champion", 20_000, 0.80), arm("challenger", 3000, 0.80)
    early = policy.decide(state(), champion, equal, CFG, START + timedelta(hours=10))
    assert early.action == policy.HOLD and "since start" in early.reason
    stable = policy.decide(state(), champion, equal, CFG, START + timedelta(hours=25))
    assert (stable.action, stable.traffic, stable.stage_index) == (policy.EXPAND, 25, 1)
    flat = policy.decide(
        state(1, 25), champion, arm("challenger", 3000, 0.79), CFG, START + timedelta(hours=49)
    )
    assert flat.action == policy.HOLD and "not positive" in flat.reason
    positive = policy.decide(
        state(1, 25), champion, arm("challenger", 3000, 0.81), CFG, START + timedelta(hours=49)
    )
    assert (positive.action, positive.traffic) == (policy.EXPAND, 50)
    inconclusive = policy.decide(
        state(2, 50), champion, arm("challenger", 3000, 0.81), CFG, START + timedelta(hours=73)
    )
    assert inconclusive.action == policy.HOLD and "not passed" in inconclusive.reason
    passed = policy.decide(
        state(2, 50), champion, arm("challenger", 8000, 0.84), CFG, START + timedelta(hours=73)
    )
    assert (passed.action, passed.traffic) == (policy.PROMOTE, 100)
    assert passed.numbers["comparison"]["low"] > 0


def test_approval_comes_before_promotion_and_a_rejection_rolls_back():
    cfg = CFG.model_copy(update={"require_approval": True})
    champion, better = arm("champion", 20_000, 0.80), arm("challenger", 8000, 0.84)
    later = START + timedelta(hours=73)
    assert policy.decide(state(2, 50), champion, better, cfg, later).action == policy.AWAIT_APPROVAL
    approved = policy.decide(state(2, 50, approval="approved"), champion, better, cfg, later)
    assert approved.action == policy.PROMOTE
    rejected = policy.decide(state(2, 50, approval="rejected"), champion, better, cfg, later)
    assert rejected.action == policy.ROLLBACK and "rejected" in rejected.reason


def test_significantly_worse_rolls_back_at_any_stage():
    decision = policy.decide(
        state(),
        arm("champion", 20_000, 0.80),
        arm("challenger", 4000, 0.76),
        CFG,
        START + timedelta(hours=2),
    )
    assert (decision.action, decision.traffic) == (policy.ROLLBACK, 0)
    assert "significantly worse" in decision.reason


@pytest.mark.parametrize(
    ("challenger", "cfg", "words"),
    [
        (arm("challenger", 200, 0.8, latency_p95_ms=9.0), CFG, "p95 latency"),
        (arm("challenger", 200, 0.65), CFG, "error rate"),
        (arm("challenger", 200, 0.78), CFG.model_copy(update={"min_f1": 0.9}), "macro F1"),
        (arm("challenger", 200, 0.78), CFG.model_copy(update={"min_accuracy": 0.9}), "accuracy"),
    ],
)
def test_guardrails_roll_back_before_significance(challenger, cfg, words):
    decision = policy.decide(
        state(), arm("champion", 5000, 0.8), challenger, cfg, START + timedelta(hours=1)
    )
    assert decision.action == policy.ROLLBACK and decision.reason.startswith("guardrail")
    assert words in decision.reason


def test_guardrails_wait_for_their_minimum_samples():
    slow = arm("challenger", 50, 0.8, latency_p95_ms=90.0)
    decision = policy.decide(
        state(), arm("champion", 5000, 0.8), slow, CFG, START + timedelta(hours=1)
    )
    assert decision.action == policy.HOLD


# --- the bandit policy ----------------------------------------------------------------------


def test_bandit_shares_follow_the_posterior_within_the_floor():
    cfg = CFG.model_copy(update={"policy": "bandit"})
    now = START + timedelta(hours=5)
    even = policy.decide(
        state(traffic=10), arm("champion", 300, 0.8), arm("challenger", 300, 0.8), cfg, now
    )
    assert even.action == policy.REBALANCE and 25 <= even.traffic <= 75
    ahead = policy.decide(
        state(traffic=50), arm("champion", 500, 0.78), arm("challenger", 500, 0.86), cfg, now
    )
    assert ahead.traffic == 99  # the champion keeps its 1 % floor
    promoted = policy.decide(
        state(traffic=99),
        arm("champion", 2000, 0.78),
        arm("challenger", 9000, 0.86),
        cfg,
        START + timedelta(hours=80),
    )
    assert promoted.action == policy.PROMOTE


# --- decision quality on replays (the bench runs 200 per row) -------------------------------


def test_decision_quality_on_replayed_tests():
    table = decision_quality(CFG, tests=60, seed=7)
    assert table[0.0]["promoted"] <= 0.05  # A/A
    assert table[-0.03]["promoted"] == 0 and table[-0.03]["rolled_back"] >= 0.9
    assert table[0.05]["promoted"] >= 0.8


# --- the router -----------------------------------------------------------------------------


def test_assignment_is_sticky_as_traffic_grows_and_matches_the_share():
    units = [f"customer-{i}" for i in range(20_000)]
    at10 = {u for u in units if choose_arm(Split("t1", 10), u) == CHALLENGER_ARM}
    at25 = {u for u in units if choose_arm(Split("t1", 25), u) == CHALLENGER_ARM}
    assert at10 <= at25
    assert len(at10) / len(units) == pytest.approx(0.10, abs=0.01)
    assert len(at25) / len(units) == pytest.approx(0.25, abs=0.01)
    other_test = {u for u in units if choose_arm(Split("t2", 10), u) == CHALLENGER_ARM}
    assert len(other_test & at10) < len(at10) / 2  # a new test draws new units
    assert choose_arm(Split("t1", 100), None) == "champion"
    assert choose_arm(None, "customer-1") == "champion"


def test_router_reads_the_split_at_most_once_per_ttl():
    reads, clock = [], [0.0]

    def source() -> Split:
        reads.append(clock[0])
        return Split("t1", 50)

    router = SplitRouter(source, ttl=5.0, clock=lambda: clock[0])
    for step in range(12):
        clock[0] = step
        router.arms(["a", "b"])
    assert reads == [0.0, 5.0, 10.0]


def test_macro_f1_from_sql_counts_matches_sklearn():
    counts = {("yes", "yes"): 8, ("yes", "no"): 2, ("no", "no"): 5, ("no", "yes"): 1}
    predicted = [p for (p, _), n in counts.items() for _ in range(n)]
    actual = [a for (_, a), n in counts.items() for _ in range(n)]
    expected = f1_score(actual, predicted, average="macro", labels=["no", "yes"])
    assert macro_f1_of_counts(counts, ["no", "yes"]) == pytest.approx(expected)


def test_strata_keep_a_time_trend_from_faking_a_difference():
    """Both arms equal in every period while accuracy falls and the challenger's share grows:
    pooled counts call the challenger much worse, the stratified comparison does not."""
    periods = [Stratum(9000, 8100, 1000, 900), Stratum(5000, 3000, 5000, 3000)]
    pooled = compare_accuracy(11_100, 14_000, 3_900, 6_000, alpha=0.05)
    assert pooled.significantly_worse
    stratified = compare_strata(periods, alpha=0.05)
    assert stratified.difference == pytest.approx(0.0)
    assert not stratified.significantly_worse and not stratified.significantly_better


def test_units_seen_many_times_widen_the_interval():
    """A/A with 60 units per arm, each seen 100 times with its own accuracy (Beta(8, 2)): the
    binomial variance treats 6,000 rows as independent and flags many equal arms; the
    cluster-robust variance over units keeps the error rate at alpha."""
    rng = np.random.default_rng(11)

    def arm_counts() -> tuple[int, int, float]:
        n_u = np.full(60, 100)
        c_u = rng.binomial(n_u, rng.beta(8, 2, 60))
        n, c = int(n_u.sum()), int(c_u.sum())
        sums = {"sum_n2": float((n_u**2).sum()), "sum_c2": float((c_u**2).sum())}
        variance = cluster_variance(n, c, units=60, sum_cn=float((c_u * n_u).sum()), **sums)
        return n, c, variance

    naive = robust = 0
    for _ in range(200):
        (a_n, a_c, a_var), (b_n, b_c, b_var) = arm_counts(), arm_counts()
        plain = compare_strata([Stratum(a_n, a_c, b_n, b_c)], alpha=0.05)
        clustered = compare_strata([Stratum(a_n, a_c, b_n, b_c, a_var, b_var)], alpha=0.05)
        naive += plain.significantly_better or plain.significantly_worse
        robust += clustered.significantly_better or clustered.significantly_worse
    assert robust / 200 <= 0.05
    assert naive / 200 > 0.15, naive


def test_a_max_duration_shorter_than_the_last_dwell_is_refused():
    with pytest.raises(ValidationError, match=r"max_duration_hours \(48\) must be at least"):
        ABTestConfig(max_duration_hours=48)
    assert ABTestConfig(max_duration_hours=72).max_duration_hours == 72


def test_a_decay_candidate_starts_at_the_largest_stage_within_decay_start_percent():
    default = ABTestConfig()  # stages 10, 25, 50, 100; decay_start_percent 50
    assert policy.start_stage(default, after_decay=False) == 0
    assert default.stages[policy.start_stage(default, after_decay=True)] == 50
    # Never the last stage (that is promotion), never below the first.
    narrow = ABTestConfig(stages=[20, 100], min_dwell_hours=[24], decay_start_percent=10)
    assert policy.start_stage(narrow, after_decay=True) == 0
    wide = ABTestConfig(stages=[5, 100], min_dwell_hours=[24], decay_start_percent=99)
    assert policy.start_stage(wide, after_decay=True) == 0
    with pytest.raises(ValidationError):
        ABTestConfig(decay_start_percent=100)


def test_the_bandit_starts_every_test_at_the_first_stage():
    # It holds an unproven challenger at the first stage until the guardrails can see it.
    bandit = ABTestConfig(policy="bandit")
    assert policy.start_stage(bandit, after_decay=True) == 0


def test_only_a_significant_holdout_gain_promotes_a_decay_candidate_without_a_test():
    cfg = ABTestConfig()  # offline_significance 0.001

    def offline(accuracy: float, champion: float, rows: int, config=cfg):
        return policy.offline_promotion(
            {"accuracy": accuracy, "n": rows}, {"accuracy": champion, "n": rows}, config, 0.02
        )

    assert offline(0.78, 0.45, 100).startswith("decisive offline: holdout accuracy 0.780")
    assert offline(0.56, 0.50, 100) is None  # +6 points on 100 rows: p ~ 0.3
    assert offline(0.51, 0.50, 100_000) is None  # significant, but below min_improvement
    assert offline(0.45, 0.45, 1000) is None  # an A/A candidate
    for off in (
        ABTestConfig(offline_significance=0),
        ABTestConfig(require_approval=True),
        ABTestConfig(policy="bandit"),
    ):
        assert offline(0.78, 0.45, 100, off) is None
    assert policy.offline_promotion(None, {"accuracy": 0.4}, cfg, 0.02) is None
    with pytest.raises(ValidationError):
        ABTestConfig(offline_significance=0.5)
