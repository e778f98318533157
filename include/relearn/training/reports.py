"""PNG reports of a training run: the learning curve and the confusion matrix.

They are built on ``matplotlib.figure.Figure`` directly, without pyplot, so no global figure
state or GUI backend is involved and they are safe in Airflow workers and threads.

matplotlib is imported when a report is drawn, not with this module: the ``train`` step draws
after fitting, and matplotlib loaded at the top (about 25 MB resident) would count at the
step's peak, which is reached while fitting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.figure import Figure

    from relearn.training.classifier import TrainingHistory

_DPI = 100
_BEST_COLOUR = "tab:green"


def training_curve_png(history: TrainingHistory, path: Path) -> Path:
    """Losses (left) and validation accuracy and F1 (right) per epoch, best epoch marked.

    A history without ``val_*`` entries gets the loss panel only; a one-epoch history (the
    scikit-learn kind) is drawn as points, so it still shows something.
    """
    if not history.epochs:
        raise ValueError("cannot draw a training curve of a history without epochs")
    # Deliberately lazy: memory per step (see the module docstring).
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [int(entry["epoch"]) for entry in history.epochs]
    has_validation = "val_loss" in history.epochs[0]
    figure = Figure(figsize=(11 if has_validation else 6, 4.5), layout="constrained")
    axes = figure.subplots(1, 2 if has_validation else 1, squeeze=False)[0]
    panels = [
        (axes[0], "loss", ["train_loss", "val_loss"] if has_validation else ["train_loss"]),
    ]
    if has_validation:
        panels.append((axes[1], "validation score", ["val_accuracy", "val_f1"]))
    for ax, ylabel, keys in panels:
        for key in keys:
            ax.plot(epochs, [entry[key] for entry in history.epochs], marker="o", label=key)
        if history.best_epoch:
            ax.axvline(
                history.best_epoch,
                color=_BEST_COLOUR,
                linestyle="--",
                label=f"best epoch ({history.best_epoch})",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        # Ticks on whole epochs only, also when there is just one.
        ax.set_xlim(0.5, epochs[-1] + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(f"training curve, {len(epochs)} epoch(s)")
    return _save(figure, path)


def confusion_matrix_png(
    matrix: list[list[int]],
    classes: list[str],
    path: Path,
    title: str = "confusion matrix",
) -> Path:
    """A heatmap of ``relearn.evaluation.confusion`` output (rows actual, columns predicted)."""
    counts = np.asarray(matrix, dtype=np.int64)
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(
            f"matrix has shape {counts.shape}, expected ({len(classes)}, {len(classes)}) "
            f"for classes {classes}"
        )
    # Deliberately lazy: memory per step (see the module docstring).
    from matplotlib.figure import Figure

    size = 2.5 + 0.8 * len(classes)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=ax, label="rows")
    # White text on the dark half of the colour scale, black on the light half.
    threshold = counts.max() / 2
    for (row, column), count in np.ndenumerate(counts):
        ax.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{title} (n={int(counts.sum())})")
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI)
    return path
