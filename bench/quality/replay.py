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
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import zlib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quality.traffic import START
from relearn.abtest import policy
from relearn.abtest.arms import ArmStats
from relearn.abtest.stats import Stratum
from relearn.data.dataset import build_dataset
from relearn.drift.comeback import Comeback, choose
from relearn.drift.performance import PerformanceCheck, check_performance, performance_window_hours
from relearn.drift.retrain import labels_wanted, window_overrides
from relearn.evaluation import classification_metrics
from relearn.gates import decide as gate
from relearn.retraining.options import ReinforceOptions
from relearn.training.factory import new_classifier

if TYPE_CHECKING:
    from quality.traffic import Day
    from relearn.config import ModelConfig
    from relearn.training.classifier import TabularClassifier

_ids = itertools.count(1)
_logger = logging.getLogger("quality.replay")


@dataclass
class Model:
    classifier: TabularClassifier
    id: int = field(default_factory=lambda: next(_ids))
    reference_accuracy: float | None = None
    gain: float | None = None  # holdout accuracy over the champion's, as the gate saw it
    holdout: dict | None = None  # the gate's metrics of it and of the champion it was
    champion_holdout: dict | None = None  # trained against (``against``), on its holdout
    against: int | None = None


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


class Predictions:
    """Cached predictions of each model on each day's traffic and evaluation sample."""

    def __init__(self, model_cfg: ModelConfig, days: list[Day]) -> None:
        self.cfg, self.days = model_cfg, days
        self._traffic: dict[tuple[int, int], np.ndarray] = {}
        self._accuracy: dict[tuple[int, int], float] = {}

    def proba(self, model: Model, day: int) -> np.ndarray:
        key = (model.id, day)
        if key not in self._traffic:
            self._traffic[key] = model.classifier.predict_proba(self.days[day].frame)
        return self._traffic[key]

    def accuracy(self, model: Model, day: int) -> float:
        key = (model.id, day)
        if key not in self._accuracy:
            d = self.days[day]
            proba = model.classifier.predict_proba(d.eval_frame)
            predicted = np.asarray(self.cfg.classes, dtype=object)[proba.argmax(axis=1)]
            self._accuracy[key] = float(np.mean(predicted == d.eval_labels))
        return self._accuracy[key]


class Log:
    """The prediction log of one policy: what served each row, with its logged answer."""

    def __init__(self, model_cfg: ModelConfig, days: list[Day], delay: float) -> None:
        self.cfg, self.days, self.delay = model_cfg, days, delay
        self.served: list[np.ndarray] = [np.zeros(len(d.labels), dtype=int) for d in days]
        self.predicted: list[np.ndarray] = [np.empty(len(d.labels), dtype=object) for d in days]
        self.confidence: list[np.ndarray] = [np.zeros(len(d.labels)) for d in days]
        self.correct: list[np.ndarray] = [np.zeros(len(d.labels), dtype=bool) for d in days]

    def serve(self, day: int, rows: np.ndarray, model: Model, preds: Predictions) -> None:
        proba = preds.proba(model, day)[rows]
        best = proba.argmax(axis=1)
        self.served[day][rows] = model.id
        self.predicted[day][rows] = np.asarray(self.cfg.classes, dtype=object)[best]
        self.confidence[day][rows] = proba[np.arange(len(rows)), best]
        self.correct[day][rows] = self.predicted[day][rows] == self.days[day].labels[rows]

    def rows(self, since: float, until: float, now: float) -> list[tuple[int, np.ndarray]]:
        """(day, mask) of the rows predicted in [since, until) whose outcome is in by ``now``."""
        out = []
        for d in self.days[max(0, math.floor(since / 24)) : max(0, math.ceil(until / 24))]:
            mask = (d.hours >= since) & (d.hours < until) & (d.hours + self.delay <= now)
            if mask.any():
                out.append((d.index, mask))
        return out

    def labelled(self, since: float, until: float, now: float) -> pd.DataFrame:
        """Rows predicted in [since, until) whose outcome is in by ``now`` (hours)."""
        parts = []
        for index, mask in self.rows(since, until, now):
            d = self.days[index]
            part = d.frame[mask].copy()
            part["actual_label"] = d.labels[mask]
            part["predicted_label"] = self.predicted[d.index][mask]
            part["confidence"] = self.confidence[d.index][mask]
            part["served_by"] = self.served[d.index][mask]
            part["hour"] = d.hours[mask]
            part["predicted_at"] = pd.Timestamp(START) + pd.to_timedelta(d.hours[mask], unit="h")
            part["after"] = d.after[mask]
            part["prediction_id"] = d.row_ids[mask].astype(str)
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _hash(text: str) -> int:
    """A stable hash (Python's ``hash`` of a str changes with every interpreter)."""
    return zlib.crc32(text.encode())


def window_roles(
    cfg: ModelConfig, rows: pd.DataFrame, options: ReinforceOptions, seed: int
) -> pd.DataFrame:
    """``load_window``'s roles: a hash bucket is the holdout, confident errors, replay."""
    rf, ratio = cfg.reinforcement, options.replay_ratio
    bucket = rows["prediction_id"].map(lambda r: _hash(f"{seed}:{r}") % 10_000 / 10_000)
    holdout = bucket < rf.holdout_fraction
    wrong = rows["predicted_label"] != rows["actual_label"]
    errors = ~holdout & wrong & (rows["confidence"] >= options.confidence_threshold)
    correct = rows.index[~holdout & ~wrong]
    order = rows.loc[correct, "prediction_id"].map(lambda r: _hash(f"{seed}:replay:{r}"))
    replay_index = order.sort_values().index[: math.ceil(ratio * errors.sum())]
    role = pd.Series("", index=rows.index, dtype=object)
    role[errors] = "error"
    role[replay_index] = "replay"
    recent = rows[holdout].sort_values("hour", ascending=False).index[: rf.max_holdout_rows]
    role[recent] = "holdout"
    return rows.assign(role=role)[role != ""]


def retrain(
    cfg: ModelConfig, champion: Model, rows: pd.DataFrame, options: ReinforceOptions
) -> tuple[Model | None, bool]:
    """One reinforcement run on labelled ``rows`` with ``options``: (candidate or None,
    blessed)."""
    if rows.empty:
        return None, False
    window = window_roles(cfg, rows, options, cfg.training.random_seed)
    if (window["role"] == "error").sum() < options.min_error_samples:
        return None, False
    holdout = window[window["role"] == "holdout"]
    if holdout.empty:
        return None, False
    dataset = build_dataset(
        window,
        cfg,
        confidence_threshold=options.confidence_threshold,
        seed=cfg.training.random_seed,
    )
    # relearn.retraining.train's starting point and learning rate
    if options.fine_tune:
        classifier = copy.deepcopy(champion.classifier)
        learning_rate = options.learning_rate * cfg.training.fine_tune_lr_factor
    else:
        classifier, learning_rate = new_classifier(cfg), options.learning_rate
    classifier.fit(
        dataset.features("train"),
        dataset.labels("train"),
        val_frame=dataset.features("validation"),
        val_labels=dataset.labels("validation"),
        epochs=options.epochs,
        learning_rate=learning_rate,
    )
    truth = dataset.labels("holdout")
    features = dataset.features("holdout")
    metrics = classification_metrics(truth, classifier.predict_proba(features), cfg.classes)
    champion_metrics = classification_metrics(
        truth, champion.classifier.predict_proba(features), cfg.classes
    )
    decision = gate(metrics, champion_metrics, cfg.gates)
    _logger.info(
        "retrain on %d rows (%d errors): holdout %d rows, accuracy %.3f vs champion %.3f: %s",
        len(rows),
        (window["role"] == "error").sum(),
        len(holdout),
        metrics["accuracy"],
        champion_metrics["accuracy"],
        "; ".join(decision.reasons) or "blessed",
    )
    gain = metrics["accuracy"] - champion_metrics["accuracy"]
    model = Model(
        classifier,
        reference_accuracy=metrics["accuracy"],
        gain=gain,
        holdout=metrics,
        champion_holdout=champion_metrics,
        against=champion.id,
    )
    return model, decision.blessed


def fit_all(cfg: ModelConfig, rows: pd.DataFrame) -> Model:
    """A model from scratch on every row given (naive and oracle)."""
    classifier = new_classifier(cfg)
    labels = rows["actual_label"].tolist()
    cut = int(len(rows) * (1 - cfg.training.validation_fraction))
    order = np.random.default_rng(cfg.training.random_seed).permutation(len(rows))
    train, val = rows.iloc[order[:cut]], rows.iloc[order[cut:]]
    classifier.fit(
        train[cfg.feature_names],
        [labels[i] for i in order[:cut]],
        val_frame=val[cfg.feature_names],
        val_labels=[labels[i] for i in order[cut:]],
    )
    return Model(classifier)


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
        offline = (
            after_decay
            and model.against == champion.id
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
