"""The shipped relearn.yaml holds two specialists of different kinds, schemas and worlds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from relearn.config import ConfigError, ModelKind, load_config, parse_config
from relearn.simulate.world import World
from relearn.training.factory import new_classifier
from relearn_dev.demo import drifting_world
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "relearn.yaml")


def test_two_models_of_different_kinds_and_schemas(config) -> None:
    churn, credit = config.model("churn"), config.model("credit_risk")

    assert (churn.kind, credit.kind) == (ModelKind.TORCH_MLP, ModelKind.SKLEARN_HGB)
    assert credit.classes == ["low", "medium", "high"]
    assert not set(churn.feature_names) & set(credit.feature_names)
    assert (churn.simulation.demo_drift, credit.simulation.demo_drift) == ("concept", "both")
    # Volume retraining: off by default, on for the second specialist.
    assert churn.reinforcement.min_new_labelled is None
    assert (credit.reinforcement.min_new_labelled, credit.reinforcement.min_interval_hours) == (
        50,
        24,
    )


def test_the_second_world_follows_its_own_schema_and_a_model_learns_it(config) -> None:
    credit = config.model("credit_risk")
    reference = World(credit).reference_frame(3000)

    assert list(reference.columns) == [*credit.feature_names, "risk"]
    mix = reference["risk"].value_counts(normalize=True)
    assert set(mix.index) == {"low", "medium", "high"} and mix.min() > 0.1
    classifier = new_classifier(credit)
    history = classifier.fit(
        reference[:2400],
        reference["risk"][:2400],
        val_frame=reference[2400:],
        val_labels=reference["risk"][2400:],
    )
    # Learnable enough that the default gates (0.65 accuracy and F1) can bless a retrain.
    assert history.epochs[0]["val_accuracy"] > 0.7 and history.epochs[0]["val_f1"] > 0.65


def test_the_demo_drift_of_each_model_is_its_own(config) -> None:
    credit = config.model("credit_risk")
    end = datetime(2026, 3, 8, tzinfo=UTC)
    start = end - timedelta(days=7)
    world = drifting_world(credit, credit.simulation.demo_drift, start=start, end=end)
    rng = np.random.default_rng(0)

    before, _ = world.sample(2000, start + timedelta(days=1), rng)
    after, _ = world.sample(2000, end - timedelta(hours=1), rng)

    moved = [
        name
        for name in credit.feature_names[:5]
        if abs(after[name].mean() - before[name].mean()) > 0.5 * before[name].std()
    ]
    assert moved, "the covariate part of 'both' moves some numeric features"
    assert len(world.drifts) == 2  # covariate + concept


def test_volume_options_are_validated(tmp_path) -> None:
    model = {"name": "m", "classes": ["a", "b"], "features": [{"name": "x", "type": "numeric"}]}
    for bad in ({"min_new_labelled": 0}, {"min_interval_hours": -1}):
        with pytest.raises(ConfigError, match=r"models\[0\]\.reinforcement\.min_"):
            parse_config({"models": [{**model, "reinforcement": bad}]}, tmp_path / "r.yaml", {})
    with pytest.raises(ConfigError, match=r"simulation\.demo_drift"):
        parse_config(
            {"models": [{**model, "simulation": {"demo_drift": "sideways"}}]},
            tmp_path / "r.yaml",
            {},
        )
