"""The parts of a drift check that need no server: performance decay, options, the HTML page."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from relearn.drift import build_profile, compare
from relearn.drift.html import most_drifted, render_report
from relearn.drift.monitor import CheckOptions
from relearn.drift.performance import check_performance
from relearn.simulate.world import CovariateShift, World

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _labels(correct: int, wrong: int) -> tuple[list[str], list[str]]:
    return ["a"] * (correct + wrong), ["a"] * correct + ["b"] * wrong


def test_a_clear_accuracy_drop_is_decay():
    predicted, actual = _labels(700, 300)  # 0.70 against 0.80
    result = check_performance(predicted, actual, 0.8, min_rows=200, max_drop=0.05)
    assert result.decayed and result.accuracy == pytest.approx(0.7)
    assert result.drop == pytest.approx(0.1) and result.pvalue < 1e-10


def test_a_small_drop_or_a_small_window_is_not_decay():
    # Big window, drop below the effect size: significant, yet not decay.
    predicted, actual = _labels(77_000, 23_000)
    small = check_performance(predicted, actual, 0.8, min_rows=200, max_drop=0.05)
    assert small.pvalue < 1e-10 and not small.decayed
    # Effect size reached, but 30 rows are not evidence.
    predicted, actual = _labels(21, 9)
    noisy = check_performance(predicted, actual, 0.8, min_rows=10, max_drop=0.05)
    assert noisy.drop == pytest.approx(0.1) and noisy.pvalue > 0.01 and not noisy.decayed


def test_unlabelled_rows_are_ignored_and_too_few_give_no_verdict():
    result = check_performance(["a", "a", "b"], ["a", None, None], 0.8, min_rows=200, max_drop=0.05)
    assert result.labelled_rows == 1 and result.accuracy is None and not result.decayed
    assert "no verdict" in result.reason
    unknown = check_performance(["a"], ["b"], None, min_rows=1, max_drop=0.05)
    assert not unknown.decayed and unknown.reason == "no reference accuracy"


def test_rows_without_outcome_in_a_frame_are_not_labelled_wrong():
    """A window frame holds a missing outcome as NaN, not None (pandas' text columns)."""
    records = [("a", "a")] * 300 + [("a", None)] * 300
    window = pd.DataFrame.from_records(records, columns=["predicted", "actual"])
    result = check_performance(
        window["predicted"].tolist(),
        window["actual"].tolist(),
        0.8,
        min_rows=200,
        max_drop=0.05,
    )
    assert (result.labelled_rows, result.accuracy, result.decayed) == (300, 1.0, False)


def test_binomial_pvalue_matches_scipy():
    from scipy.stats import binomtest

    predicted, actual = _labels(150, 50)
    result = check_performance(predicted, actual, 0.85, min_rows=1, max_drop=0.05)
    expected = binomtest(150, 200, 0.85, alternative="less").pvalue
    assert result.pvalue == pytest.approx(expected, rel=1e-9)


def test_check_options_take_config_defaults_and_reject_nonsense(churn_cfg):
    options = CheckOptions.from_config(churn_cfg, threshold=None, window_hours="", dry_run=True)
    assert (options.window_hours, options.threshold, options.dry_run) == (24, 0.2, True)
    with pytest.raises(ValueError, match="threshold"):
        CheckOptions.from_config(churn_cfg, threshold=1.5)
    with pytest.raises(ValueError, match="unknown option"):
        CheckOptions.from_config(churn_cfg, window=3)


@pytest.fixture(scope="module")
def churn_cfg():
    from relearn.config import load_config

    return load_config().model("churn")


def test_html_report_names_the_moved_feature_first(churn_cfg):
    world = World(churn_cfg)
    reference = world.reference_frame(3000)
    profile = build_profile(reference, churn_cfg)
    shifted = world.with_drift(CovariateShift(start=T0, features=["tenure_months"], shift_std=1))
    window, _ = shifted.sample(2000, T0, np.random.default_rng(1))
    report = compare(profile, window, churn_cfg, min_rows=100)
    features = report.to_dict()["features"]
    assert most_drifted(features)[0]["name"] == "tenure_months"
    page = render_report(
        {"verdict": "drifted", "note": "<b>"}, features, profile, window, churn_cfg
    )
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert page.index("tenure_months") < page.index("region")
    assert "<b>note</b>: &lt;b&gt;" in page  # values are escaped
