"""Pure parts of the page's read models: intervals, drift ranking, run windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relearn.dashboard.abtest import wilson_interval
from relearn.dashboard.trends import bucket_start, most_drifted


def test_wilson_interval_covers_the_rate_and_stays_in_bounds():
    low, high = wilson_interval(80, 100)
    assert low == pytest.approx(0.7112, abs=1e-3) and high == pytest.approx(0.8666, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (None, None)


def test_most_drifted_puts_drifted_features_first_then_by_psi():
    features = [
        {"name": "a", "assessed": True, "drifted": False, "stats": {"psi": 0.9}},
        {"name": "b", "assessed": True, "drifted": True, "stats": {"psi": 0.3}},
        {"name": "c", "assessed": False, "drifted": False, "stats": {}},
        {"name": "d", "assessed": True, "drifted": True, "stats": {"psi": 0.5}},
    ]
    assert [f.name for f in most_drifted(features)] == ["d", "b", "a"]


def test_buckets_start_on_the_hour_or_the_day():
    moment = datetime(2026, 3, 4, 15, 42, 7, tzinfo=UTC)
    assert bucket_start(moment, "hour") == datetime(2026, 3, 4, 15, tzinfo=UTC)
    assert bucket_start(moment, "day") == datetime(2026, 3, 4, tzinfo=UTC)
