"""Classification metrics in the shape the gates, MLflow and the store all consume.

Every value is a plain Python ``int``/``float`` (or a dict of them keyed by class label), so
the result can go straight into JSON, a Postgres ``jsonb`` column or ``mlflow.log_metrics``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from relearn.training.calibration import ece_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Probabilities are clipped to [eps, 1] before the log, so one confident mistake costs a
# large but finite loss instead of infinity.
_LOG_LOSS_EPS = 1e-15


def label_indices(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Positions of ``labels`` in ``classes``; a ValueError names any label not configured."""
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted({str(label) for label in labels if label not in index})
    if unknown:
        raise ValueError(f"unknown label(s) {unknown} (classes: {list(classes)})")
    return np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))


def classification_metrics(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro and per-class scores, confidence, calibration and log loss of ``proba``.

    ``ece`` is the top-label expected calibration error (``relearn.training.calibration``):
    how far the confidence is from the accuracy it should predict.

    ``proba`` has one column per entry of ``classes``, in that order; the prediction is the
    arg-max. Macro averages run over the classes that occur in ``y_true`` or in the
    predictions, so a class absent from a small window does not count as a zero; per-class
    precision and recall are reported for every class (0.0 when undefined) together with
    ``support``, so a caller can tell an absent class from a failing one.
    """
    classes = list(classes)
    y_true = list(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if not y_true:
        raise ValueError("cannot compute metrics on zero samples")
    if proba.shape != (len(y_true), len(classes)):
        raise ValueError(
            f"proba must have shape ({len(y_true)}, {len(classes)}), got {proba.shape}"
        )
    truth = label_indices(y_true, classes)
    predicted = proba.argmax(axis=1)
    all_labels = list(range(len(classes)))
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=all_labels, zero_division=0
    )
    present = sorted(set(truth.tolist()) | set(predicted.tolist()))
    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=present, average="macro", zero_division=0
    )
    return {
        "n": len(y_true),
        "accuracy": float(np.mean(truth == predicted)),
        "f1_macro": float(macro_f1),
        "precision_macro": float(macro_p),
        "recall_macro": float(macro_r),
        "precision": {c: float(p) for c, p in zip(classes, precision, strict=True)},
        "recall": {c: float(r) for c, r in zip(classes, recall, strict=True)},
        "support": {c: int(s) for c, s in zip(classes, support, strict=True)},
        "mean_confidence": float(proba.max(axis=1).mean()),
        "ece": ece_of(proba.max(axis=1), truth == predicted),
        "log_loss": _log_loss(truth, proba),
    }


def log_loss(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> float:
    """Mean negative log-probability of the true class (``classification_metrics``' value)."""
    return _log_loss(label_indices(y_true, classes), np.asarray(proba, dtype=np.float64))


def _log_loss(truth: np.ndarray, proba: np.ndarray) -> float:
    true_proba = np.clip(proba[np.arange(len(truth)), truth], _LOG_LOSS_EPS, 1.0)
    return float(-np.log(true_proba).mean())


def confusion(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> list[list[int]]:
    """Counts with rows = actual and columns = predicted class, in ``classes`` order.

    Plain nested lists, so the matrix can be stored as JSON; an empty input gives zeros.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, (label_indices(y_true, classes), label_indices(y_pred, classes)), 1)
    return matrix.tolist()


def macro_f1_of_counts(
    counts: Mapping[tuple[str, str], int], classes: Sequence[str]
) -> float | None:
    """Macro F1 over *every* configured class from (predicted, actual) pair counts; None if empty.

    For figures aggregated in SQL (the A/B arms), where the rows themselves are not at hand.
    Unlike ``classification_metrics``, a class absent from the counts scores 0: both arms are
    judged on the same classes.
    """
    if not counts:
        return None
    pairs = list(counts.items())
    predicted = [p for (p, _), _ in pairs]
    actual = [a for (_, a), _ in pairs]
    _, _, f1, _ = precision_recall_fscore_support(
        actual,
        predicted,
        labels=list(classes),
        average="macro",
        sample_weight=[n for _, n in pairs],
        zero_division=0,
    )
    return float(f1)


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """MLflow metrics are flat floats: per-class dicts become ``<key>_<class>`` entries."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update({f"{prefix}{key}_{k}": float(v) for k, v in value.items()})
        elif isinstance(value, int | float):
            flat[f"{prefix}{key}"] = float(value)
    return flat
