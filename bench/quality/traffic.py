"""Scenarios and their traffic: which world serves each hour, rows and evaluation samples.

A scenario maps each day to a mix of two seeded worlds, ``before`` (the champion's) and
``after`` (the changed regime), so a regime can come back (recurring) or blend in (gradual)
— something a chain of ``Drift`` objects cannot express. Every row has a fixed outcome delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from relearn.simulate.world import ConceptShift, CovariateShift, World

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from relearn.config import ModelConfig

# Every drift of the "after" world starts here, before any replayed row, so it is always on.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
START = datetime(2026, 2, 1, tzinfo=UTC)
EVAL_ROWS = 2000


@dataclass(frozen=True)
class Scenario:
    """``share(day)``: the fraction of that day's rows drawn from the ``after`` world."""

    name: str
    after: Callable[[World], World]
    share: Callable[[int, int], float]  # (day, change_day) -> share of "after" rows
    drifts: bool = True


def _abrupt(day: int, change: int) -> float:
    return float(day >= change)


def _gradual(day: int, change: int) -> float:
    """A week-long blend: 1/7 of the rows on the first day of the change, all by the 7th."""
    return float(min(1.0, max(0.0, (day - change + 1) / 7)))


def _recurring(day: int, change: int) -> float:
    """Three days of the other regime, four of the usual one, from the change on."""
    return float(day >= change and (day - change) % 7 < 3)


SCENARIOS = {
    "no drift": Scenario("no drift", lambda w: w, lambda d, c: 0.0, drifts=False),
    "abrupt concept": Scenario(
        "abrupt concept", lambda w: w.with_drift(ConceptShift(EPOCH, 1.0)), _abrupt
    ),
    "gradual concept": Scenario(
        "gradual concept", lambda w: w.with_drift(ConceptShift(EPOCH, 1.0)), _gradual
    ),
    "covariate": Scenario(
        "covariate",
        lambda w: w.with_drift(CovariateShift(EPOCH, features=0.5, shift_std=1.5)),
        _abrupt,
    ),
    "recurring": Scenario(
        "recurring", lambda w: w.with_drift(ConceptShift(EPOCH, 1.0)), _recurring
    ),
}


@dataclass
class Day:
    """One day's traffic (rows in time order) and a fresh sample to score models on."""

    index: int
    frame: pd.DataFrame
    labels: np.ndarray
    hours: np.ndarray  # predicted at, in hours since START
    after: np.ndarray  # bool: drawn from the changed regime
    row_ids: np.ndarray
    eval_frame: pd.DataFrame
    eval_labels: np.ndarray


def _mixed(
    before: World, after: World, n: int, share: float, at: datetime, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    from_after = rng.random(n) < share
    frame_b, labels_b = before.sample(n, at, rng)
    frame_a, labels_a = after.sample(n, at, rng)
    frame = frame_b.copy()
    frame.loc[from_after] = frame_a.loc[from_after]
    labels = np.where(from_after, labels_a, labels_b)
    return frame, labels, from_after


def make_days(
    model_cfg: ModelConfig, scenario: Scenario, days: int, change: int, per_hour: int, seed: int
) -> list[Day]:
    """The whole replay's traffic, the same for every policy (seeded by ``seed``)."""
    before = World(model_cfg)
    after = scenario.after(before)
    rng = np.random.default_rng(seed)
    out = []
    for index in range(days):
        share = scenario.share(index, change)
        at = START + timedelta(days=index, hours=12)
        n = per_hour * 24
        frame, labels, from_after = _mixed(before, after, n, share, at, rng)
        hours = np.sort(index * 24 + rng.uniform(0, 24, n))
        eval_frame, eval_labels, _ = _mixed(before, after, EVAL_ROWS, share, at, rng)
        out.append(
            Day(
                index,
                frame,
                labels,
                hours,
                from_after,
                np.arange(n) + index * 1_000_000,
                eval_frame,
                eval_labels,
            )
        )
    return out
