"""Learning from data in time order: split rows into batches, train on each in turn.

A model that keeps learning from a stream sees yesterday before today. Splitting a window into
time-ordered batches and fine-tuning on each in turn weights the most recent rows last (they
shape the final weights most), which follows a drifting concept; every batch after the first
is also a chance to forget the earlier ones, so the choice is measured (``bench/incremental.py``)
and off by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.training.classifier import TrainingHistory

if TYPE_CHECKING:
    from collections.abc import Sequence

Batch = tuple[pd.DataFrame, list[str]]


def ordered_batches(
    frame: pd.DataFrame, labels: Sequence[str], count: int, order: pd.Series | None = None
) -> list[Batch]:
    """``count`` batches of near-equal size, in ``order`` (e.g. a time column) or row order.

    Rows with the same order value keep their relative order (a stable sort).
    """
    if count < 1:
        raise ValueError(f"the number of batches must be at least 1, got {count}")
    if len(frame) != len(labels):
        raise ValueError(f"{len(frame)} rows but {len(labels)} labels")
    if count > len(frame):
        raise ValueError(f"cannot split {len(frame)} rows into {count} batches")
    positions = np.arange(len(frame))
    if order is not None:
        positions = np.argsort(order.to_numpy(), kind="stable")
    label_array = np.asarray(list(labels), dtype=object)
    return [
        (frame.iloc[part].reset_index(drop=True), label_array[part].tolist())
        for part in np.array_split(positions, count)
    ]


def daily_batches(frame: pd.DataFrame, labels: Sequence[str], times: pd.Series) -> list[Batch]:
    """One batch per UTC calendar day of ``times``, oldest first."""
    if len(frame) != len(labels) or len(frame) != len(times):
        raise ValueError("frame, labels and times must have the same length")
    days = pd.to_datetime(times, utc=True).dt.floor("D").to_numpy()
    label_array = np.asarray(list(labels), dtype=object)
    return [
        (frame.iloc[rows].reset_index(drop=True), label_array[rows].tolist())
        for rows in (np.flatnonzero(days == day) for day in np.unique(days))
    ]


def batch_history(batch_metrics: list[dict[str, float]]) -> TrainingHistory:
    """A history with one entry per batch (its rows, last training loss, validation metrics
    after it, seconds), so training curves and MLflow metric steps count batches."""
    return TrainingHistory(
        epochs=[
            {"epoch": entry["batch"], **{k: v for k, v in entry.items() if k != "batch"}}
            for entry in batch_metrics
        ]
    )
