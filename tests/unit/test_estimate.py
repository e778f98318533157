"""Confidence-based performance estimation: it tracks realised accuracy where the concept
holds, and a fall of it while outcomes are late is the warning verdict ``estimated_decay``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relearn.config import ModelConfig, load_config
from relearn.drift import build_profile
from relearn.drift.action import decide
from relearn.drift.estimate import estimate_window, judge
from relearn.drift.monitor import CheckOptions, Window, _assess
from relearn.drift.window import ACTUAL, CONFIDENCE, PREDICTED, PREDICTED_AT
from relearn.simulate.world import CovariateShift, World
from relearn.store import drift_reports as store
from relearn.training.factory import new_classifier

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 1440  # a 24 h window at 60 predictions per hour


@pytest.fixture(scope="module", params=["churn", "credit_risk"])
def trained(request):
    """A configured model of its own kind, trained and calibrated as bootstrap does."""
    cfg = load_config(ROOT / "relearn.yaml").model(request.param)
    frame = World(cfg).reference_frame(6000)
    train, val = frame.iloc[:4500], frame.iloc[4500:]
    names, label = cfg.feature_names, cfg.label
    classifier = new_classifier(cfg)
    classifier.fit(
        train[names], train[label].tolist(), val_frame=val[names], val_labels=val[label].tolist()
    )
    return cfg, classifier


def _logged(cfg: ModelConfig, classifier, features: pd.DataFrame, labels) -> pd.DataFrame:
    """A window as the prediction log holds it: features, prediction, confidence, outcome."""
    proba = classifier.predict_proba(features)
    frame = features.copy()
    frame[PREDICTED] = [cfg.classes[i] for i in proba.argmax(axis=1)]
    frame[CONFIDENCE] = proba.max(axis=1)
    frame[ACTUAL] = list(labels)
    return frame


@pytest.mark.parametrize("shift", [None, 1.0], ids=["unchanged", "covariate-1sd"])
def test_estimate_is_within_three_points_of_realised_accuracy_without_concept_shift(trained, shift):
    cfg, classifier = trained
    world = World(cfg)
    if shift:
        world = world.with_drift(CovariateShift(T0, features=0.5, shift_std=shift))
    rng = np.random.default_rng(5)
    for day in range(4):
        features, labels = world.sample(DAY, T0 + timedelta(days=day), rng)
        window = _logged(cfg, classifier, features, labels)
        estimate = estimate_window(
            window, role="champion", version="1", min_rows=200, min_labelled_rows=200
        )
        assert estimate.labelled_rows == DAY
        assert abs(estimate.estimated_accuracy - estimate.realised_accuracy) <= 0.03
        assert estimate.ece < 0.06


def test_estimate_needs_rows_and_realised_figures_need_outcomes(trained):
    cfg, classifier = trained
    features, labels = World(cfg).sample(300, T0, np.random.default_rng(1))
    window = _logged(cfg, classifier, features, [None] * 250 + list(labels[250:]))
    estimate = estimate_window(
        window, role="champion", version="1", min_rows=200, min_labelled_rows=200
    )
    assert estimate.estimated_accuracy is not None and estimate.labelled_rows == 50
    assert estimate.realised_accuracy is None and estimate.ece is None
    none = estimate_window(window, role="champion", version="1", min_rows=500, min_labelled_rows=1)
    assert none.estimated_accuracy is None and none.realised_accuracy is not None


def _unsure_window(cfg: ModelConfig, rows: int, confidence: float, labelled: bool) -> pd.DataFrame:
    features, labels = World(cfg).sample(rows, T0, np.random.default_rng(2))
    frame = features.copy()
    frame[PREDICTED] = labels
    frame[CONFIDENCE] = confidence
    frame[ACTUAL] = list(labels) if labelled else [None] * rows
    return frame


def test_judge_needs_the_drop_and_the_evidence():
    cfg = load_config(ROOT / "relearn.yaml").model("churn")
    big = estimate_window(
        _unsure_window(cfg, 1000, 0.70, False),
        role="champion",
        version="1",
        min_rows=200,
        min_labelled_rows=200,
    )
    assert judge(big, 0.80, max_drop=0.05).decayed
    assert not judge(big, 0.74, max_drop=0.05).decayed  # a 4-point drop is under the limit
    assert not judge(big, None, max_drop=0.05).decayed


@pytest.fixture(scope="module")
def churn_profile():
    cfg = load_config(ROOT / "relearn.yaml").model("churn")
    frame = World(cfg).reference_frame(5000).drop(columns=[cfg.label])
    return cfg, build_profile(frame, cfg, accuracy=0.82)


def _window(cfg, frame, outcomes: pd.DataFrame | None = None) -> Window:
    """A check's window; the performance check reads ``outcomes`` (the window by default),
    each frame's rows spread evenly over the 24 h before ``T0``."""
    since = T0 - timedelta(hours=24)
    frame = _timed(frame, since)
    outcomes = frame if outcomes is None else _timed(outcomes, since)
    return Window(cfg.name, "1", since, T0, frame, outcomes)


def _timed(frame: pd.DataFrame, since: datetime) -> pd.DataFrame:
    step = timedelta(hours=24) / max(len(frame), 1)
    return frame.assign(**{PREDICTED_AT: [since + i * step for i in range(len(frame))]})


def test_a_fall_of_the_estimate_before_outcomes_arrive_is_an_early_warning(churn_profile):
    cfg, profile = churn_profile
    options = CheckOptions.from_config(cfg)
    found = _assess(cfg, options, profile, _window(cfg, _unsure_window(cfg, DAY, 0.6, False)), None)
    assert found.verdict == store.ESTIMATED_DECAY
    assert [e.role for e in found.estimates] == ["champion"] and found.estimates[0].decayed
    # A warning: no retraining unless configured (the connection is not even needed).
    action = decide(None, cfg, found.verdict, found.performance, dry_run=False, now=T0)
    assert action.action == store.NONE and "retrain_on_estimated_decay" in action.reason
    eager = cfg.model_copy(
        update={"drift": cfg.drift.model_copy(update={"retrain_on_estimated_decay": True})}
    )
    dry = decide(None, eager, found.verdict, found.performance, dry_run=True, now=T0)
    assert dry.reason == "dry run: would retrain (decay_triggered)"


def test_once_outcomes_are_in_they_speak_instead_of_the_estimate(churn_profile):
    cfg, profile = churn_profile
    options = CheckOptions.from_config(cfg)
    # Under-confident but right: realised accuracy 1.0, no decay of any kind.
    found = _assess(cfg, options, profile, _window(cfg, _unsure_window(cfg, DAY, 0.6, True)), None)
    assert found.verdict == store.STABLE
    assert found.estimates[0].decayed and found.estimates[0].miscalibrated
    assert found.performance.accuracy == pytest.approx(1.0)


def test_the_estimate_still_warns_when_only_older_outcomes_are_in(churn_profile):
    """With ``outcome_delay_hours`` the performance check reads older outcomes (here: all
    right); the last hours have none, and there the estimate's fall is the early warning."""
    cfg, profile = churn_profile
    options = CheckOptions.from_config(cfg)
    recent = _unsure_window(cfg, DAY, 0.6, False)
    older = pd.concat([_unsure_window(cfg, DAY, 0.9, True), recent], ignore_index=True)
    found = _assess(cfg, options, profile, _window(cfg, recent, outcomes=older), None)
    assert found.performance.accuracy == pytest.approx(1.0) and not found.performance.decayed
    assert found.verdict == store.ESTIMATED_DECAY
