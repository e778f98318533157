"""The ``sklearn_hgb`` kind: native categoricals, early stopping, refits, save/load, pyfunc.

Same synthetic churn frame as ``test_training``: the label depends on ``support_calls`` and
``contract``, so a working model must clearly beat the majority rate.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from relearn.config import ConfigError, ModelConfig, parse_config
from relearn.training.factory import load_classifier, new_classifier
from relearn.training.preprocessing import feature_frame
from relearn.training.pyfunc import log_pyfunc_model, pip_requirements
from relearn.training.sklearn_hgb import SklearnHGBClassifier, encoded_matrix
from tests.unit.test_training import N_TRAIN, churn_config, majority_rate, synthetic


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    return churn_config(kind="sklearn_hgb")


@pytest.fixture(scope="module")
def data(cfg: ModelConfig) -> tuple[pd.DataFrame, list[str], pd.DataFrame, list[str]]:
    frame, labels = synthetic(cfg, n=1200)
    return frame[:N_TRAIN], labels[:N_TRAIN], frame[N_TRAIN:], labels[N_TRAIN:]


def test_categories_are_codes_in_config_order_unknown_and_missing_are_nan(
    cfg: ModelConfig,
) -> None:
    frame = pd.DataFrame(
        {
            "tenure_months": [1.0, np.nan],
            "monthly_charges": [2.0, 3.0],
            "support_calls": [3.0, 4.0],
            "data_usage_gb": [4.0, 5.0],
            "contract": ["two_year", "weekly"],
            "region": ["north", None],
        }
    )

    matrix = encoded_matrix(frame, cfg)

    assert matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix[0], [1.0, 2.0, 3.0, 4.0, 2.0, 0.0])
    assert np.isnan(matrix[1, [0, 4, 5]]).all()  # missing numeric, unknown and missing category


def test_learns_with_native_categoricals_and_early_stopping(cfg: ModelConfig, data: tuple) -> None:
    train, y, val, val_y = data
    classifier = new_classifier(cfg)

    history = classifier.fit(train, y, val_frame=val, val_labels=val_y)

    assert isinstance(classifier, SklearnHGBClassifier)
    estimator = classifier.estimator
    assert list(estimator.is_categorical_) == [False] * 4 + [True] * 2
    assert estimator.do_early_stopping_
    assert history.best_epoch == 1 and len(history.epochs) == 1
    entry = history.epochs[0]
    assert entry["iterations"] == estimator.n_iter_ < cfg.training.hgb.max_iter  # stopped early
    assert entry["val_accuracy"] > majority_rate(val_y) + 0.2
    proba = classifier.predict_proba(val)
    assert proba.shape == (len(val), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


def test_hyperparameters_come_from_training_hgb(data: tuple) -> None:
    train, y, _, _ = data
    cfg = churn_config(
        kind="sklearn_hgb",
        training={"hgb": {"max_iter": 7, "learning_rate": 0.3, "max_leaf_nodes": 5}},
    )
    classifier = new_classifier(cfg)

    # Fewer rows than internal early stopping needs and no validation set: all 7 iterations.
    history = classifier.fit(train, y, epochs=500, learning_rate=1e-6)

    estimator = classifier.estimator
    assert (estimator.max_iter, estimator.learning_rate, estimator.max_leaf_nodes) == (7, 0.3, 5)
    assert not estimator.do_early_stopping_
    assert history.epochs[0]["iterations"] == 7
    assert set(history.epochs[0]) == {"epoch", "train_loss", "iterations", "seconds"}


def test_fit_again_refits_from_scratch(cfg: ModelConfig, data: tuple) -> None:
    train, y, val, val_y = data
    refitted = new_classifier(cfg)
    refitted.fit(val, val_y)
    refitted.fit(train, y)
    fresh = new_classifier(cfg)
    fresh.fit(train, y)

    np.testing.assert_array_equal(refitted.predict_proba(val), fresh.predict_proba(val))


def test_save_and_load_round_trip(cfg: ModelConfig, data: tuple, tmp_path) -> None:
    train, y, val, val_y = data
    classifier = new_classifier(cfg)
    classifier.fit(train, y, val_frame=val, val_labels=val_y)

    classifier.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")

    assert type(loaded) is SklearnHGBClassifier
    assert loaded.model_cfg.training.hgb == cfg.training.hgb
    assert np.array_equal(loaded.predict_proba(val), classifier.predict_proba(val))


def test_pyfunc_serves_the_same_probabilities(cfg: ModelConfig, data: tuple, tmp_path) -> None:
    train, y, val, _ = data
    classifier = new_classifier(cfg)
    classifier.fit(train, y)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        experiment = mlflow.create_experiment("relearn-hgb", artifact_location=tmp_path.as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_pyfunc_model(classifier, cfg, registered_model_name="churn_hgb")
        served = mlflow.pyfunc.load_model(info.model_uri).predict(feature_frame(val, cfg))
    finally:
        mlflow.set_tracking_uri(None)

    assert list(served.columns) == ["no", "yes"]
    assert np.array_equal(served.to_numpy(), classifier.predict_proba(val))
    assert not [r for r in pip_requirements(cfg) if r.startswith("torch")]


def test_a_class_missing_from_training_gets_a_zero_column() -> None:
    three = churn_config(
        kind="sklearn_hgb", classes=["no", "yes", "maybe"], simulation={"class_weights": None}
    )
    frame, labels = synthetic(three, n=200)
    classifier = new_classifier(three)
    # The validation set holds the unseen class: early stopping scores the other rows only.
    classifier.fit(frame, labels, val_frame=frame[:20], val_labels=["maybe", *labels[1:20]])

    proba = classifier.predict_proba(frame)

    assert proba.shape == (200, 3)
    assert (proba[:, 2] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


def test_too_many_categories_for_hgb_is_a_config_error(tmp_path) -> None:
    model = {
        "name": "wide_cats",
        "kind": "sklearn_hgb",
        "classes": ["a", "b"],
        "features": [
            {"name": "city", "type": "categorical", "categories": [f"c{i}" for i in range(300)]}
        ],
    }
    with pytest.raises(ConfigError, match=r"at most 255 categories.*\['city'\]"):
        parse_config({"models": [model]}, tmp_path / "relearn.yaml", environ={})
    # The other kinds one-hot encode: no such limit.
    parse_config({"models": [{**model, "kind": "sklearn_logreg"}]}, tmp_path / "r.yaml", {})
