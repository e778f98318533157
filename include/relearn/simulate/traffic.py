"""Feed a predictor with simulated traffic: predictions now, their true outcomes later.

Production labels arrive after a delay (a customer churns weeks after the prediction), and
some never arrive within the window that matters. The driver reproduces that: every true
label is queued to arrive at prediction time + delay (with jitter) and is only revealed to
the sink once the clock has passed it; labels still in flight at the end stay unknown.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import threading
    import uuid
    from collections.abc import Callable, Iterable, Sequence

    import numpy as np
    import pandas as pd

    from relearn.simulate.world import World

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
_JITTER = 0.25  # outcome delays vary uniformly within +-25 % of the configured delay


class PredictionSink(Protocol):
    """What the driver needs from a predictor (the real one logs to Postgres).

    ``predict`` returns one item per row, each with ``prediction_id`` (uuid.UUID) and
    ``predicted_label`` (str). ``record_outcomes`` takes (prediction_id, actual label,
    time the label became known) and returns how many it stored.
    """

    def predict(
        self, frame: pd.DataFrame, *, unit_ids: Sequence[str], at: Sequence[datetime]
    ) -> Sequence[Any]: ...

    def record_outcomes(self, outcomes: Iterable[tuple[uuid.UUID, str, datetime]]) -> int: ...

    def flush(self) -> None: ...


@dataclass
class TrafficStats:
    """Tallies of one run; ``correct`` counts revealed outcomes the sink predicted right."""

    predictions: int = 0
    outcomes_revealed: int = 0
    correct: int = 0
    hours: float = 0.0

    @property
    def accuracy(self) -> float:
        """Accuracy over revealed outcomes; nan before any outcome is revealed."""
        return self.correct / self.outcomes_revealed if self.outcomes_revealed else math.nan


class _Driver:
    """Sends batches to the sink and reveals each outcome once the clock passes its arrival."""

    def __init__(
        self,
        world: World,
        sink: PredictionSink,
        rng: np.random.Generator,
        outcome_delay: timedelta,
        units: int,
    ) -> None:
        if units < 1:
            raise ValueError("units must be at least 1")
        self._world = world
        self._sink = sink
        self._rng = rng
        self._delay = outcome_delay
        self._units = units
        # (arrival, tie-breaker, prediction_id, actual, predicted), earliest arrival first.
        self._pending: list[tuple[datetime, int, uuid.UUID, str, str]] = []
        self._order = itertools.count()
        self.stats = TrafficStats()

    def send(self, at: list[datetime]) -> None:
        if not at:
            return
        count = len(at)
        unit_ids = [f"unit-{i:04d}" for i in self._rng.integers(0, self._units, count)]
        frame, labels = self._world.sample(count, at, self._rng)
        results = self._sink.predict(frame, unit_ids=unit_ids, at=at)
        if len(results) != count:
            raise RuntimeError(f"sink returned {len(results)} predictions for {count} rows")
        factors = self._rng.uniform(1 - _JITTER, 1 + _JITTER, count)
        for when, factor, result, label in zip(at, factors, results, labels, strict=True):
            heapq.heappush(
                self._pending,
                (
                    when + self._delay * float(factor),
                    next(self._order),
                    result.prediction_id,
                    str(label),
                    str(result.predicted_label),
                ),
            )
        self.stats.predictions += count

    def reveal(self, now: datetime) -> None:
        due = []
        while self._pending and self._pending[0][0] <= now:
            due.append(heapq.heappop(self._pending))
        if not due:
            return
        stored = self._sink.record_outcomes(
            [(prediction_id, actual, arrival) for arrival, _, prediction_id, actual, _ in due]
        )
        if stored != len(due):
            logger.warning("sink stored %s of %s revealed outcomes", stored, len(due))
        self.stats.outcomes_revealed += len(due)
        self.stats.correct += sum(actual == predicted for *_, actual, predicted in due)


def _summary(label: str, before: TrafficStats, after: TrafficStats) -> str:
    """One progress line covering what happened between two snapshots."""
    predictions = after.predictions - before.predictions
    revealed = after.outcomes_revealed - before.outcomes_revealed
    if not revealed:
        return f"{label}: {predictions:,} predictions, no outcomes revealed yet"
    accuracy = (after.correct - before.correct) / revealed
    return f"{label}: {predictions:,} predictions, accuracy {accuracy:.2f} on {revealed:,} outcomes"


def _report(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is None:
        logger.info("%s", message)
    else:
        progress(message)


def simulate_traffic(
    world: World,
    sink: PredictionSink,
    *,
    start: datetime,
    end: datetime,
    predictions_per_hour: float,
    outcome_delay: timedelta,
    rng: np.random.Generator,
    units: int = 500,
    progress: Callable[[str], None] | None = None,
) -> TrafficStats:
    """Replay ``start``..``end`` hour by hour as fast as the sink allows.

    Each hour gets Poisson(``predictions_per_hour``) rows at uniform times, predicted in one
    batch; at the hour's end every outcome that has arrived is sent in one batch. Progress
    (per-day predictions and accuracy) goes to ``progress``, or the log when it is None.
    """
    if end <= start:
        raise ValueError("end must be after start")
    driver = _Driver(world, sink, rng, outcome_delay, units)
    hours = math.ceil((end - start) / HOUR)
    days = math.ceil(hours / 24)
    day_start = replace(driver.stats)
    for hour in range(hours):
        begin = start + hour * HOUR
        finish = min(begin + HOUR, end)
        count = int(rng.poisson(predictions_per_hour * ((finish - begin) / HOUR)))
        offsets = sorted(rng.uniform(0.0, (finish - begin).total_seconds(), count).tolist())
        driver.send([begin + timedelta(seconds=offset) for offset in offsets])
        driver.reveal(finish)
        if (hour + 1) % 24 == 0 or hour + 1 == hours:
            _report(progress, _summary(f"day {hour // 24 + 1}/{days}", day_start, driver.stats))
            day_start = replace(driver.stats)
    sink.flush()
    driver.stats.hours = (end - start) / HOUR
    return driver.stats


def run_live(
    world: World,
    sink: PredictionSink,
    *,
    predictions_per_minute: float,
    outcome_delay: timedelta,
    rng: np.random.Generator,
    stop_event: threading.Event,
    interval_seconds: float = 2.0,
    units: int = 500,
    progress: Callable[[str], None] | None = None,
) -> TrafficStats:
    """Send a small batch stamped with the wall clock every ``interval_seconds`` until stopped.

    Outcomes are revealed once their arrival time has passed on the wall clock; ones still
    in flight when ``stop_event`` is set are dropped. Progress is reported once a minute.
    Errors from the sink propagate: the caller decides whether to restart.
    """
    if interval_seconds <= 0:
        raise ValueError("interval_seconds must be positive")
    driver = _Driver(world, sink, rng, outcome_delay, units)
    started = last_report = datetime.now(UTC)
    since_report = replace(driver.stats)
    while not stop_event.is_set():
        now = datetime.now(UTC)
        count = int(rng.poisson(predictions_per_minute * interval_seconds / 60))
        driver.send([now] * count)
        driver.reveal(now)
        if now - last_report >= timedelta(minutes=1):
            _report(progress, _summary(f"live {now:%H:%M}", since_report, driver.stats))
            last_report, since_report = now, replace(driver.stats)
        stop_event.wait(interval_seconds)
    sink.flush()
    driver.stats.hours = (datetime.now(UTC) - started) / HOUR
    return driver.stats
