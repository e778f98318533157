"""Retraining options from DAG Params (an explicit mapping) and the typed step results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from relearn.retention.expire import protected_since
from relearn.retraining.options import OPTION_PARAMS, ReinforceOptions, recorded_window
from relearn.retraining.results import TERMINAL, StepResult, StepStatus


def test_only_mapped_params_become_options(model_cfg):
    # drift_monitor's Params include window_hours/threshold (the check's, not the run's).
    params = {"model": "churn", "window_hours": 6, "threshold": 0.3, "epochs": 7, "dry_run": True}
    options = ReinforceOptions.from_params(model_cfg, params, {"source": "drift_triggered"})
    assert (options.epochs, options.dry_run, options.source) == (7, True, "drift_triggered")
    assert options.lookback_days == model_cfg.reinforcement.lookback_days


def test_overrides_win_over_params_and_empty_params_keep_the_config(model_cfg):
    params = {"lookback_days": 30, "learning_rate": None, "request_id": ""}
    options = ReinforceOptions.from_params(model_cfg, params, {"lookback_days": 2})
    assert options.lookback_days == 2
    assert options.learning_rate == model_cfg.training.learning_rate
    assert options.request_id is None


def test_every_mapped_param_names_an_option(model_cfg):
    names = set(ReinforceOptions.from_config(model_cfg).to_record())
    assert set(OPTION_PARAMS.values()) <= names


def test_unknown_overrides_and_bad_values_are_refused(model_cfg):
    with pytest.raises(ValueError, match="unknown option"):
        ReinforceOptions.from_params(model_cfg, {}, {"epoch": 3})
    with pytest.raises(ValueError, match="source must be one of"):
        ReinforceOptions.from_params(model_cfg, {"source": "nightly"})


def test_the_record_round_trip_ignores_what_the_run_pinned_besides(model_cfg):
    options = ReinforceOptions.from_config(model_cfg, epochs=9, source="manual")
    record = {**options.to_record(), "champion_version": "3", "window_end": "2026-03-01"}
    assert ReinforceOptions.from_record(record) == options


def test_results_are_small_json_and_say_when_nothing_is_left():
    result = StepResult(StepStatus.INSUFFICIENT, "run-1", "churn", detail="3 < 10", errors=3)
    xcom = result.to_xcom()
    assert json.loads(json.dumps(xcom)) == {
        "status": "insufficient",
        "retraining_run_id": "run-1",
        "model": "churn",
        "detail": "3 < 10",
        "errors": 3,
    }
    assert result.terminal
    # Insufficient data and a dry run complete the run; "finished" finds it done already.
    assert {StepStatus.INSUFFICIENT, StepStatus.DRY_RUN, StepStatus.FINISHED} == TERMINAL
    assert not StepResult(StepStatus.EVALUATED, "run-1", "churn").terminal


def test_every_reader_of_a_run_row_sees_a_decay_retraining_s_window_in_hours():
    """A decay retraining records lookback_days 2 but reads lookback_hours 60: retention must
    keep those 60 h, and the run's pages must show them."""
    end = datetime(2026, 3, 1, tzinfo=UTC)
    decay = {"window_end": end.isoformat(), "lookback_days": 2, "lookback_hours": 60.0}
    daily = {"window_end": end.isoformat(), "lookback_days": 7}
    assert recorded_window(decay) == (end - timedelta(hours=60), end)
    recorded_before_the_rename = {**daily, "window_hours": 30.0}
    assert recorded_window(recorded_before_the_rename) == (end - timedelta(hours=30), end)
    assert recorded_window(daily) == (end - timedelta(days=7), end)
    assert protected_since([decay]) == end - timedelta(hours=60)
    # A window it cannot read protects everything: better keep than lose.
    assert protected_since([decay, {"window_end": "garbled"}]) == datetime.min.replace(tzinfo=UTC)
