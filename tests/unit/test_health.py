"""The health score's pure decision: each part, each status boundary, issues naming facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from relearn.health import usual_volume
from relearn.monitoring.score import (
    ABFact,
    DriftFact,
    Facts,
    HealthStatus,
    Observations,
    Part,
    RunFact,
    assess,
    availability,
    error_score,
    latency_score,
    status_of,
)

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
GOOD = Observations(
    model_name="m",
    champion_version="3",
    load_error=None,
    predictions=100,
    usual_predictions=100.0,
    labelled=50,
    accuracy=0.9,
    reference_accuracy=0.9,
    latency_p95_ms=20.0,
    latency_budget_ms=100.0,
    window_hours=24,
)


def test_a_model_doing_as_usual_scores_1_and_is_healthy() -> None:
    result = assess(GOOD, Facts())
    assert (result.score, result.status, result.issues) == (1.0, HealthStatus.HEALTHY, ())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"champion_version": None}, 0.0),
        ({"load_error": "OSError: gone"}, 0.0),
        ({"predictions": 100, "usual_predictions": 100.0}, 1.0),
        ({"predictions": 50, "usual_predictions": 100.0}, 1.0),  # half the usual is enough
        ({"predictions": 40, "usual_predictions": 100.0}, 0.8),
        ({"predictions": 25, "usual_predictions": 100.0}, 0.5),
        ({"predictions": 0, "usual_predictions": 100.0}, 0.0),
        ({"predictions": 5, "usual_predictions": None}, 1.0),  # no history: any traffic
        ({"predictions": 0, "usual_predictions": None}, 0.0),
    ],
)
def test_availability(change: dict, expected: float) -> None:
    assert availability(replace(GOOD, **change)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"accuracy": 0.95}, 1.0),  # better than registered
        ({"accuracy": 0.85}, 0.8),  # 0.05 below: the bar
        ({"accuracy": 0.775}, 0.5),
        ({"accuracy": 0.62, "reference_accuracy": 0.8}, 0.28),
        ({"accuracy": 0.3}, 0.0),
        ({"accuracy": 0.3, "labelled": 29}, 1.0),  # too few labels: not judged
        ({"accuracy": None, "labelled": 0}, 1.0),
        ({"reference_accuracy": None, "accuracy": 0.3}, 1.0),  # nothing to compare with
    ],
)
def test_error_score(change: dict, expected: float) -> None:
    assert error_score(replace(GOOD, **change)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("p95", "expected"),
    [(None, 1.0), (20.0, 1.0), (100.0, 1.0), (120.0, 0.8), (150.0, 0.5), (200.0, 0.0), (900, 0)],
)
def test_latency_score(p95: float | None, expected: float) -> None:
    assert latency_score(replace(GOOD, latency_p95_ms=p95)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (1.0, HealthStatus.HEALTHY),
        (0.8, HealthStatus.HEALTHY),
        (0.799999, HealthStatus.DEGRADED),
        (0.5, HealthStatus.DEGRADED),
        (0.499999, HealthStatus.UNHEALTHY),
        (0.0, HealthStatus.UNHEALTHY),
    ],
)
def test_status_boundaries(score: float, status: HealthStatus) -> None:
    assert status_of(score) is status


def test_the_weights_put_boundaries_where_they_belong() -> None:
    # Availability 0.5 alone: 0.4 * 0.5 + 0.4 + 0.2 = 0.8, exactly healthy despite floats.
    half = assess(replace(GOOD, predictions=25), Facts())
    assert (half.score, half.status) == (0.8, HealthStatus.HEALTHY)
    assert [i.part for i in half.issues] == [Part.AVAILABILITY]
    # No traffic at all (nothing else wrong): 0.6, degraded -- as before the score.
    silent = assess(replace(GOOD, predictions=0), Facts())
    assert (silent.score, silent.status) == (0.6, HealthStatus.DEGRADED)
    # Accuracy collapsed and latency at twice the budget: 0.4, unhealthy.
    broken = assess(replace(GOOD, accuracy=0.5, latency_p95_ms=200.0), Facts())
    assert (broken.score, broken.status) == (0.4, HealthStatus.UNHEALTHY)
    assert [i.part for i in broken.issues] == [Part.ERROR, Part.LATENCY]


def test_no_champion_scores_0_and_says_how_to_get_one() -> None:
    result = assess(replace(GOOD, champion_version=None, predictions=0), Facts())
    assert (result.score, result.status) == (0.0, HealthStatus.UNHEALTHY)
    (issue,) = result.issues
    assert issue.issue == "no champion version in the registry"
    assert "relearn bootstrap --model m" in issue.recommendation


def test_a_champion_that_does_not_load_is_unhealthy_and_named() -> None:
    result = assess(replace(GOOD, load_error="MlflowException: no artifacts"), Facts())
    assert result.status is HealthStatus.UNHEALTHY
    assert "version 3 does not load: MlflowException" in result.issues[0].issue
    assert "rollback --model m --to previous" in result.issues[0].recommendation


def test_the_accuracy_issue_quotes_drift_retraining_and_ab_state() -> None:
    facts = Facts(
        drift=DriftFact(
            "decayed", datetime(2026, 11, 1, 10, tzinfo=UTC), 0.41, ("tenure",), "retrain"
        ),
        run=RunFact("run-1", "drift_triggered", "completed", NOW, "4", True, None),
        abtest=ABFact("running", "4", 25, None),
    )
    result = assess(replace(GOOD, accuracy=0.62, reference_accuracy=0.8), facts)
    (issue,) = result.issues
    assert issue.part is Part.ERROR
    assert issue.issue == "accuracy 0.62 vs 0.80 registered on 50 labelled predictions"
    text = issue.recommendation
    assert "drift_monitor found decayed in tenure (score 0.41) at 2026-11-01 10:00 UTC" in text
    assert "retraining run run-1 (drift_triggered, 2026-11-01 12:00 UTC) blessed version 4" in text
    assert "A/B test of version 4 is running at 25 % of traffic" in text
    assert text.endswith("let the A/B test decide")


def test_without_a_retraining_under_way_the_recommendation_is_to_retrain() -> None:
    facts = Facts(run=RunFact("run-2", "auto_daily", "failed", NOW, None, None, "OOM"))
    (issue,) = assess(replace(GOOD, accuracy=0.7), facts).issues
    assert "failed: OOM" in issue.recommendation
    assert "relearn request create --model m" in issue.recommendation


def test_the_traffic_issue_gives_both_volumes() -> None:
    (issue,) = assess(replace(GOOD, predictions=10, usual_predictions=300.0), Facts()).issues
    assert issue.issue.startswith("10 predictions in the last 24 h vs 300 usually")


def test_the_latency_issue_gives_p95_and_budget() -> None:
    (issue,) = assess(replace(GOOD, latency_p95_ms=150.0), Facts()).issues
    assert issue.issue == "p95 latency 150 ms vs a budget of 100 ms"


def test_usual_volume_is_the_median_of_the_earlier_days() -> None:
    assert usual_volume([100, 0, 120, 90, 300, 110, 95]) == 100
    assert usual_volume([0] * 7) is None
