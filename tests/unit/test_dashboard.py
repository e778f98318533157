"""Pure parts of the page's read models: intervals, drift ranking, run links, health issues,
analysis segments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from relearn.analysis.segments import Condition, Rate, Segment
from relearn.dashboard.abtest import wilson_interval
from relearn.dashboard.analysis import _segment
from relearn.dashboard.health import HealthIssue, _issues
from relearn.dashboard.runs import _run
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


def _run_row(**changes):
    row = {
        "id": uuid.uuid4(),
        "source": "dag",
        "status": "completed",
        "dataset_size": 10,
        "metrics": {},
        "params": {},
        "model_version": "2",
        "started_at": None,
        "completed_at": None,
        "error_message": None,
        "log_url": None,
        "airflow_url": None,
        "dag_id": "auto_reinforcement",
        "trigger_key": "manual__2026-03-04T00:00:00+00:00",
        "mlflow_run_id": None,
        "request_id": None,
        "created_at": datetime(2026, 3, 4, tzinfo=UTC),
    }
    return {**row, **changes}


def test_a_run_links_to_the_dag_run_page_it_recorded():
    url = "https://airflow.example/dags/auto_reinforcement/runs/r1"
    run = _run(_run_row(airflow_url=url), "http://mlflow", None)
    assert (run.airflow_url, run.airflow_run_path) == (url, None)


def test_an_older_run_without_a_recorded_url_gets_the_computed_path():
    run = _run(_run_row(), "http://mlflow", None)
    assert run.airflow_url is None
    assert run.airflow_run_path == (
        "dags/auto_reinforcement/runs/manual__2026-03-04T00%3A00%3A00%2B00%3A00"
    )
    assert _run(_run_row(dag_id=None), "http://mlflow", None).airflow_run_path is None


def test_health_issues_are_read_totally_from_the_stored_json():
    stored = [
        {"part": "latency", "issue": "slow", "recommendation": "scale out"},
        "not an issue",
        {"part": "error"},
    ]
    assert _issues(stored) == [
        HealthIssue("latency", "slow", "scale out"),
        HealthIssue("error", "", ""),
    ]
    assert _issues(None) == []


def test_a_segment_shows_the_compared_models_error_rate_on_it():
    found = Segment(
        conditions=(Condition("plan", 1, "plan = basic"), Condition("age", 0, "age < 30")),
        rows=200,
        errors=60,
        error_rate=0.3,
        ci_low=0.24,
        ci_high=0.37,
        lift=2.0,
        p_value=0.001,
        q_value=0.01,
        excess_errors=30.0,
        compared=Rate("candidate", 200, 20),
    )
    view = _segment(found)
    assert view.description == "plan = basic and age < 30"
    assert (view.error_rate, view.ci_low, view.ci_high) == (0.3, 0.24, 0.37)
    assert (view.compared_role, view.compared_error_rate) == ("candidate", 0.1)
