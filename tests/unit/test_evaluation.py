"""Metrics against values worked out by hand on tiny fixed vectors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from relearn.evaluation import classification_metrics, confusion, log_loss

CLASSES = ["a", "b", "c"]
# Predictions (arg-max): a, b, b, c, c against truth a, a, b, b, c.
Y_TRUE = ["a", "a", "b", "b", "c"]
PROBA = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.3, 0.5],
        [0.1, 0.1, 0.8],
    ]
)


def test_metrics_match_hand_computed_values() -> None:
    metrics = classification_metrics(Y_TRUE, PROBA, CLASSES)

    # precision a 1/1, b 1/2, c 1/2; recall a 1/2, b 1/2, c 1/1; F1 a 2/3, b 1/2, c 2/3.
    assert metrics["n"] == 5
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.5})
    assert metrics["recall"] == pytest.approx({"a": 0.5, "b": 0.5, "c": 1.0})
    assert metrics["support"] == {"a": 2, "b": 2, "c": 1}
    assert metrics["precision_macro"] == pytest.approx(2 / 3)
    assert metrics["recall_macro"] == pytest.approx(2 / 3)
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert metrics["mean_confidence"] == pytest.approx((0.7 + 0.6 + 0.8 + 0.5 + 0.8) / 5)
    expected_log_loss = -sum(map(math.log, [0.7, 0.3, 0.8, 0.3, 0.8])) / 5
    assert metrics["log_loss"] == pytest.approx(expected_log_loss)
    assert log_loss(Y_TRUE, PROBA, CLASSES) == pytest.approx(expected_log_loss)


def test_metrics_are_plain_json_serialisable_python_numbers() -> None:
    metrics = classification_metrics(Y_TRUE, PROBA.astype(np.float32), CLASSES)

    assert json.loads(json.dumps(metrics)) == metrics
    assert type(metrics["n"]) is int
    for key in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "log_loss"):
        assert type(metrics[key]) is float, key
    assert all(type(v) is float for v in metrics["precision"].values())
    assert all(type(v) is int for v in metrics["support"].values())


def test_a_class_absent_from_truth_and_predictions_does_not_drag_the_macro_down() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.4, 0.6, 0.0], [0.1, 0.9, 0.0]])

    metrics = classification_metrics(["a", "b", "a", "b"], proba, CLASSES)

    # a: precision 1/1, recall 1/2, F1 2/3; b: precision 2/3, recall 2/2, F1 4/5; c unused.
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["precision"]["c"] == 0.0
    assert metrics["recall"]["c"] == 0.0
    assert metrics["support"]["c"] == 0


def test_a_class_predicted_but_never_true_counts_as_zero_in_the_macro() -> None:
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.0, 0.8]])

    metrics = classification_metrics(["a", "a"], proba, CLASSES)

    # a: precision 1/1, recall 1/2, F1 2/3; c: predicted once, never right: F1 0.
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 0) / 2)
    assert metrics["recall_macro"] == pytest.approx((1 / 2 + 0) / 2)


def test_log_loss_of_a_zero_probability_is_large_but_finite() -> None:
    metrics = classification_metrics(["a", "b"], np.array([[1.0, 0.0], [1.0, 0.0]]), ["a", "b"])

    assert metrics["log_loss"] == pytest.approx(-math.log(1e-15) / 2)


def test_bad_inputs_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['z'\]"):
        classification_metrics(["a", "z", "b", "b", "c"], PROBA, CLASSES)
    with pytest.raises(ValueError, match=r"shape \(5, 2\)"):
        classification_metrics(Y_TRUE, PROBA, ["a", "b"])
    with pytest.raises(ValueError, match="zero samples"):
        classification_metrics([], np.empty((0, 3)), CLASSES)


def test_confusion_counts_rows_actual_columns_predicted() -> None:
    predicted = ["a", "b", "b", "c", "c"]

    assert confusion(Y_TRUE, predicted, CLASSES) == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert confusion(Y_TRUE, predicted, ["c", "b", "a"]) == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert confusion([], [], ["a", "b"]) == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['x'\]"):
        confusion(["a"], ["x"], CLASSES)
    with pytest.raises(ValueError, match="2 labels but y_pred has 1"):
        confusion(["a", "b"], ["a"], CLASSES)
