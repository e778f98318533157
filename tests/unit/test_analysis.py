"""Error analysis statistics on constructed data whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from relearn.analysis.calibration import calibration, confusion_pairs
from relearn.analysis.levels import encode, fit_levels
from relearn.analysis.report import (
    AnalysisOptions,
    AnalysisStatus,
    Findings,
    Predictions,
    Role,
    analyze,
)
from relearn.analysis.stats import benjamini_hochberg, excess_p_values, wilson_interval
from relearn.analysis.suggest import SuggestionKind
from relearn.config import ModelConfig

ROWS = 6000


@pytest.fixture
def model_cfg() -> ModelConfig:
    """A schema unlike the demo's: two categorical and three numeric features, three classes."""
    return ModelConfig.model_validate(
        {
            "name": "tickets",
            "classes": ["low", "mid", "high"],
            "features": [
                {"name": "plan", "type": "categorical", "categories": ["basic", "pro", "team"]},
                {"name": "region", "type": "categorical", "categories": ["n", "s", "e", "w"]},
                {"name": "seats", "type": "numeric"},
                {"name": "age_days", "type": "numeric"},
                {"name": "noise", "type": "numeric"},
            ],
        }
    )


def _frame(rng: np.random.Generator, rows: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "region": rng.choice(["n", "s", "e", "w"], rows),
            "seats": rng.integers(1, 200, rows).astype(float),
            "age_days": rng.exponential(300, rows),
            "noise": rng.normal(size=rows),
        }
    )


def _predictions(
    frame: pd.DataFrame, wrong: np.ndarray, rng: np.random.Generator, classes: list[str]
) -> Predictions:
    actual = rng.choice(classes, len(frame))
    shifted = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}
    predicted = [shifted[a] if w else a for a, w in zip(actual, wrong, strict=True)]
    confidence = np.where(
        wrong, rng.uniform(0.5, 1.0, len(frame)), rng.uniform(0.5, 1.0, len(frame))
    )
    return Predictions(frame, actual.tolist(), predicted, confidence)


def _planted(frame: pd.DataFrame) -> np.ndarray:
    """The bad segment: team plans that are young (the first quintile of ``age_days``)."""
    young = frame["age_days"] < frame["age_days"].quantile(0.2)
    return ((frame["plan"] == "team") & young).to_numpy()


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_benjamini_hochberg_and_binomial_p_values():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005]))
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # P(X >= 5) for X ~ Binomial(10, 0.5) = 638 / 1024.
    assert excess_p_values(np.array([5]), np.array([10]), 0.5)[0] == pytest.approx(638 / 1024)


def test_a_planted_bad_segment_is_found_first(model_cfg):
    rng = np.random.default_rng(1)
    frame = _frame(rng)
    bad = _planted(frame)
    wrong = np.where(bad, rng.random(ROWS) < 0.5, rng.random(ROWS) < 0.1)
    findings = analyze(model_cfg, _predictions(frame, wrong, rng, model_cfg.classes))

    assert findings.status is AnalysisStatus.ANALYSED
    assert findings.tested_segments > 100
    top = findings.segments[0]
    features = {c.feature for c in top.conditions}
    assert "plan" in features, top.description
    assert "plan=team" in top.description
    for segment in findings.segments:
        assert segment.q_value <= 0.05
        assert segment.lift > 1
    # region, seats and noise are random: BH lets at most ~5 % of the discoveries be false,
    # and none of them reaches the top five.
    unrelated = [
        s for s in findings.segments if not {c.feature for c in s.conditions} & {"plan", "age_days"}
    ]
    assert len(unrelated) <= 0.1 * len(findings.segments), unrelated
    assert not set(unrelated) & set(findings.segments[:5])
    pair = next(s for s in findings.segments if len(s.conditions) == 2)
    assert {c.feature for c in pair.conditions} == {"plan", "age_days"}
    assert pair.error_rate == pytest.approx(0.5, abs=0.1)
    assert findings.suggestions[0].kind is SuggestionKind.SEGMENT


def test_random_errors_find_no_segment_at_the_bh_level(model_cfg):
    rng = np.random.default_rng(2)
    frame = _frame(rng)
    wrong = rng.random(ROWS) < 0.2
    findings = analyze(model_cfg, _predictions(frame, wrong, rng, model_cfg.classes))

    assert findings.tested_segments > 100
    # Unadjusted, some of the many segments look significant; adjusted, none is reported.
    assert findings.segments == []
    assert findings.suggestions[0].kind is SuggestionKind.NONE_FOUND
    assert "no segment errs significantly" in findings.suggestions[0].text


def test_the_candidate_fixing_a_segment_is_said(model_cfg):
    rng = np.random.default_rng(3)
    frame = _frame(rng)
    bad = _planted(frame)
    base = rng.random(ROWS)
    champion = _predictions(frame, np.where(bad, base < 0.5, base < 0.1), rng, model_cfg.classes)
    # The candidate errs at the base rate everywhere, on the same rows: it fixes the segment.
    candidate_wrong = base < 0.1
    candidate = Predictions(
        frame,
        champion.actual,
        [
            ("low" if a != "low" else "mid") if w else a
            for a, w in zip(champion.actual, candidate_wrong, strict=True)
        ],
        champion.confidence,
    )
    findings = analyze(model_cfg, champion, compared=(Role.CANDIDATE, candidate))

    top = findings.segments[0]
    assert top.compared is not None and top.compared.rows == top.rows
    assert top.compared.error_rate < top.error_rate - 0.2
    text = findings.suggestions[0].text
    assert f"on {top.rows:,} rows" in text
    assert "the candidate fixes" in text


def test_calibration_of_an_overconfident_model():
    rng = np.random.default_rng(4)
    confidence = np.full(2000, 0.9)
    correct = rng.random(2000) < 0.6
    found = calibration(confidence, correct)
    assert found.ece == pytest.approx(0.3, abs=0.03)
    assert found.gap > 0
    assert [b.low for b in found.bins] == [0.9]

    calibrated = rng.uniform(0, 1, 20_000)
    assert calibration(calibrated, rng.random(20_000) < calibrated).ece < 0.03


def test_confusion_pairs_count_and_share():
    pairs = confusion_pairs(["a", "a", "a", "b", "c", "c"], ["b", "b", "a", "a", "c", "a"])
    assert [(p.actual, p.predicted, p.count) for p in pairs] == [
        ("a", "b", 2),
        ("b", "a", 1),
        ("c", "a", 1),
    ]
    assert pairs[0].share_of_errors == pytest.approx(0.5)
    assert pairs[0].share_of_class == pytest.approx(2 / 3)


def test_levels_are_total_on_hostile_values(model_cfg):
    frame = pd.DataFrame(
        {
            "plan": ["basic", None, 7, "pro", float("nan"), "ünïcode"],
            "region": ["n"] * 6,
            "seats": [1.0, "many", None, float("inf"), 3.0, True],
            "age_days": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    levels = fit_levels(model_cfg, frame, bins=5, max_categories=2)
    assert [lv.feature for lv in levels] == ["plan", "region", "seats", "age_days"]
    codes = encode(levels, frame.assign(plan=["team", None, "basic", "x", "pro", None]))
    plan = levels[0]
    assert [plan.labels[c] for c in codes[:, 0]][:2] == ["plan: other", "plan missing"]
    seats = levels[2]
    assert seats.labels[codes[1, 2]] == "seats missing"
    # A frame without a configured feature: every row is missing there.
    assert (encode(levels, frame.drop(columns=["seats"]))[:, 2] == seats.size - 1).all()


def test_too_few_rows_is_insufficient_data_and_findings_round_trip(model_cfg):
    rng = np.random.default_rng(5)
    frame = _frame(rng, 50)
    few = analyze(model_cfg, _predictions(frame, rng.random(50) < 0.2, rng, model_cfg.classes))
    assert few.status is AnalysisStatus.INSUFFICIENT_DATA
    assert few.segments == [] and few.calibration is None

    frame = _frame(rng)
    bad = _planted(frame)
    wrong = np.where(bad, rng.random(ROWS) < 0.5, rng.random(ROWS) < 0.1)
    options = AnalysisOptions(pairs=False)
    findings = analyze(
        model_cfg, _predictions(frame, wrong, rng, model_cfg.classes), options=options
    )
    assert all(len(s.conditions) == 1 for s in findings.segments)
    stored = json.loads(json.dumps(findings.to_dict()))
    assert Findings.from_dict(stored) == findings
