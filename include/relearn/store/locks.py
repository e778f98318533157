"""Per-model advisory locks: one deployment change of a model at a time, across processes.

The hourly A/B check, a CLI rollback and a retraining's publish all read the state, decide,
then move aliases; without a lock two of them can interleave and the later one undo the
earlier. A Postgres session advisory lock serialises them; it is re-entrant within a thread
(nested deployer calls do not deadlock) and released when its connection closes, also when the
process dies.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from relearn.store.db import connect

if TYPE_CHECKING:
    from collections.abc import Iterator

_HELD: ContextVar[frozenset[str]] = ContextVar("relearn_model_locks", default=frozenset())


@contextmanager
def model_lock(database_url: str, model_name: str) -> Iterator[None]:
    """Hold the model's deployment lock for the block (waits for another holder)."""
    key = f"relearn-deploy:{model_name}"
    held = _HELD.get()
    if key in held:
        yield
        return
    connection = connect(database_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        token = _HELD.set(held | {key})
        try:
            yield
        finally:
            _HELD.reset(token)
    finally:
        connection.close()
