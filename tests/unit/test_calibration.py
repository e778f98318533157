"""Calibration: temperature scaling fitted after every fit, applied to every prediction, saved
with the model; and the calibration error that registration and drift reports record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from relearn.config import ModelConfig, ModelKind, load_config
from relearn.evaluation import classification_metrics, label_indices
from relearn.simulate.world import World
from relearn.training.calibration import (
    CALIBRATION_FILE,
    Calibration,
    expected_calibration_error,
    fit_temperature,
)
from relearn.training.factory import load_classifier, new_classifier

ROOT = Path(__file__).resolve().parents[2]


def _softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _overconfident(rows: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), probabilities claimed as softmax(2.5 z)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(rows, 3))
    truth = np.array([rng.choice(3, p=p) for p in _softmax(logits)])
    return _softmax(2.5 * logits), truth


def test_temperature_undoes_overconfidence_without_changing_any_prediction():
    proba, truth = _overconfident()
    calibration = fit_temperature(proba, truth)
    assert calibration.temperature == pytest.approx(2.5, rel=0.1)
    calibrated = calibration.apply(proba)
    assert (calibrated.argmax(axis=1) == proba.argmax(axis=1)).all()
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert calibration.ece_before > 0.08 > 0.02 > calibration.ece_after
    assert expected_calibration_error(truth, calibrated) == pytest.approx(calibration.ece_after)


def test_ece_by_hand():
    # Bin [0.9, 0.967): two rows at 0.9, one right -> |0.5 - 0.9| weighs 2/4;
    # bin [0.6, 0.667): two rows at 0.6, both right -> |1 - 0.6| weighs 2/4.
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    truth = np.array([0, 1, 0, 0])
    assert expected_calibration_error(truth, proba) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_classification_metrics_report_the_calibration_error():
    proba, truth = _overconfident(rows=2000)
    classes = ["a", "b", "c"]
    metrics = classification_metrics([classes[i] for i in truth], proba, classes)
    assert metrics["ece"] == pytest.approx(expected_calibration_error(truth, proba))


@pytest.fixture(scope="module")
def churn() -> ModelConfig:
    return load_config(ROOT / "relearn.yaml").model("churn")


@pytest.mark.parametrize(
    "kind", [ModelKind.TORCH_MLP, ModelKind.SKLEARN_LOGREG, ModelKind.SKLEARN_HGB]
)
def test_every_kind_is_calibrated_on_its_validation_split_and_keeps_it(churn, kind, tmp_path):
    cfg = churn.model_copy(update={"kind": kind})
    frame = World(cfg).reference_frame(6000)
    train, val, holdout = frame.iloc[:3000], frame.iloc[3000:4000], frame.iloc[4000:]
    names, label = cfg.feature_names, cfg.label
    classifier = new_classifier(cfg)
    classifier.fit(
        train[names], train[label].tolist(), val_frame=val[names], val_labels=val[label].tolist()
    )
    calibration = classifier.calibration
    # The temperature minimises the log loss; the calibration error follows, up to noise.
    assert calibration.rows == len(val)
    assert calibration.ece_after <= calibration.ece_before + 0.01
    raw = classifier._predict_proba(holdout[names])
    served = classifier.predict_proba(holdout[names])
    np.testing.assert_allclose(served, calibration.apply(raw))
    truth = label_indices(holdout[label].tolist(), cfg.classes)
    assert expected_calibration_error(truth, served) < 0.05

    classifier.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert loaded.calibration == calibration
    np.testing.assert_allclose(loaded.predict_proba(holdout[names]), served)

    # A classifier saved before calibration existed is served as it was.
    (tmp_path / "model" / CALIBRATION_FILE).unlink()
    np.testing.assert_allclose(
        load_classifier(tmp_path / "model").predict_proba(holdout[names]), raw
    )


def test_a_fit_without_validation_leaves_probabilities_uncalibrated(churn):
    cfg = churn.model_copy(update={"kind": ModelKind.SKLEARN_LOGREG})
    frame = World(cfg).reference_frame(500)
    classifier = new_classifier(cfg)
    classifier.fit(frame[cfg.feature_names], frame[cfg.label].tolist())
    assert classifier.calibration == Calibration()
