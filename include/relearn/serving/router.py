"""Which arm serves a unit: the champion, or the challenger for a sticky share of units.

``SplitRouter`` hashes ``<test id>:<unit id>`` into 10,000 buckets and sends a unit to the
challenger when its bucket is below ``traffic_percent * 100``. A unit's bucket never changes
during a test, so a unit that saw the challenger at 10 % still sees it at 25 % (the bar only
rises); a new test (new id) reshuffles units. Units without an id go to the champion. The
live split is read through a callable and cached for ``ttl`` seconds, so routing costs a hash
per unit and a database read only every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from relearn.store.abtests import RUNNING, live_test
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

CHAMPION_ARM = "champion"
CHALLENGER_ARM = "challenger"
BUCKETS = 10_000


class Router(Protocol):
    """Chooses an arm name per unit id; the Predictor loads one model per arm it sees."""

    def arms(self, unit_ids: Sequence[str | None]) -> list[str]: ...


class ChampionRouter:
    """Everything goes to the champion."""

    def arms(self, unit_ids: Sequence[str | None]) -> list[str]:
        return [CHAMPION_ARM] * len(unit_ids)


@dataclass(frozen=True)
class Split:
    """The challenger's share of units in a running test."""

    test_id: str
    traffic_percent: int


def bucket(test_id: str, unit_id: str) -> int:
    """The unit's fixed bucket in ``[0, BUCKETS)`` for this test (CRC-32: stable everywhere)."""
    return zlib.crc32(f"{test_id}:{unit_id}".encode()) % BUCKETS


def choose_arm(split: Split | None, unit_id: str | None) -> str:
    if split is None or unit_id is None or split.traffic_percent <= 0:
        return CHAMPION_ARM
    if bucket(split.test_id, unit_id) < split.traffic_percent * (BUCKETS // 100):
        return CHALLENGER_ARM
    return CHAMPION_ARM


class SplitRouter:
    """Routes by the live split, re-read from ``source`` at most every ``ttl`` seconds."""

    def __init__(
        self,
        source: Callable[[], Split | None],
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._split: Split | None = None
        self._read_at = -float("inf")

    def split(self) -> Split | None:
        now = self._clock()
        if now - self._read_at >= self._ttl:
            with self._lock:
                if now - self._read_at >= self._ttl:
                    try:
                        self._split = self._source()
                    except Exception:  # the database is down: keep the last split known
                        log.warning("could not read the live split; keeping %s", self._split)
                    self._read_at = now
        return self._split

    def arm(self, unit_id: str | None) -> str:
        return choose_arm(self.split(), unit_id)

    def arms(self, unit_ids: Sequence[str | None]) -> list[str]:
        split = self.split()
        return [choose_arm(split, unit_id) for unit_id in unit_ids]


def live_split(database_url: str, model_name: str) -> Callable[[], Split | None]:
    """A ``SplitRouter`` source: the model's running test in Relearn's database."""

    def read() -> Split | None:
        with transaction(database_url) as connection:
            test = live_test(connection, model_name, (RUNNING,))
        return None if test is None else Split(str(test.id), test.traffic_percent)

    return read
