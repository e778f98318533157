"""The training report PNGs: valid images for every history shape a classifier produces."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from relearn.training.classifier import TrainingHistory
from relearn.training.reports import confusion_matrix_png, training_curve_png

if TYPE_CHECKING:
    from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000  # axes, text and lines, not an empty canvas


def epoch(number: int, loss: float, *, validation: bool = True) -> dict[str, float]:
    entry = {"epoch": number, "train_loss": loss, "seconds": 0.1}
    if validation:
        entry |= {
            "val_loss": loss + 0.05,
            "val_accuracy": 1 - loss / 2,
            "val_f1": 0.9 - loss / 2,
            "val_precision": 0.9 - loss / 3,
            "val_recall": 0.9 - loss / 4,
        }
    return entry


@pytest.mark.parametrize(
    "history",
    [
        TrainingHistory([epoch(i, 0.7 / i) for i in range(1, 8)], best_epoch=5),
        TrainingHistory([epoch(1, 0.4)], best_epoch=1),
        TrainingHistory([epoch(i, 0.7 / i, validation=False) for i in range(1, 4)], best_epoch=3),
        TrainingHistory([epoch(1, 0.4, validation=False)], best_epoch=1),
    ],
    ids=["torch-with-validation", "sklearn-one-epoch", "no-validation", "one-epoch-no-val"],
)
def test_training_curve_png(history: TrainingHistory, tmp_path: Path) -> None:
    path = training_curve_png(history, tmp_path / "reports" / "curve.png")

    assert path == tmp_path / "reports" / "curve.png"
    assert_png(path)


def test_training_curve_needs_an_epoch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without epochs"):
        training_curve_png(TrainingHistory(), tmp_path / "curve.png")


@pytest.mark.parametrize("classes", [["no", "yes"], ["low", "medium", "high", "very_high"]])
def test_confusion_matrix_png(classes: list[str], tmp_path: Path) -> None:
    matrix = [[10 * (r == c) + r + c for c in range(len(classes))] for r in range(len(classes))]

    path = confusion_matrix_png(matrix, classes, tmp_path / "confusion.png", title="holdout")

    assert path == tmp_path / "confusion.png"
    assert_png(path)


def test_confusion_matrix_png_of_zeros_and_a_wrong_shape(tmp_path: Path) -> None:
    assert_png(confusion_matrix_png([[0, 0], [0, 0]], ["no", "yes"], tmp_path / "zeros.png"))
    with pytest.raises(ValueError, match=r"expected \(3, 3\)"):
        confusion_matrix_png([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "bad.png")
