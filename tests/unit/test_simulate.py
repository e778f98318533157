"""The simulated world and traffic driver that the demo, tests and benchmarks rely on."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from relearn.config import ModelConfig
from relearn.simulate import (
    ConceptShift,
    CovariateShift,
    TrafficStats,
    World,
    run_live,
    simulate_traffic,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

START = datetime(2025, 3, 1, tzinfo=UTC)
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
CATEGORICAL = ["contract", "region"]


def churn_config(**simulation: object) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "churn",
            "label": "churned",
            "classes": ["no", "yes"],
            "features": [
                {"name": "tenure_months", "type": "numeric", "min": 0, "max": 240},
                {"name": "monthly_charges", "type": "numeric", "min": 0, "max": 1000},
                {"name": "support_calls", "type": "numeric", "min": 0, "max": 100},
                {"name": "data_usage_gb", "type": "numeric", "min": 0, "max": 5000},
                {
                    "name": "contract",
                    "type": "categorical",
                    "categories": ["monthly", "yearly", "two_year"],
                },
                {
                    "name": "region",
                    "type": "categorical",
                    "categories": ["north", "south", "east", "west"],
                },
            ],
            "simulation": {"seed": 7, "class_weights": [0.65, 0.35], **simulation},
        }
    )


def three_class_config() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "tiers",
            "classes": ["bronze", "silver", "gold"],
            "features": [
                {"name": "spend", "type": "numeric", "min": 0},
                {"name": "visits", "type": "numeric"},
                {"name": "channel", "type": "categorical", "categories": ["web", "app"]},
            ],
            "simulation": {"seed": 3, "class_weights": [0.5, 0.3, 0.2], "label_noise": 0.1},
        }
    )


def fit(frame: pd.DataFrame, labels: np.ndarray) -> object:
    encoder = make_column_transformer(
        (StandardScaler(), NUMERIC), (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)
    )
    return make_pipeline(encoder, LogisticRegression(max_iter=1000)).fit(frame, labels)


@dataclass(frozen=True)
class Prediction:
    prediction_id: uuid.UUID
    predicted_label: str


class RecordingSink:
    """Implements PredictionSink in memory; predicts churn for every monthly contract."""

    def __init__(self) -> None:
        self.batches: list[list[datetime]] = []
        self.unit_ids: list[str] = []
        self.predicted_at: dict[uuid.UUID, datetime] = {}
        self.predicted: dict[uuid.UUID, str] = {}
        # (number of predict batches seen so far, outcomes of this call)
        self.outcome_calls: list[tuple[int, list[tuple[uuid.UUID, str, datetime]]]] = []
        self.flushes = 0

    def predict(
        self, frame: pd.DataFrame, *, unit_ids: list[str], at: list[datetime]
    ) -> list[Prediction]:
        assert len(frame) == len(unit_ids) == len(at)
        self.batches.append(list(at))
        self.unit_ids.extend(unit_ids)
        results = []
        for when, contract in zip(at, frame["contract"], strict=True):
            result = Prediction(uuid.uuid4(), "yes" if contract == "monthly" else "no")
            self.predicted_at[result.prediction_id] = when
            self.predicted[result.prediction_id] = result.predicted_label
            results.append(result)
        return results

    def record_outcomes(self, outcomes: Iterable[tuple[uuid.UUID, str, datetime]]) -> int:
        batch = list(outcomes)
        self.outcome_calls.append((len(self.batches), batch))
        return len(batch)

    def flush(self) -> None:
        self.flushes += 1

    @property
    def outcomes(self) -> list[tuple[uuid.UUID, str, datetime]]:
        return [outcome for _, batch in self.outcome_calls for outcome in batch]


# --- world ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_samples() -> None:
    first, second = World(churn_config()), World(churn_config())
    frame_a, labels_a = first.sample(500, START, np.random.default_rng(11))
    frame_b, labels_b = second.sample(500, START, np.random.default_rng(11))
    pd.testing.assert_frame_equal(frame_a, frame_b)
    assert list(labels_a) == list(labels_b)
    pd.testing.assert_frame_equal(first.reference_frame(300), second.reference_frame(300))


def test_different_seeds_give_different_worlds() -> None:
    one, two = World(churn_config(), seed=1), World(churn_config(), seed=2)
    assert one.feature_means != two.feature_means
    frame_one, _ = one.sample(200, START, np.random.default_rng(0))
    frame_two, _ = two.sample(200, START, np.random.default_rng(0))
    assert not frame_one.equals(frame_two)
    assert not one.reference_frame(200).equals(two.reference_frame(200))


def test_seed_defaults_to_the_simulation_config() -> None:
    assert World(churn_config(seed=5)).seed == 5
    assert World(churn_config(seed=5), seed=9).seed == 9


def test_sample_matches_the_schema() -> None:
    cfg = churn_config()
    frame, labels = World(cfg).sample(2000, START, np.random.default_rng(0))
    assert list(frame.columns) == cfg.feature_names
    for feature in cfg.features:
        column = frame[feature.name]
        if feature.type == "numeric":
            assert column.dtype == np.float64
            assert column.between(feature.min, feature.max).all()
        else:
            assert pd.api.types.is_string_dtype(column)
            assert set(column) == set(feature.categories)
    assert labels.shape == (2000,)
    assert set(labels) == set(cfg.classes)
    assert all(type(label) is str for label in labels)

    reference = World(cfg).reference_frame(100)
    assert list(reference.columns) == [*cfg.feature_names, "churned"]
    assert set(reference["churned"]) <= set(cfg.classes)


def test_sample_rejects_a_wrong_number_of_timestamps() -> None:
    with pytest.raises(ValueError, match="3 timestamps for 4 rows"):
        World(churn_config()).sample(4, [START] * 3, np.random.default_rng(0))


@pytest.mark.parametrize("cfg", [churn_config(), three_class_config()], ids=["churn", "tiers"])
def test_class_mix_follows_class_weights(cfg: ModelConfig) -> None:
    _, labels = World(cfg).sample(20_000, START, np.random.default_rng(1))
    weights = np.asarray(cfg.simulation.class_weights) / sum(cfg.simulation.class_weights)
    observed = [np.mean(labels == name) for name in cfg.classes]
    np.testing.assert_allclose(observed, weights, atol=0.02)


def test_label_is_learnable() -> None:
    world = World(churn_config())
    train = world.reference_frame(5000)
    frame, labels = world.sample(5000, START, np.random.default_rng(2))
    model = fit(train.drop(columns="churned"), train["churned"].to_numpy())
    majority = max(np.mean(labels == name) for name in ("no", "yes"))
    assert model.score(frame, labels) > majority + 0.08


def test_label_noise_caps_what_a_model_can_learn() -> None:
    clean = World(churn_config(label_noise=0.0))
    noisy = World(churn_config(label_noise=0.4))
    scores = []
    for world in (clean, noisy):
        train = world.reference_frame(5000)
        frame, labels = world.sample(5000, START, np.random.default_rng(2))
        model = fit(train.drop(columns="churned"), train["churned"].to_numpy())
        scores.append(model.score(frame, labels))
    assert scores[0] > scores[1] + 0.05


def test_drift_before_its_start_changes_nothing() -> None:
    base = World(churn_config())
    drifted = base.with_drift(
        CovariateShift(START, ["tenure_months"], 2.0), ConceptShift(START, 1.0)
    )
    assert base.drifts == ()
    before = START - timedelta(seconds=1)
    frame_a, labels_a = base.sample(1000, before, np.random.default_rng(4))
    frame_b, labels_b = drifted.sample(1000, before, np.random.default_rng(4))
    pd.testing.assert_frame_equal(frame_a, frame_b)
    assert list(labels_a) == list(labels_b)
    pd.testing.assert_frame_equal(base.reference_frame(500), drifted.reference_frame(500))


def test_covariate_shift_moves_only_the_chosen_features_after_start() -> None:
    base = World(churn_config())
    moved = ["tenure_months", "support_calls"]
    world = base.with_drift(CovariateShift(START, moved, shift_std=1.0))
    rng = np.random.default_rng(5)
    before, _ = world.sample(20_000, START - timedelta(hours=1), rng)
    after, _ = world.sample(20_000, START + timedelta(hours=1), rng)
    for name in NUMERIC:
        mean, std = base.feature_means[name], base.feature_stds[name]
        assert abs(before[name].mean() - mean) / std < 0.05
        expected = 1.0 if name in moved else 0.0
        assert abs((after[name].mean() - mean) / std - expected) < 0.08, name
    for name in CATEGORICAL:
        shares_before = before[name].value_counts(normalize=True)
        shares_after = after[name].value_counts(normalize=True)
        assert (shares_before - shares_after).abs().max() < 0.03


def test_covariate_shift_applies_per_row_timestamp() -> None:
    world = World(churn_config()).with_drift(CovariateShift(START, ["monthly_charges"], 3.0))
    stamps = [START - timedelta(minutes=1), START + timedelta(minutes=1)] * 2000
    frame, _ = world.sample(len(stamps), stamps, np.random.default_rng(6))
    gap = frame["monthly_charges"][1::2].mean() - frame["monthly_charges"][::2].mean()
    assert gap / world.feature_stds["monthly_charges"] == pytest.approx(3.0, abs=0.2)


def test_covariate_shift_by_fraction_is_deterministic() -> None:
    world = World(churn_config())
    shift = CovariateShift(START, 0.5, 1.0)
    chosen = world.covariate_features(shift)
    assert len(chosen) == 2
    assert set(chosen) <= set(NUMERIC)
    assert World(churn_config()).covariate_features(shift) == chosen
    assert world.with_drift(shift).covariate_features(shift) == chosen


@pytest.mark.parametrize("features", [["contract"], ["no_such_feature"]])
def test_covariate_shift_rejects_non_numeric_features(features: list[str]) -> None:
    with pytest.raises(ValueError, match="not a numeric feature"):
        World(churn_config()).with_drift(CovariateShift(START, features, 1.0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: CovariateShift(START, 1.5, 1.0),
        lambda: CovariateShift(START, [], 1.0),
        lambda: ConceptShift(START, 0.0),
    ],
)
def test_invalid_drifts_are_rejected(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_concept_shift_keeps_features_but_breaks_a_pre_drift_model() -> None:
    cfg = churn_config()
    world = World(cfg).with_drift(ConceptShift(START, strength=1.0))
    train, train_labels = world.sample(5000, START - timedelta(days=2), np.random.default_rng(7))
    pre, pre_labels = world.sample(5000, START - timedelta(days=1), np.random.default_rng(8))
    post, post_labels = world.sample(5000, START + timedelta(days=1), np.random.default_rng(9))

    for name in NUMERIC:
        assert stats.ks_2samp(pre[name], post[name]).pvalue > 1e-3, name
    for name in CATEGORICAL:
        table = pd.crosstab(np.r_[np.zeros(5000), np.ones(5000)], pd.concat([pre, post])[name])
        assert stats.chi2_contingency(table).pvalue > 1e-3, name

    model = fit(train, train_labels)
    assert model.score(post, post_labels) < model.score(pre, pre_labels) - 0.1
    # The class mix is re-calibrated, so only accuracy reveals the shift.
    assert np.mean(post_labels == "yes") == pytest.approx(0.35, abs=0.03)


# --- traffic --------------------------------------------------------------------------------


def test_simulate_traffic_reveals_outcomes_only_after_their_delay() -> None:
    sink, messages = RecordingSink(), []
    end, delay = START + timedelta(days=2), timedelta(hours=6)
    result = simulate_traffic(
        World(churn_config()),
        sink,
        start=START,
        end=end,
        predictions_per_hour=60,
        outcome_delay=delay,
        rng=np.random.default_rng(10),
        units=50,
        progress=messages.append,
    )
    assert isinstance(result, TrafficStats)
    assert 2600 < result.predictions < 3160
    assert result.predictions == len(sink.predicted)
    assert len(sink.batches) == 48
    assert result.hours == 48
    assert sink.flushes == 1
    assert all(re.fullmatch(r"unit-00[0-4]\d", unit) for unit in sink.unit_ids)
    assert len(set(sink.unit_ids)) == 50

    outcomes = sink.outcomes
    assert result.outcomes_revealed == len(outcomes) == len({o[0] for o in outcomes})
    for batches_seen, batch in sink.outcome_calls:
        next_batch_start = (
            sink.batches[batches_seen][0] if batches_seen < len(sink.batches) else end
        )
        for prediction_id, actual, arrived in batch:
            assert actual in ("no", "yes")
            waited = arrived - sink.predicted_at[prediction_id]
            assert 0.75 * delay <= waited <= 1.25 * delay
            assert arrived <= next_batch_start  # not revealed before it arrived
            assert arrived <= end
    revealed = {o[0] for o in outcomes}
    for prediction_id, at in sink.predicted_at.items():
        if at + 1.25 * delay <= end:
            assert prediction_id in revealed
    still_pending = [p for p, at in sink.predicted_at.items() if at + 0.75 * delay > end]
    assert still_pending and not revealed.intersection(still_pending)

    correct = sum(sink.predicted[p] == actual for p, actual, _ in outcomes)
    assert result.correct == correct
    assert result.accuracy == pytest.approx(correct / len(outcomes))
    assert [m.split(":")[0] for m in messages] == ["day 1/2", "day 2/2"]
    assert "accuracy" in messages[0]


def test_simulate_traffic_is_reproducible() -> None:
    runs = []
    for _ in range(2):
        sink = RecordingSink()
        simulate_traffic(
            World(churn_config()),
            sink,
            start=START,
            end=START + timedelta(hours=5),
            predictions_per_hour=30,
            outcome_delay=timedelta(hours=1),
            rng=np.random.default_rng(12),
        )
        runs.append((sink.batches, sink.unit_ids, [o[1:] for o in sink.outcomes]))
    assert runs[0] == runs[1]


def test_outcomes_arriving_after_the_end_stay_unrevealed() -> None:
    sink = RecordingSink()
    result = simulate_traffic(
        World(churn_config()),
        sink,
        start=START,
        end=START + timedelta(hours=30),
        predictions_per_hour=20,
        outcome_delay=timedelta(hours=48),
        rng=np.random.default_rng(13),
        progress=lambda _: None,
    )
    assert result.predictions > 0
    assert result.outcomes_revealed == 0
    assert sink.outcome_calls == []
    assert np.isnan(result.accuracy)


def _start_live(
    sink: RecordingSink, stop: threading.Event, interval: float, delay: timedelta
) -> tuple[threading.Thread, list[TrafficStats]]:
    """run_live in a thread at about 10 rows per tick."""
    results: list[TrafficStats] = []

    def target() -> None:
        results.append(
            run_live(
                World(churn_config()),
                sink,
                predictions_per_minute=600 / interval,
                outcome_delay=delay,
                rng=np.random.default_rng(14),
                stop_event=stop,
                interval_seconds=interval,
            )
        )

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, results


def test_run_live_stops_promptly_when_the_event_is_set() -> None:
    sink, stop = RecordingSink(), threading.Event()
    thread, results = _start_live(sink, stop, interval=30.0, delay=timedelta(0))
    deadline = time.monotonic() + 5
    while not sink.outcome_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    stopped = time.monotonic()
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert time.monotonic() - stopped < 1.0
    (result,) = results
    assert result.predictions == len(sink.predicted) > 0
    assert result.outcomes_revealed == result.predictions  # zero delay: revealed at once
    assert sink.flushes == 1


def test_run_live_keeps_sending_batches_at_the_wall_clock() -> None:
    sink, stop = RecordingSink(), threading.Event()
    before = datetime.now(UTC)
    thread, results = _start_live(sink, stop, interval=0.02, delay=timedelta(hours=1))
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert len(sink.batches) >= 3
    assert all(before <= at <= datetime.now(UTC) for batch in sink.batches for at in batch)
    assert results[0].outcomes_revealed == 0  # an hour's delay has not passed
