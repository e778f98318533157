"""Drift that matters: each feature weighed by its permutation importance to the champion and
by how far it moved; old profiles without importances keep working with equal weights."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from relearn.config import ModelConfig, load_config
from relearn.drift import ReferenceProfile, Verdict, build_profile, compare
from relearn.drift.importance import permutation_importance
from relearn.simulate.world import CovariateShift, World

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 2, 1, tzinfo=UTC)
DAY = 1440  # a 24 h window at 60 predictions per hour


@pytest.fixture(scope="module", params=["churn", "credit_risk"])
def cfg(request) -> ModelConfig:
    return load_config(ROOT / "relearn.yaml").model(request.param)


def _numeric(cfg: ModelConfig) -> list[str]:
    return [f.name for f in cfg.features if f.type.value == "numeric"]


def _importances(cfg: ModelConfig) -> dict[str, float]:
    """The first numeric feature carries 60 % of the model's attention, the last 1 %."""
    numeric = _numeric(cfg)
    top, bottom = numeric[0], numeric[-1]
    others = [n for n in cfg.feature_names if n not in (top, bottom)]
    return {top: 0.6, bottom: 0.01, **{n: 0.39 / len(others) for n in others}}


@pytest.fixture(scope="module")
def profile(cfg) -> ReferenceProfile:
    frame = World(cfg).reference_frame(20_000).drop(columns=[cfg.label])
    return build_profile(frame, cfg, importances=_importances(cfg))


def _window(cfg, shift: CovariateShift | None = None, seed: int = 0) -> pd.DataFrame:
    world = World(cfg) if shift is None else World(cfg).with_drift(shift)
    return world.sample(DAY, T0, np.random.default_rng(seed))[0]


def test_importance_is_what_moves_the_predictions(cfg):
    """A model reading one feature only: that feature gets (almost) all of the weight."""
    only = _numeric(cfg)[1]
    frame = World(cfg).reference_frame(3000)

    def predict(rows: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(rows[only].to_numpy() - frame[only].mean()) / frame[only].std()))
        return np.column_stack([p, 1 - p, *([np.zeros(len(p))] * (len(cfg.classes) - 2))])

    shares = permutation_importance(frame, cfg, predict)
    assert set(shares) == set(cfg.feature_names)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares[only] == pytest.approx(1.0)


def test_a_small_shift_of_the_most_important_feature_alarms_in_the_first_check(cfg, profile):
    top = _numeric(cfg)[0]
    report = compare(profile, _window(cfg, CovariateShift(T0, features=[top], shift_std=0.3)), cfg)
    assert report.verdict is Verdict.DRIFTED
    assert report.drifted_features == [top]
    moved = report.feature(top)
    assert moved.weight == pytest.approx(0.6)
    assert moved.contribution == pytest.approx(0.6 * min(moved.strength, 3.0))
    assert report.score == pytest.approx(min(1.0, moved.contribution))
    # The explanation is in the stored report.
    stored = {f["name"]: f for f in report.to_dict()["features"]}
    assert stored[top]["contribution"] == pytest.approx(moved.contribution)


def test_an_unimportant_feature_alone_does_not_alarm_however_far_it_moves(cfg, profile):
    bottom = _numeric(cfg)[-1]
    report = compare(
        profile, _window(cfg, CovariateShift(T0, features=[bottom], shift_std=2.0)), cfg
    )
    assert report.drifted_features == [bottom]  # it did move, and the report says so
    assert report.verdict is Verdict.STABLE
    assert 0 < report.score <= 0.01 * 3.0 / sum(f.weight > 0 for f in report.features) + 0.03


def test_unchanged_traffic_rarely_alarms_in_48_checks(cfg, profile):
    world = World(cfg)
    alarms = [
        compare(profile, world.sample(200, T0, np.random.default_rng(seed))[0], cfg).verdict
        is Verdict.DRIFTED
        for seed in range(48)
    ]
    assert sum(alarms) <= 1


def test_an_old_profile_without_importances_weighs_features_equally(cfg, profile, caplog):
    data = profile.to_dict()
    del data["importances"]  # as written before importances existed
    old = ReferenceProfile.from_dict(data)
    assert old.importances is None
    top = _numeric(cfg)[0]
    window = _window(cfg, CovariateShift(T0, features=[top], shift_std=0.5), seed=3)
    with caplog.at_level(logging.INFO, logger="relearn.drift.compare"):
        report = compare(old, window, cfg)
    assert "no importances: equal weights" in caplog.text
    assert [f.weight for f in report.features] == pytest.approx(
        [1 / len(cfg.features)] * len(cfg.features)
    )
    # One feature moved strongly now alarms even with equal weights (1/n x strength 3).
    assert report.verdict is Verdict.DRIFTED


def test_importances_survive_the_json_round_trip_and_must_name_the_features(cfg, profile):
    again = ReferenceProfile.from_dict(profile.to_dict())
    assert again.importances == pytest.approx(profile.importances)
    frame = World(cfg).reference_frame(100).drop(columns=[cfg.label])
    with pytest.raises(ValueError, match="importances name"):
        build_profile(frame, cfg, importances={"nope": 1.0})
