"""The decision-quality replay as a picture: daily accuracy of each policy per scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt  # after choosing the backend
import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

# Policies drawn, in the order of the legend; others in the run are left out for legibility.
DRAWN = {"none": "no retraining", "relearn": "Relearn (defaults)", "oracle": "oracle"}
STYLE = {"none": ("#888888", "--"), "relearn": ("#1f77b4", "-"), "oracle": ("#2ca02c", ":")}


def draw(panels: dict[str, dict[str, np.ndarray]], change_day: int, path: Path) -> None:
    """One panel per ``title`` with each drawn policy's daily mean of its hourly accuracy."""
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, hourly) in zip(axes.flat, panels.items(), strict=False):
        for name, label in DRAWN.items():
            if name not in hourly:
                continue
            days = hourly[name].reshape(-1, 24).mean(axis=1)
            color, line = STYLE[name]
            ax.plot(np.arange(len(days)) + 0.5, days, line, color=color, label=label, lw=2)
        ax.axvline(change_day, color="#d62728", lw=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("day (red line: the change)")
        ax.set_ylabel("accuracy served")
        ax.set_ylim(0.3, 0.9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
