"""Give memory freed between the phases of a step back to the system.

Each retraining step is its own process, and what limits how many run side by side is its
peak resident memory. Freed memory does not leave the process by itself: pyarrow keeps what
it freed in its own allocator's pool (a Parquet read leaves about 100 MB there), and glibc's
``malloc`` keeps freed blocks inside its heap. Neither is reused by the other, so a phase that
allocates after a large free (fitting after a load) would raise the peak by what the previous
phase left behind. Calling ``release_unused`` at such a boundary returns both.

pyarrow's default pool (mimalloc) also keeps pages that hold one live buffer among freed ones:
a 600k-row slice of the window (65 MB of text) kept 60 MB more resident than with ``malloc``,
and ``release_unused`` cannot return it. A step that builds large Arrow data runs
inside ``system_allocator``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Iterator


def _libc_malloc_trim() -> ctypes._CFuncPtr | None:
    """glibc's ``malloc_trim``, or None (another libc or platform: nothing to trim there)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


_MALLOC_TRIM = _libc_malloc_trim()


def release_unused() -> None:
    """Return memory freed so far to the system: pyarrow's pool, then glibc's heap."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@contextmanager
def system_allocator() -> Iterator[None]:
    """Allocate Arrow buffers with the system's ``malloc`` inside (freed memory can then be
    trimmed), the previous default pool after; a buffer is always freed by the pool that
    made it."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
