"""Which days retention may expire: older than ``retention.days`` and outside running windows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from relearn.config import parse_config
from relearn.retention.expire import cutoff_day, protected_since

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def window(end: str, lookback: int) -> dict:
    return {"window_end": end, "lookback_days": lookback}


def test_days_older_than_the_retention_are_expired() -> None:
    assert cutoff_day(NOW, 90, []) == date(2026, 3, 3)


def test_a_running_window_moves_the_cutoff_back_to_its_first_day() -> None:
    windows = [window("2026-02-20T12:00:00+00:00", 7), window("2026-05-31T00:00:00+00:00", 7)]
    assert protected_since(windows) == datetime(2026, 2, 13, 12, tzinfo=UTC)
    assert cutoff_day(NOW, 90, windows) == date(2026, 2, 13)


def test_a_recent_running_window_leaves_the_cutoff_alone() -> None:
    assert cutoff_day(NOW, 90, [window("2026-05-31T00:00:00+00:00", 7)]) == date(2026, 3, 3)


@pytest.mark.parametrize(
    "params",
    [{}, {"window_end": "yesterday", "lookback_days": 7}, {"window_end": None}, window("x", 1)],
)
def test_a_running_run_whose_window_cannot_be_read_protects_everything(params) -> None:
    assert cutoff_day(NOW, 90, [params]) == date.min


def test_retention_is_configured_per_model_and_by_environment(tmp_path) -> None:
    raw = {
        "models": [
            {
                "name": "churn",
                "classes": ["a", "b"],
                "features": [{"name": "x", "type": "numeric"}],
                "retention": {"days": 30},
            }
        ]
    }
    config = parse_config(raw, tmp_path / "relearn.yaml", environ={})
    assert (config.model("churn").retention.days, config.model("churn").retention.batch_size) == (
        30,
        5000,
    )
    overridden = parse_config(
        raw, tmp_path / "relearn.yaml", environ={"RELEARN__RETENTION__HEALTH_CHECK_DAYS": "7"}
    )
    assert overridden.model("churn").retention.health_check_days == 7
