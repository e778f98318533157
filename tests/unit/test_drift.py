"""Drift statistics against scipy and hand-computed values, and the profile check on the
simulator's worlds (no drift, covariate shift, small windows, JSON round trip)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from relearn.config import ModelConfig, load_config
from relearn.drift import ReferenceProfile, Verdict, build_profile, compare
from relearn.drift import stats as ds
from relearn.drift.columns import OTHER
from relearn.simulate.world import CovariateShift, World, wide_model_config

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, tzinfo=UTC)
CHECKS = 48
WINDOW = 500


@pytest.fixture(scope="module")
def churn() -> ModelConfig:
    return load_config(ROOT / "relearn.yaml").model("churn")


@pytest.fixture(scope="module")
def wide() -> ModelConfig:
    return wide_model_config()


def reference_profile(cfg: ModelConfig, rows: int = 20_000, **kwargs) -> ReferenceProfile:
    frame = World(cfg).reference_frame(rows).drop(columns=[cfg.label])
    return build_profile(frame, cfg, **kwargs)


@pytest.fixture(scope="module")
def churn_profile(churn) -> ReferenceProfile:
    return reference_profile(churn)


@pytest.fixture(scope="module")
def wide_profile(wide) -> ReferenceProfile:
    return reference_profile(wide)


# --- KS and Wasserstein against scipy -------------------------------------------------------


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(123)
    clipped = np.clip(rng.normal(size=1_700), -0.5, 1.0)
    return [
        ("normal, equal sizes", rng.normal(size=400), rng.normal(0.2, 1.1, 400)),
        ("normal, small vs large", rng.normal(size=37), rng.normal(size=5_000)),
        ("large reference", rng.normal(size=20_000), rng.normal(0.05, 1, 3_000)),
        ("discrete", rng.integers(0, 5, 300) * 1.0, rng.integers(0, 7, 900) * 1.0),
        ("heavy ties", np.round(rng.normal(size=2_000), 1), np.round(rng.normal(size=700), 1)),
        ("clipped at bounds", clipped[:800], clipped[800:] - 0.2),
        ("constant reference", np.full(50, 3.0), rng.integers(2, 5, 60) * 1.0),
        ("tiny samples", np.array([1.0, 2.0, 2.0]), np.array([0.5, 2.0, 3.0, 4.0])),
        ("large offset", 1e4 + rng.normal(size=500) * 30, 1e4 + rng.normal(size=800) * 35),
        ("exponential", rng.exponential(size=1_000), rng.exponential(1.3, size=1_500)),
    ]


PAIRS = _pairs()
PAIR_IDS = [label for label, _, _ in PAIRS]


@pytest.mark.parametrize(("label", "reference", "current"), PAIRS, ids=PAIR_IDS)
def test_ks_equals_scipy(label, reference, current):
    statistic, pvalue = ds.ks_2samp_sorted(np.sort(reference), current)
    expected = scipy_stats.ks_2samp(reference, current, method="asymp")
    assert statistic == pytest.approx(expected.statistic, abs=1e-9), label
    assert scipy_stats.ks_2samp(reference, current).statistic == pytest.approx(statistic, abs=1e-9)
    assert pvalue == pytest.approx(expected.pvalue, abs=1e-6), label


@pytest.mark.parametrize(("label", "reference", "current"), PAIRS, ids=PAIR_IDS)
def test_wasserstein_equals_scipy(label, reference, current):
    scale = 2.5
    ours = ds.wasserstein_normalised(np.sort(reference), current, scale)
    expected = scipy_stats.wasserstein_distance(reference, current) / scale
    assert ours == pytest.approx(expected, abs=1e-9), label
    both = ds.ks_wasserstein_sorted(np.sort(reference), ds.finite_sorted(current), scale)
    assert both[2] == ours
    assert both[:2] == ds.ks_2samp_sorted(np.sort(reference), current)


def test_many_random_pairs_match_scipy():
    rng = np.random.default_rng(7)
    for trial in range(300):
        m, n = (int(v) for v in rng.integers(1, 120, 2))
        if trial % 2:
            reference, current = rng.integers(0, 6, m) * 1.0, rng.integers(0, 6, n) * 1.0
        else:
            reference, current = rng.normal(size=m), rng.normal(0.3, 1.4, n)
        statistic, pvalue = ds.ks_2samp_sorted(np.sort(reference), current)
        expected = scipy_stats.ks_2samp(reference, current, method="asymp")
        assert abs(statistic - expected.statistic) <= 1e-9
        assert abs(pvalue - expected.pvalue) <= 1e-6
        distance = ds.wasserstein_normalised(np.sort(reference), current, 1.0)
        assert abs(distance - scipy_stats.wasserstein_distance(reference, current)) <= 1e-9


def test_current_nan_and_inf_are_ignored():
    rng = np.random.default_rng(1)
    reference, current = np.sort(rng.normal(size=300)), rng.normal(size=200)
    dirty = np.concatenate([current, [np.nan, np.inf, -np.inf, np.nan]])
    assert ds.ks_2samp_sorted(reference, dirty) == ds.ks_2samp_sorted(reference, current)
    assert ds.wasserstein_normalised(reference, dirty, 1.0) == pytest.approx(
        ds.wasserstein_normalised(reference, current, 1.0), abs=1e-12
    )
    assert np.array_equal(ds.finite_sorted(dirty), np.sort(current))


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="sorted"):
        ds.ks_2samp_sorted(np.array([2.0, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="no finite value"):
        ds.ks_2samp_sorted(np.array([1.0]), np.array([np.nan]))
    with pytest.raises(ValueError, match="scale"):
        ds.wasserstein_normalised(np.array([1.0]), np.array([1.0]), 0.0)
    with pytest.raises(ValueError, match="sums to zero"):
        ds.psi([0, 0], [1, 1])


# --- PSI, JS and chi-squared by hand --------------------------------------------------------


def test_psi_three_bins_by_hand():
    # e = (0.5, 0.3, 0.2), a = (0.4, 0.3, 0.3):
    # (0.4-0.5)*ln(0.4/0.5) + 0 + (0.3-0.2)*ln(0.3/0.2) = 0.0223143551 + 0.0405465108
    assert ds.psi([50, 30, 20], [40, 30, 30]) == pytest.approx(0.0628608659, abs=1e-9)
    # Shares, not counts, matter.
    assert ds.psi([5, 3, 2], [400, 300, 300]) == pytest.approx(0.0628608659, abs=1e-9)
    assert ds.psi([1, 2, 3], [10, 20, 30]) == 0.0


def test_psi_empty_bin_is_floored_at_eps():
    # e = (0.1, 0 -> 1e-4, 0.9), a = (0.1, 0.1, 0.8):
    # 0 + (0.1-0.0001)*ln(0.1/0.0001) + (0.8-0.9)*ln(0.8/0.9) = 0.6900847524 + 0.0117783036
    assert ds.psi([10, 0, 90], [10, 10, 80]) == pytest.approx(0.7018630560, abs=1e-9)
    assert ds.category_psi([0.1, 0.0, 0.9], [10, 10, 80]) == pytest.approx(0.7018630560, abs=1e-9)


def test_jensen_shannon_by_hand_and_against_scipy():
    # m = (0.25, 0.5, 0.25); KL(p||m) = KL(q||m) = 0.5 * log2(2) = 0.5 bit; JSD = 0.5.
    assert ds.jensen_shannon_distance([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(
        0.7071067812, abs=1e-9
    )
    assert ds.jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0, abs=1e-12)
    assert ds.jensen_shannon_distance([3, 1], [30, 10]) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(5)
    for _ in range(20):
        p, q = rng.random(6), rng.random(6)
        p[rng.integers(0, 6)] = 0.0
        assert ds.jensen_shannon_distance(p, q) == pytest.approx(
            jensenshannon(p, q, base=2), abs=1e-12
        )


def test_chi_squared_by_hand_and_against_scipy():
    # expected = (50, 30, 20): (40-50)^2/50 + 0 + (30-20)^2/20 = 2 + 5 = 7; df = 2,
    # and for two degrees of freedom the survival function is exp(-x/2).
    statistic, pvalue = ds.chi_squared([0.5, 0.3, 0.2], [40, 30, 30])
    assert statistic == pytest.approx(7.0, abs=1e-9)
    assert pvalue == pytest.approx(math.exp(-3.5), abs=1e-12)
    reference, counts = np.array([120, 300, 80, 500]), np.array([10, 40, 5, 45])
    expected = scipy_stats.chisquare(counts, reference / reference.sum() * counts.sum())
    assert ds.chi_squared(reference, counts) == pytest.approx(
        (expected.statistic, expected.pvalue), abs=1e-9
    )


def test_chi_squared_zero_categories():
    # Empty in both: left out (df 1): (40-50)^2/50 + (60-50)^2/50 = 4.
    statistic, pvalue = ds.chi_squared([0.5, 0.5, 0.0], [40, 60, 0])
    assert statistic == pytest.approx(4.0, abs=1e-9)
    assert pvalue == pytest.approx(scipy_stats.chi2.sf(4.0, 1), abs=1e-12)
    # New in the current window: finite, huge, significant.
    statistic, pvalue = ds.chi_squared([0.6, 0.4, 0.0], [50, 40, 10])
    assert math.isfinite(statistic) and statistic > 1_000 and pvalue < 1e-10


# --- bins -----------------------------------------------------------------------------------


def test_bin_counts_match_histogram_and_ignore_nan():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=10_000)
    edges = ds.quantile_edges(reference)
    assert len(edges) == 9 and np.all(np.diff(edges) > 0)
    assert ds.bin_counts(reference, edges).tolist() == [1_000] * 10
    values = np.concatenate([rng.normal(0.3, 1, 5_000), [np.nan] * 7])
    counts = ds.bin_counts(values, edges)
    expected = np.histogram(values[~np.isnan(values)], np.concatenate([[-np.inf], edges, [np.inf]]))
    assert counts.tolist() == expected[0].tolist()
    assert ds.bin_counts_sorted(ds.finite_sorted(values), edges).tolist() == counts.tolist()


def test_quantile_edges_handle_ties_and_constant_columns():
    constant = ds.quantile_edges(np.full(100, 4.0))
    assert constant.tolist() == [4.0, np.nextafter(4.0, np.inf)]
    # Below, at and above the constant fall in three different bins.
    assert ds.bin_counts([3.0, 4.0, 4.0, 5.0], constant).tolist() == [1, 2, 1]
    tied = np.concatenate([np.zeros(600), np.arange(1.0, 401.0)])
    edges = ds.quantile_edges(tied)
    assert edges[0] == 0.0 and len(np.unique(edges)) == len(edges)
    assert ds.bin_counts(tied, edges)[1] == 600 + np.sum((tied > 0) & (tied < edges[1]))
    # A point mass at the top: values beyond the reference maximum get their own bin.
    top = ds.quantile_edges(np.concatenate([np.arange(10.0), np.full(90, 10.0)]))
    assert ds.bin_counts([10.0, 11.0], top)[-2:].tolist() == [1, 1]


# --- the profile on the simulator -----------------------------------------------------------


def _verdicts(profile, world, cfg, rows, seeds, at=T0):
    for seed in seeds:
        window, _ = world.sample(rows, at, np.random.default_rng(seed))
        yield compare(profile, window, cfg)


@pytest.mark.parametrize("rows", [200, WINDOW])
@pytest.mark.parametrize("model", ["churn", "wide"])
def test_no_drift_rarely_alarms(model, rows, request):
    """48 hourly windows of an unchanged world. At 200 rows (the default min_rows) sampling
    noise alone pushes many features past the Wasserstein threshold; the significance veto
    is what keeps those windows stable."""
    cfg = request.getfixturevalue(model)
    profile = request.getfixturevalue(f"{model}_profile")
    reports = list(_verdicts(profile, World(cfg), cfg, rows, range(CHECKS)))
    drifted = [r for r in reports if r.verdict is Verdict.DRIFTED]
    assert all(r.verdict in (Verdict.STABLE, Verdict.DRIFTED) for r in reports)
    assert len(drifted) <= 1, [r.drifted_features for r in drifted]


def test_covariate_shift_on_a_quarter_of_the_features_is_detected(wide, wide_profile):
    shift = CovariateShift(start=T0, features=0.25, shift_std=0.3)
    world = World(wide).with_drift(shift)
    moved = world.covariate_features(shift)
    assert len(moved) == 5
    reports = list(
        _verdicts(wide_profile, world, wide, WINDOW, [101, 102], T0 + timedelta(hours=1))
    )
    first = next((r for r in reports if r.verdict is Verdict.DRIFTED), None)
    assert first is not None, [(r.score, r.drifted_features) for r in reports]
    assert set(moved) <= set(first.drifted_features)
    # No importances in this profile: equal weights, each drifted feature weighed by strength.
    assert [f.weight for f in first.features] == pytest.approx([1 / len(wide.features)] * 23)
    expected = sum(f.weight * min(f.strength, 3.0) for f in first.features if f.drifted)
    assert first.score == pytest.approx(min(1.0, expected))
    for name in moved:
        assert first.feature(name).stats["mean_shift_std"] == pytest.approx(0.3, abs=0.15)
        assert "wasserstein>=0.1" in first.feature(name).effects


def test_before_the_shift_starts_nothing_moves(wide, wide_profile):
    world = World(wide).with_drift(CovariateShift(start=T0, features=0.25, shift_std=0.3))
    reports = _verdicts(wide_profile, world, wide, WINDOW, [7, 8], T0 - timedelta(hours=1))
    assert [r.verdict for r in reports] == [Verdict.STABLE, Verdict.STABLE]


def test_huge_window_does_not_alarm_on_trivia(churn, churn_profile):
    shift = CovariateShift(start=T0, features=1.0, shift_std=0.05)
    world = World(churn).with_drift(shift)
    window, _ = world.sample(300_000, T0, np.random.default_rng(9))
    report = compare(churn_profile, window, churn)
    assert report.verdict is Verdict.STABLE
    # Significant but tiny: the p-value alone would have flagged it.
    assert min(report.feature(n).stats["ks_pvalue"] for n in world.covariate_features(shift)) < 0.01


def test_below_min_rows_is_insufficient_data(churn, churn_profile):
    window, _ = World(churn).sample(199, T0, np.random.default_rng(0))
    report = compare(churn_profile, window, churn)
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.score is None and report.features == []
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["verdict"] == (
        "insufficient_data"
    )
    assert compare(churn_profile, window, churn, min_rows=100).verdict is not (
        Verdict.INSUFFICIENT_DATA
    )


def test_features_with_too_few_values_are_not_assessed(churn, churn_profile):
    window, _ = World(churn).sample(400, T0, np.random.default_rng(0))
    window.loc[window.index[:300], "tenure_months"] = np.nan
    report = compare(churn_profile, window, churn)
    tenure = report.feature("tenure_months")
    assert (tenure.assessed, tenure.rows, tenure.missing, tenure.stats) == (False, 100, 300, {})
    assert not tenure.drifted
    assert report.score == len(report.drifted_features) / 5  # the other five features
    everything_missing = window.assign(**{n: np.nan for n in window.columns if n != "contract"})
    everything_missing["contract"] = None
    assert compare(churn_profile, everything_missing, churn).verdict is (Verdict.INSUFFICIENT_DATA)


def test_numeric_stats_are_exact_against_the_whole_small_reference(churn):
    frame = World(churn).reference_frame(3_000)
    profile = build_profile(frame, churn)
    window, _ = World(churn).sample(1_000, T0, np.random.default_rng(4))
    report = compare(profile, window, churn)
    for name in ("tenure_months", "data_usage_gb"):
        assert np.array_equal(profile.numeric[name].sample, np.sort(frame[name].to_numpy()))
        expected = scipy_stats.ks_2samp(frame[name], window[name])
        assert report.feature(name).stats["ks"] == pytest.approx(expected.statistic, abs=1e-9)
        distance = scipy_stats.wasserstein_distance(frame[name], window[name])
        assert report.feature(name).stats["wasserstein"] == pytest.approx(
            distance / frame[name].std(ddof=0), abs=1e-9
        )


def test_categorical_shift_and_unknown_values(churn, churn_profile):
    window, _ = World(churn).sample(1_000, T0, np.random.default_rng(2))
    stable = compare(churn_profile, window, churn).feature("region")
    assert not stable.drifted and stable.stats["js"] < 0.1
    window["region"] = np.where(np.arange(1_000) < 400, "atlantis", window["region"])
    window["contract"] = "two_year"
    report = compare(churn_profile, window, churn)
    assert report.feature("region").drifted and report.feature("contract").drifted
    assert report.feature("region").stats["chi2_pvalue"] < 1e-10
    assert report.verdict is Verdict.DRIFTED and report.score >= 2 / 6
    assert churn_profile.categorical["region"].categories[-1] == OTHER


def test_prediction_drift(churn):
    frame = World(churn).reference_frame(5_000)
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(5_000) < 0.7, "no", "yes")
    profile = build_profile(
        frame, churn, predicted_labels=labels, confidences=rng.beta(5, 2, 5_000), accuracy=0.8
    )
    window, _ = World(churn).sample(1_000, T0, rng)
    same = compare(
        profile,
        window,
        churn,
        predicted_labels=np.where(rng.random(1_000) < 0.7, "no", "yes"),
        confidences=rng.beta(5, 2, 1_000),
    )
    assert not same.prediction.drifted and same.prediction.class_psi < 0.05
    moved = compare(
        profile,
        window,
        churn,
        predicted_labels=np.where(rng.random(1_000) < 0.3, "no", "yes"),
        confidences=rng.beta(2, 5, 1_000),
    )
    assert moved.prediction.drifted
    assert moved.prediction.class_psi > 0.2 and moved.prediction.confidence_psi > 0.2
    assert moved.to_dict()["reference"] == {"rows": 5_000, "accuracy": 0.8}
    assert compare(profile, window, churn).prediction is None


def test_profile_json_round_trip(churn):
    frame = World(churn).reference_frame(30_000).drop(columns=[churn.label])
    frame.loc[frame.index[:10], "support_calls"] = np.nan
    rng = np.random.default_rng(1)
    profile = build_profile(
        frame,
        churn,
        predicted_labels=rng.choice(["no", "yes"], 30_000),
        confidences=rng.random(30_000),
        accuracy=0.75,
        sample_size=1_000,
        seed=3,
    )
    data = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
    restored = ReferenceProfile.from_dict(data)
    assert restored.to_dict() == profile.to_dict()
    assert profile.numeric["support_calls"].missing == 10
    assert profile.numeric["support_calls"].rows == 29_990
    window, _ = World(churn).sample(800, T0, rng)
    assert compare(restored, window, churn).to_dict() == compare(profile, window, churn).to_dict()
    with pytest.raises(ValueError, match="version"):
        ReferenceProfile.from_dict({**data, "version": 99})


def test_reference_sample_is_capped_sorted_and_seeded(churn):
    frame = World(churn).reference_frame(30_000)
    first = build_profile(frame, churn, sample_size=2_000, seed=1).numeric["tenure_months"]
    again = build_profile(frame, churn, sample_size=2_000, seed=1).numeric["tenure_months"]
    other = build_profile(frame, churn, sample_size=2_000, seed=2).numeric["tenure_months"]
    assert first.sample.size == 2_000 and np.all(np.diff(first.sample) >= 0)
    assert np.array_equal(first.sample, again.sample)
    assert not np.array_equal(first.sample, other.sample)
    assert np.isin(first.sample, frame["tenure_months"].to_numpy()).all()
    assert first.counts.sum() == 30_000 and first.rows == 30_000
    assert first.mean == pytest.approx(frame["tenure_months"].mean())


def test_report_is_json_safe_and_complete(wide, wide_profile):
    window, _ = World(wide).sample(WINDOW, T0, np.random.default_rng(0))
    data = json.loads(json.dumps(compare(wide_profile, window, wide).to_dict(), allow_nan=False))
    assert data["verdict"] == "stable" and data["threshold"] == 0.2 and data["min_rows"] == 200
    assert [f["name"] for f in data["features"]] == wide.feature_names
    numeric, categorical = data["features"][0], data["features"][-1]
    assert set(numeric["stats"]) == {"psi", "ks", "ks_pvalue", "wasserstein", "mean_shift_std"}
    assert set(categorical["stats"]) == {"psi", "js", "chi2", "chi2_pvalue"}


def test_profile_must_match_the_model(churn, churn_profile, wide):
    window, _ = World(churn).sample(300, T0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not match model wide"):
        compare(churn_profile, window, wide)
    with pytest.raises(ValueError, match="missing feature column"):
        compare(churn_profile, window.drop(columns=["region"]), churn)
    with pytest.raises(ValueError, match="no value in the reference"):
        build_profile(pd.DataFrame({n: [np.nan] * 5 for n in churn.feature_names}), churn)


def test_thread_pool_gives_the_same_report(wide, wide_profile):
    window, _ = World(wide).sample(60_000, T0, np.random.default_rng(0))
    serial = compare(wide_profile, window, wide, workers=1).to_dict()
    assert compare(wide_profile, window, wide, workers=2).to_dict() == serial
