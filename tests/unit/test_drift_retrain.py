"""A decay retraining learns from the rows since the decline: change point, window, lessons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from relearn.config import load_config
from relearn.drift.performance import change_start, check_performance
from relearn.drift.retrain import holdout_rows, labels_wanted, window_overrides
from relearn.retraining.options import ReinforceOptions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _decline(hours: float | None, since: int | None = 900, labelled: int = 900) -> dict:
    """A decayed check's performance: the decline ``hours`` ago, ``since`` labelled rows after
    it (None: it began before the window) of ``labelled`` in the window."""
    return {"changed_hours_ago": hours, "labelled_since_change": since, "labelled_rows": labelled}


@pytest.fixture(scope="module")
def churn_cfg():
    return load_config().model("churn")


def _hits(before: int, after: int, seed: int) -> list[bool]:
    rng = np.random.default_rng(seed)
    return [*(rng.random(before) < 0.8), *(rng.random(after) < 0.45)]


@pytest.mark.parametrize("seed", range(5))
def test_the_change_point_is_where_the_accuracy_fell(seed):
    hits = _hits(600, 60, seed)  # one row a minute: the change at 10:00
    times = [T0 + timedelta(minutes=i) for i in range(len(hits))]
    shuffled = np.random.default_rng(seed).permutation(len(hits))  # the log has no order
    found = change_start([times[i] for i in shuffled], [hits[i] for i in shuffled])
    assert abs(found - (T0 + timedelta(hours=10))) <= timedelta(minutes=15)


@pytest.mark.parametrize("seed", range(5))
def test_a_span_all_after_the_change_has_no_change_point_inside(seed):
    hits = list(np.random.default_rng(seed).random(600) < 0.45)
    times = [T0 + timedelta(minutes=i) for i in range(len(hits))]
    assert change_start(times, hits) == T0


def test_a_decayed_check_says_when_the_decline_began_and_how_many_labels_since():
    hits = _hits(600, 300, 1)
    times = [T0 + timedelta(minutes=i) for i in range(len(hits))]
    actual = ["a" if hit else "b" for hit in hits]
    actual[-1] = None  # its outcome is not in: neither labelled nor counted
    until = T0 + timedelta(hours=16)
    result = check_performance(
        ["a"] * len(hits), actual, 0.8, min_rows=200, max_drop=0.05, predicted_at=times, until=until
    )
    assert result.decayed
    assert result.changed_hours_ago == pytest.approx(6, abs=0.25)
    assert result.labelled_since_change == pytest.approx(299, abs=15)
    assert "decline began 6 h" in result.reason
    stable = check_performance(
        ["a"] * 600, ["a" if h else "b" for h in hits[:600]], 0.8, min_rows=200, max_drop=0.05,
        predicted_at=times[:600], until=until,
    )  # fmt: skip
    assert not stable.decayed and stable.changed_hours_ago is None


def test_a_decay_retraining_learns_from_every_error_since_the_decline(churn_cfg):
    drift = churn_cfg.drift
    overrides = window_overrides(churn_cfg, _decline(30.2))
    assert overrides["lookback_hours"] == 31
    assert overrides["confidence_threshold"] == drift.decay_confidence_threshold == 0
    rate = churn_cfg.training.learning_rate * drift.decay_learning_rate_factor
    assert overrides["learning_rate"] == pytest.approx(rate)
    options = ReinforceOptions.from_config(churn_cfg, source="decay_triggered", **overrides)
    end = T0 + timedelta(days=10)
    assert options.window_start(end) == end - timedelta(hours=31)
    # Never more than the daily run's window; at least an hour.
    longest = 24 * churn_cfg.reinforcement.lookback_days
    assert window_overrides(churn_cfg, _decline(10_000))["lookback_hours"] == longest
    assert window_overrides(churn_cfg, _decline(0.01))["lookback_hours"] == 1


def test_without_a_change_point_or_with_the_option_off_the_drift_window_is_kept(churn_cfg):
    plain = {"lookback_days": churn_cfg.drift.retrain_lookback_days, "fine_tune": True}
    assert window_overrides(churn_cfg, _decline(None)) == plain
    off = churn_cfg.model_copy(
        update={"drift": churn_cfg.drift.model_copy(update={"retrain_from_change": False})}
    )
    assert window_overrides(off, _decline(30)) == plain
    options = ReinforceOptions.from_config(churn_cfg, **plain)
    end = T0 + timedelta(days=10)
    assert options.window_start(end) == end - timedelta(days=plain["lookback_days"])


def test_a_decay_retraining_waits_until_the_rows_since_the_decline_fill_the_holdout(churn_cfg):
    needed = churn_cfg.gates.min_eval_samples / churn_cfg.reinforcement.holdout_fraction

    def check(since_change: int | None):
        hits = _hits(600, 300, 2)
        result = check_performance(["a"] * 900, ["a" if h else "b" for h in hits], 0.8,
                                   min_rows=200, max_drop=0.05)  # fmt: skip
        return result.__class__(**{**result.to_dict(), "labelled_since_change": since_change})

    assert "waiting for outcomes: 120 labelled rows" in labels_wanted(churn_cfg, check(120))
    assert labels_wanted(churn_cfg, check(int(needed))) is None
    assert labels_wanted(churn_cfg, check(None)) is None  # no change point: nothing to wait for


def test_a_decline_older_than_the_window_retrains_at_once_however_few_the_labels(churn_cfg):
    # A low-volume model: 300 labelled rows in the whole window, all after the change. No
    # hour of waiting adds a row since the decline, so the check must not wait for 500.
    hits = list(np.random.default_rng(3).random(300) < 0.5)
    times = [T0 + timedelta(minutes=6 * i) for i in range(len(hits))]
    result = check_performance(
        ["a"] * len(hits), ["a" if h else "b" for h in hits], 0.9, min_rows=200, max_drop=0.05,
        predicted_at=times, until=T0 + timedelta(hours=30),
    )  # fmt: skip
    assert result.decayed
    assert result.changed_hours_ago == pytest.approx(30)
    assert result.labelled_since_change is None
    assert "began before the window" in result.reason
    assert labels_wanted(churn_cfg, result) is None
    # Its retraining reaches back as far as 500 labels need at 10 an hour (not the 30 h that
    # hold 300, whose holdout the gates would refuse every day), within the daily window.
    assert window_overrides(churn_cfg, result.to_dict())["lookback_hours"] == 50
    assert holdout_rows(churn_cfg) == 500


def test_lookback_hours_and_the_decay_learning_rate_are_validated(churn_cfg):
    with pytest.raises(ValueError, match="lookback_hours"):
        ReinforceOptions.from_config(churn_cfg, lookback_hours=0)
    with pytest.raises(ValueError, match="lookback_hours"):
        ReinforceOptions.from_config(churn_cfg, lookback_hours=float("inf"))
    raw = churn_cfg.model_dump()
    raw["drift"]["decay_learning_rate_factor"] = 1000
    raw["training"]["learning_rate"] = 0.01
    with pytest.raises(ValidationError, match="decay_learning_rate_factor is 10"):
        type(churn_cfg).model_validate(raw)
    # The factor only applies to decay retrainings from the change: off, any rate still loads.
    raw["drift"]["retrain_from_change"] = False
    raw["training"]["learning_rate"] = 0.2
    assert type(churn_cfg).model_validate(raw).training.learning_rate == 0.2
