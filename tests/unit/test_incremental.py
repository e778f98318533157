"""Time-ordered batches for incremental training (``relearn.training.incremental``)."""

from __future__ import annotations

import pandas as pd
import pytest

from relearn.training.incremental import batch_history, daily_batches, ordered_batches


def _frame(n: int) -> tuple[pd.DataFrame, list[str]]:
    return pd.DataFrame({"x": range(n)}), [f"label{i}" for i in range(n)]


def test_ordered_batches_follow_the_order_and_keep_rows_with_their_labels() -> None:
    frame, labels = _frame(7)
    order = pd.Series([5, 1, 1, 0, 9, 3, 2])  # ties (the two 1s) keep their row order

    batches = ordered_batches(frame, labels, 3, order)

    assert [b[0]["x"].tolist() for b in batches] == [[3, 1, 2], [6, 5], [0, 4]]
    assert [b[1] for b in batches] == [
        ["label3", "label1", "label2"],
        ["label6", "label5"],
        ["label0", "label4"],
    ]


def test_without_an_order_batches_follow_the_rows() -> None:
    frame, labels = _frame(4)
    assert [b[1] for b in ordered_batches(frame, labels, 2)] == [
        ["label0", "label1"],
        ["label2", "label3"],
    ]


@pytest.mark.parametrize(
    ("rows", "count", "message"), [(3, 0, "at least 1"), (3, 4, "cannot split")]
)
def test_impossible_splits_say_why(rows: int, count: int, message: str) -> None:
    frame, labels = _frame(rows)
    with pytest.raises(ValueError, match=message):
        ordered_batches(frame, labels, count)


def test_daily_batches_are_calendar_days_oldest_first() -> None:
    frame, labels = _frame(5)
    times = pd.Series(
        pd.to_datetime(
            [
                "2026-03-02 23:59",
                "2026-03-01 10:00",
                "2026-03-02 00:00",
                "2026-03-01 00:01",
                "2026-03-04 12:00",
            ],
            utc=True,
        )
    )

    batches = daily_batches(frame, labels, times)

    assert [b[0]["x"].tolist() for b in batches] == [[1, 3], [0, 2], [4]]


def test_batch_history_counts_batches_as_steps() -> None:
    history = batch_history(
        [{"batch": 1, "rows": 10, "train_loss": 0.5}, {"batch": 2, "rows": 5, "train_loss": 0.4}]
    )
    assert history.epochs == [
        {"epoch": 1, "rows": 10, "train_loss": 0.5},
        {"epoch": 2, "rows": 5, "train_loss": 0.4},
    ]
