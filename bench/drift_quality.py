"""Do drift alarms and performance estimates mean something? Per simulated model of relearn.yaml.

For every configured model with a ``simulation:`` world (whatever its kind and schema):

1. **calibration**: v1 is trained as bootstrap does (train / validation / holdout of the
   world's reference data) and calibrated on the validation split; the expected calibration
   error on the holdout before and after;
2. **importance**: the permutation importance stored in the reference profile;
3. **false alarms**: 48 hourly checks of unchanged traffic (each a ``drift.window_hours``
   window at the model's ``predictions_per_hour``, sliding by an hour), target <= 1;
4. **detection**: a 0.3 sd shift of the most important numeric feature. (a) Checks of fresh
   windows of shifted traffic: the check at which it first alarms (target <= 2). (b) The
   same shift starting mid-stream with the sliding hourly window: hours until the alarm (a
   24 h window at 60 rows/h needs several hours of shifted rows to be significant). And
   the least important numeric feature moved by 1 sd alone: must not alarm;
5. **CBPE**: on windows without concept shift (unchanged traffic, and a covariate shift of
   1 sd on half the numeric features), |estimated - realised accuracy| over each window
   (all its outcomes in), target <= 0.03.

Returns the number of missed targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.config import FeatureType, ModelConfig, load_config
from relearn.drift import build_profile, compare
from relearn.drift.compare import MAX_STRENGTH
from relearn.drift.importance import permutation_importance
from relearn.evaluation import label_indices
from relearn.simulate.world import CovariateShift, World
from relearn.training.calibration import Calibration, expected_calibration_error
from relearn.training.factory import new_classifier

if TYPE_CHECKING:
    from relearn.drift.profile import ReferenceProfile
    from relearn.training.classifier import TabularClassifier

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2025, 3, 1, tzinfo=UTC)
CHECKS = 48
MAX_FALSE_ALARMS = 1
MAX_DETECTION_CHECKS = 2
MAX_CBPE_ERROR = 0.03
DETECT_SHIFT_STD = 0.3
TRAIN_ROWS, VAL_ROWS, HOLDOUT_ROWS = 8000, 2000, 4000


@dataclass
class Model:
    cfg: ModelConfig
    world: World
    classifier: TabularClassifier
    profile: ReferenceProfile


def quality() -> int:
    """Print every figure; the number of missed targets."""
    config = load_config(ROOT / "relearn.yaml")
    missed = 0
    for model_cfg in config.models:
        if model_cfg.simulation is None:
            continue
        print(f"\n== {model_cfg.name} ({model_cfg.kind}, {len(model_cfg.features)} features)")
        model = _train(model_cfg)
        missed += _alarms(model)
        missed += _cbpe(model)
    print(f"\nquality targets missed: {missed}")
    return missed


def _train(cfg: ModelConfig) -> Model:
    world = World(cfg)
    frame = world.reference_frame(TRAIN_ROWS + VAL_ROWS + HOLDOUT_ROWS)
    train, val = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS : TRAIN_ROWS + VAL_ROWS]
    holdout = frame.iloc[TRAIN_ROWS + VAL_ROWS :]
    names, label = cfg.feature_names, cfg.label
    classifier = new_classifier(cfg)
    classifier.fit(
        train[names], train[label].tolist(), val_frame=val[names], val_labels=val[label].tolist()
    )
    truth = label_indices(holdout[label].tolist(), cfg.classes)
    calibrated = classifier.predict_proba(holdout[names])
    fitted, classifier.calibration = classifier.calibration, Calibration()
    raw = classifier.predict_proba(holdout[names])
    classifier.calibration = fitted
    accuracy = float((calibrated.argmax(axis=1) == truth).mean())
    print(
        f"calibration: temperature {fitted.temperature:.3f}; holdout ECE "
        f"{expected_calibration_error(truth, raw):.4f} -> "
        f"{expected_calibration_error(truth, calibrated):.4f} (accuracy {accuracy:.3f}, "
        f"mean confidence {raw.max(axis=1).mean():.3f} -> {calibrated.max(axis=1).mean():.3f})"
    )
    importances = permutation_importance(
        holdout[names], cfg, classifier.predict_proba, seed=cfg.training.random_seed
    )
    profile = build_profile(
        holdout[names],
        cfg,
        predicted_labels=[cfg.classes[i] for i in calibrated.argmax(axis=1)],
        confidences=calibrated.max(axis=1),
        accuracy=accuracy,
        importances=importances,
        seed=cfg.training.random_seed,
    )
    ranked = sorted(importances.items(), key=lambda item: -item[1])
    print("importance: " + ", ".join(f"{n} {s:.3f}" for n, s in ranked))
    return Model(cfg, world, classifier, profile)


def _hours(world: World, cfg: ModelConfig, hours: int, start: datetime, seed: int) -> list:
    """``hours`` hourly batches of (features, true labels) at the configured rate."""
    rng = np.random.default_rng(seed)
    rate = cfg.simulation.predictions_per_hour
    batches = []
    for hour in range(hours):
        at = start + timedelta(hours=hour, minutes=30)
        batches.append(world.sample(rate, at, rng))
    return batches


def _window(batches: list, end: int, hours: int) -> tuple[pd.DataFrame, np.ndarray]:
    chosen = batches[max(0, end - hours) : end]
    return (
        pd.concat([f for f, _ in chosen], ignore_index=True),
        np.concatenate([labels for _, labels in chosen]),
    )


def _check(model: Model, frame: pd.DataFrame):
    proba = model.classifier.predict_proba(frame)
    return compare(
        model.profile,
        frame,
        model.cfg,
        predicted_labels=[model.cfg.classes[i] for i in proba.argmax(axis=1)],
        confidences=proba.max(axis=1),
    )


def _alarms(model: Model) -> int:
    cfg, world, missed = model.cfg, model.world, 0
    hours = cfg.drift.window_hours
    unchanged = _hours(world, cfg, hours + CHECKS, START, seed=1)
    reports = [_check(model, _window(unchanged, hours + i, hours)[0]) for i in range(1, CHECKS + 1)]
    alarms = sum(r.drifted for r in reports)
    worst = max(r.score for r in reports)
    ok = alarms <= MAX_FALSE_ALARMS
    missed += not ok
    print(
        f"false alarms: {alarms} of {CHECKS} hourly checks of unchanged traffic "
        f"({hours} h windows, {cfg.simulation.predictions_per_hour} rows/h; highest score "
        f"{worst:.3f} / {cfg.drift.threshold:g}) "
        f"[{'ok' if ok else 'MISSED'}: <= {MAX_FALSE_ALARMS}]"
    )

    numeric = [f.name for f in cfg.features if f.type is FeatureType.NUMERIC]
    ranked = sorted(numeric, key=lambda n: -model.profile.importances[n])
    top, bottom = ranked[0], ranked[-1]
    shifted = world.with_drift(CovariateShift(START, features=[top], shift_std=DETECT_SHIFT_STD))
    fresh = _hours(shifted, cfg, hours * MAX_DETECTION_CHECKS, START, seed=2)
    detected = None
    for check in range(1, MAX_DETECTION_CHECKS + 1):
        report = _check(model, _window(fresh, check * hours, hours)[0])
        if report.drifted:
            detected = (check, report)
            break
    ok = detected is not None
    missed += not ok
    if detected is not None:
        check, report = detected
        feature = report.feature(top)
        detail = (
            f"check {check}, score {report.score:.3f} ({top}: weight {feature.weight:.3f} x "
            f"strength {feature.strength:.2f})"
        )
    else:
        detail = "not detected"
    print(
        f"detection of a {DETECT_SHIFT_STD} sd shift of {top} (most important numeric): "
        f"{detail} [{'ok' if ok else 'MISSED'}: within {MAX_DETECTION_CHECKS} checks of "
        "shifted windows]"
    )

    mid = world.with_drift(
        CovariateShift(START + timedelta(hours=hours), features=[top], shift_std=DETECT_SHIFT_STD)
    )
    stream = _hours(mid, cfg, 2 * hours, START, seed=3)
    sliding = next(
        (
            after
            for after in range(1, hours + 1)
            if _check(model, _window(stream, hours + after, hours)[0]).drifted
        ),
        None,
    )
    print(
        "  same shift mid-stream, sliding hourly checks: alarm after "
        + (f"{sliding} hour(s) of shifted traffic" if sliding else f"more than {hours} hours")
    )

    # Alone, a feature alarms only if weight x min(strength, MAX_STRENGTH) >= threshold.
    alone = cfg.drift.threshold / MAX_STRENGTH
    moved = world.with_drift(CovariateShift(START, features=[bottom], shift_std=1.0))
    report = _check(model, _window(_hours(moved, cfg, hours, START, seed=4), hours, hours)[0])
    feature = report.feature(bottom)
    unimportant = feature.weight < alone
    ok = not report.drifted or not unimportant
    missed += not ok
    verdict = (
        f"[{'ok' if ok else 'MISSED'}: no alarm]"
        if unimportant
        else f"[n/a: its weight is over {alone:.3f}, the least a feature alarming alone has]"
    )
    print(
        f"least important numeric feature {bottom} moved by 1 sd alone: {report.verdict} "
        f"(score {report.score:.3f}, feature drifted {feature.drifted}, weight "
        f"{feature.weight:.3f}) {verdict}"
    )
    return missed


def _cbpe(model: Model) -> int:
    cfg, world = model.cfg, model.world
    hours = cfg.drift.window_hours
    scenarios = {
        "unchanged": world,
        "covariate shift 1 sd": world.with_drift(CovariateShift(START, features=0.5)),
    }
    missed = 0
    for name, scenario in scenarios.items():
        stream = _hours(scenario, cfg, hours * 8, START, seed=5)
        errors, realised, estimated = [], [], []
        for day in range(1, 9):
            frame, labels = _window(stream, day * hours, hours)
            proba = model.classifier.predict_proba(frame)
            truth = label_indices(labels.tolist(), cfg.classes)
            realised.append(float((proba.argmax(axis=1) == truth).mean()))
            estimated.append(float(proba.max(axis=1).mean()))
            errors.append(abs(realised[-1] - estimated[-1]))
        ok = max(errors) <= MAX_CBPE_ERROR
        missed += not ok
        print(
            f"CBPE, {name}: 8 windows of {hours} h, realised accuracy {np.mean(realised):.3f}, "
            f"estimated {np.mean(estimated):.3f}; |error| mean {np.mean(errors):.4f}, max "
            f"{max(errors):.4f} [{'ok' if ok else 'MISSED'}: <= {MAX_CBPE_ERROR}]"
        )
    return missed
