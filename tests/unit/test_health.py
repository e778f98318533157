from __future__ import annotations

from datetime import UTC, datetime

from relearn.health import assess

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _window(predictions: int = 100, labelled: int = 50, accuracy: float | None = 0.9) -> dict:
    return {"predictions": predictions, "labelled": labelled, "accuracy": accuracy}


def test_no_champion_is_unhealthy() -> None:
    report = assess("m", None, None, _window(), NOW)
    assert report.status == "unhealthy"
    assert "no champion" in report.reasons[0]


def test_traffic_and_accuracy_within_tolerance_is_healthy() -> None:
    assert assess("m", "1", 0.92, _window(accuracy=0.85), NOW).status == "healthy"


def test_no_traffic_or_accuracy_drop_is_degraded() -> None:
    assert assess("m", "1", 0.9, _window(predictions=0, labelled=0, accuracy=None), NOW).status == (
        "degraded"
    )
    dropped = assess("m", "1", 0.9, _window(accuracy=0.7), NOW)
    assert dropped.status == "degraded"
    assert "0.700" in dropped.reasons[0]


def test_few_labels_do_not_judge_accuracy() -> None:
    assert assess("m", "1", 0.9, _window(labelled=5, accuracy=0.2), NOW).status == "healthy"
