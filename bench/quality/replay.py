"""One policy over one scenario's traffic, hour by hour, through the core's pure steps.

Relearn's daily loop is replayed with the functions the real steps call: the window's error /
replay / holdout selection (``relearn.store.prediction_log`` semantics), ``build_dataset``,
``TabularClassifier.fit`` from the champion (or from scratch), the gates
(``relearn.gates.decide``), the drift monitor's performance check
(``relearn.drift.performance.check_performance`` over ``performance_window_hours``, hourly,
with its cooldown; a decayed check's comeback of a previous champion,
``relearn.drift.comeback.choose``, when no test is live or pending; else its retraining
options from ``relearn.drift.retrain``: the window since the decline, all errors, the decay
learning rate, waiting for a full holdout) and
the A/B policy (``relearn.abtest.policy.decide``, hourly, strata per traffic period:
decisive promotion, ``max_duration_hours``). Candidates are handed over as
``relearn.retraining.handover`` does: tested at once when no test runs, else a drift-triggered
one waits as a pending test (and replaces the running challenger when
``relearn.abtest.policy.replaces`` says so, as the deployer does) and a scheduled one is
dropped. Postgres, MLflow and GX are left out: they store and validate, they do not decide.
The prediction log and models are in ``quality.log``, one reinforcement run in
``quality.training``.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from quality.log import Log, Model, Predictions
from quality.traffic import START
from quality.training import fit_all, retrain
from relearn.abtest import policy
from relearn.abtest.arms import ArmStats
from relearn.abtest.stats import Stratum
from relearn.drift.comeback import Comeback, choose
from relearn.drift.performance import PerformanceCheck, check_performance, performance_window_hours
from relearn.drift.retrain import labels_wanted, window_overrides
from relearn.retraining.options import ReinforceOptions

if TYPE_CHECKING:
    import pandas as pd

    from quality.traffic import Day
    from relearn.config import ModelConfig

_logger = logging.getLogger("quality.replay")


@dataclass(frozen=True)
class PolicySpec:
    """``kind``: none | relearn | naive | oracle; relearn's knobs otherwise."""

    name: str
    kind: str
    fine_tune: bool = True
    ab_policy: str = "staged"
    drift_retrain: bool = True
    comeback: bool = True  # off: drift.comeback_versions = 0
    offline: bool = True  # off: abtest.offline_significance = 0


@dataclass
class Trace:
    """Per hour: (champion id, challenger id or None, challenger share); events."""

    hours: list[tuple[int, int | None, float]] = field(default_factory=list)
    models: dict[int, Model] = field(default_factory=dict)
    promotions: list[tuple[int, int, int]] = field(default_factory=list)  # hour, old, new
    rollbacks: int = 0
    retrains: int = 0
    blessed: int = 0


def _arm(name: str, labelled: int, correct: int) -> ArmStats:
    return ArmStats(name, None, labelled, labelled, correct, None, None, None)


@dataclass
class _Test:
    state: policy.TestState
    challenger: Model
    started: int
    periods: list[list[int]] = field(default_factory=lambda: [[0, 0, 0, 0]])
    period_starts: list[int] = field(default_factory=list)


def _ab_step(
    cfg: ModelConfig, test: _Test, log: Log, champion: Model, hour: int
) -> policy.Decision:
    """Strata per traffic period from the outcomes in by ``hour``; the policy's decision."""
    periods = []
    for since, until in itertools.pairwise([*test.period_starts, hour]):
        counts = [0, 0, 0, 0]
        for day, mask in log.rows(since, until, hour):
            served, right = log.served[day][mask], log.correct[day][mask]
            for arm, model in enumerate((champion, test.challenger)):
                mine = served == model.id
                counts[2 * arm] += int(mine.sum())
                counts[2 * arm + 1] += int((mine & right).sum())
        periods.append(counts)
    totals = [sum(c) for c in zip(*periods, strict=True)]
    return policy.decide(
        test.state,
        _arm("champion", totals[0], totals[1]),
        _arm("challenger", totals[2], totals[3]),
        cfg.abtest,
        START + timedelta(hours=hour),
        [Stratum(*p) for p in periods],
    )


def _performance(cfg: ModelConfig, log: Log, champion: Model, hour: int) -> PerformanceCheck:
    """The drift monitor's performance check on the champion's performance window."""
    predicted, actual, at = [], [], []
    hours = performance_window_hours(cfg.drift.window_hours, cfg.drift.outcome_delay_hours)
    for day, mask in log.rows(hour - hours, hour, hour):
        mine = mask & (log.served[day] == champion.id)
        predicted += log.predicted[day][mine].tolist()
        actual += log.days[day].labels[mine].tolist()
        at += [START + timedelta(hours=float(h)) for h in log.days[day].hours[mine]]
    return check_performance(
        predicted,
        actual,
        champion.reference_accuracy,
        min_rows=cfg.drift.min_labelled_rows,
        max_drop=cfg.drift.max_accuracy_drop,
        predicted_at=at,
        until=START + timedelta(hours=hour),
    )


def _comeback(
    cfg: ModelConfig,
    log: Log,
    preds: Predictions,
    champion: Model,
    check: PerformanceCheck,
    hour: int,
    trace: Trace,
) -> tuple[Model, Comeback] | None:
    """``relearn.drift.comeback.choose`` over the previous champions (newest first, at most
    ``drift.comeback_versions``) on the champion's labelled rows since the decline."""
    limit = cfg.drift.comeback_versions
    previous: list[int] = []
    for _, old, new in reversed(trace.promotions):
        for model_id in (new, old):
            if model_id != champion.id and model_id not in previous:
                previous.append(model_id)
    if not limit or not previous:
        return None
    since = hour - (check.changed_hours_ago or 0)
    truth, rows = [], {model_id: [] for model_id in [champion.id, *previous[:limit]]}
    for day, mask in log.rows(since, hour, hour):
        mine = mask & (log.served[day] == champion.id)
        truth += log.days[day].labels[mine].tolist()
        for model_id in rows:
            rows[model_id].append(preds.proba(trace.models[model_id], day)[mine])
    if not truth:
        return None
    probabilities = {str(k): np.concatenate(v) for k, v in rows.items()}
    found = choose(cfg, truth, probabilities.pop(str(champion.id)), probabilities)
    return None if found is None else (trace.models[int(found.version)], found)


def _start(cfg: ModelConfig, challenger: Model, hour: int, *, after_decay: bool) -> _Test:
    """A test of ``challenger`` from ``hour``, at the stage the deployer starts it at
    (``policy.start_stage``: higher for a decay retraining's candidate)."""
    stage = policy.start_stage(cfg.abtest, after_decay=after_decay)
    state = policy.TestState(
        test_id=f"bench-{challenger.id}",
        stage_index=stage,
        traffic_percent=cfg.abtest.stages[stage],
        started_at=START + timedelta(hours=hour),
    )
    return _Test(state, challenger, hour, period_starts=[hour])


def _oracle_rows(log: Log, days: list[Day], day: int, hour: int, share: float) -> pd.DataFrame:
    """Every labelled row of the regime serving today (the changed one), the latest 20,000."""
    rows = log.labelled(0, hour, hour)
    if rows.empty or share < 0.5:
        return rows.iloc[0:0]
    return rows[rows["after"]].tail(20_000)


def run_policy(
    cfg: ModelConfig,
    spec: PolicySpec,
    days: list[Day],
    delay: float,
    v1: Model,
    preds: Predictions,
    share: list[float],
) -> Trace:
    """Replay ``spec`` hour by hour over ``days``; what served each hour, and its events."""
    # Configured as the README tells users: drift.outcome_delay_hours = the outcome delay.
    cfg = cfg.model_copy(
        update={
            "abtest": cfg.abtest.model_copy(
                update={
                    "policy": spec.ab_policy,
                    "offline_significance": cfg.abtest.offline_significance if spec.offline else 0,
                }
            ),
            "drift": cfg.drift.model_copy(
                update={
                    "outcome_delay_hours": delay,
                    "comeback_versions": cfg.drift.comeback_versions if spec.comeback else 0,
                }
            ),
        }
    )
    log = Log(cfg, days, delay)
    trace = Trace(models={v1.id: v1})
    champion, test = v1, None
    waiting: list[Model] = []  # pending tests, oldest first
    last_drift_retrain = -math.inf
    rf, drift = cfg.reinforcement, cfg.drift
    rng = np.random.default_rng(2026)
    units = [rng.random(len(d.labels)) for d in days]

    def candidate(hour: int, options: ReinforceOptions, drift_source: bool) -> None:
        """A blessed candidate is tested at once if the slot is free; else, as the retraining
        hand-over does, a drift-triggered one waits as a pending test and a scheduled one is
        not aliased (dropped)."""
        nonlocal test
        now = START + timedelta(hours=hour)
        since = (options.window_start(now) - START) / timedelta(hours=1)
        _logger.info("%s h%d: retrain on the last %g h", spec.name, hour, hour - since)
        rows = log.labelled(since, hour, hour)
        model, blessed = retrain(cfg, champion, rows, options)
        trace.retrains += 1
        if model is None or not blessed:
            return
        model.trained_hour = hour
        trace.blessed += 1
        trace.models[model.id] = model
        if test is None:
            begin(hour, model, after_decay=drift_source)
        elif drift_source:
            waiting.append(model)

    def promote(hour: int, model: Model) -> None:
        nonlocal champion
        trace.models[model.id] = model
        trace.promotions.append((hour, champion.id, model.id))
        champion = model

    def begin(hour: int, model: Model, *, after_decay: bool) -> None:
        """``deploy.start_test``: a test, or at once the promotion a decay candidate of today's
        champion has proven on its holdout (``policy.offline_promotion``)."""
        nonlocal test
        age = timedelta(hours=hour - (model.trained_hour or hour))
        offline = (
            after_decay
            and model.against == champion.id
            and policy.offline_evidence_fresh(age, cfg.drift)
            and policy.offline_promotion(
                model.holdout, model.champion_holdout, cfg.abtest, cfg.gates.min_improvement
            )
        )
        if offline:
            _logger.info("%s h%d: %s", spec.name, hour, offline)
            promote(hour, model)
            test = None
        else:
            test = _start(cfg, model, hour, after_decay=after_decay)

    for hour in range(len(days) * 24):
        day = hour // 24
        if hour and hour % 24 == 0:
            if spec.kind == "naive":
                rows = log.labelled(hour - rf.lookback_days * 24, hour, hour)
                if len(rows) >= drift.min_labelled_rows:
                    promote(hour, fit_all(cfg, rows))
            elif spec.kind == "oracle":
                rows = _oracle_rows(log, days, day, hour, share[day])
                if share[day] < 0.5 and champion is not v1:
                    promote(hour, v1)
                elif len(rows) >= drift.min_labelled_rows:
                    promote(hour, fit_all(cfg, rows))
            elif spec.kind == "relearn":
                daily = ReinforceOptions.from_config(cfg, fine_tune=spec.fine_tune)
                candidate(hour, daily, drift_source=False)
        if (
            spec.kind == "relearn"
            and spec.drift_retrain
            and not waiting  # the monitor's cooldown: a pending test (a running one does not)
            and hour - last_drift_retrain >= drift.cooldown_hours
            and (check := _performance(cfg, log, champion, hour)).decayed
            and test is None
            and (back := _comeback(cfg, log, preds, champion, check, hour, trace)) is not None
        ):
            # relearn.drift.action.try_comeback: a previous champion is champion again (no
            # test live or pending; it cools down as a retraining does)
            _logger.info("%s h%d: %s", spec.name, hour, back[1].reason)
            last_drift_retrain = hour
            promote(hour, back[0])
        elif (
            spec.kind == "relearn"
            and spec.drift_retrain
            and not waiting
            and hour - last_drift_retrain >= drift.cooldown_hours
            and (check := _performance(cfg, log, champion, hour)).decayed
            and not labels_wanted(cfg, check)
        ):
            last_drift_retrain = hour
            # The drift monitor's retrain (relearn.drift.retrain): fine-tuned as drift.fine_tune
            # says (both off for the "scratch" policy), on the rows since the decline.
            overrides = window_overrides(cfg, check.to_dict())
            overrides["fine_tune"] = spec.fine_tune and overrides["fine_tune"]
            options = ReinforceOptions.from_config(cfg, source="decay_triggered", **overrides)
            candidate(hour, options, drift_source=True)
        if (
            test is not None
            and waiting
            and policy.replaces(test.challenger.gain, waiting[0].gain, cfg.gates.min_improvement)
        ):
            # The deployer's replacement (relearn.abtest.replace): the same rule.
            _logger.info("%s h%d: A/B replaced by a better waiting candidate", spec.name, hour)
            trace.rollbacks += 1
            begin(hour, waiting.pop(0), after_decay=True)
        if test is not None and hour > test.started:
            decision = _ab_step(cfg, test, log, champion, hour)
            if decision.action != policy.HOLD:
                _logger.info(
                    "%s h%d: A/B %s: %s", spec.name, hour, decision.action, decision.reason
                )
            if decision.action == policy.PROMOTE:
                promote(hour, test.challenger)
                test = None
            elif decision.action == policy.ROLLBACK:
                trace.rollbacks += 1
                test = None
            elif decision.action in (policy.EXPAND, policy.REBALANCE):
                stage = decision.stage_index
                test.state = replace(
                    test.state,
                    traffic_percent=decision.traffic,
                    stage_index=test.state.stage_index if stage is None else stage,
                )
                test.period_starts.append(hour)
            if test is None and waiting:
                begin(hour, waiting.pop(0), after_decay=True)
        d = days[day]
        now = np.flatnonzero((d.hours >= hour) & (d.hours < hour + 1))
        share_now = 0.0 if test is None else test.state.traffic_percent / 100
        to_challenger = units[day][now] < share_now
        log.serve(day, now[~to_challenger], champion, preds)
        if test is not None:
            log.serve(day, now[to_challenger], test.challenger, preds)
        trace.hours.append((champion.id, None if test is None else test.challenger.id, share_now))
    return trace
