"""``release_unused``: memory a step freed leaves the process before its next phase.

Measured in a fresh process, since resident memory is a property of the whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa

from relearn.data.memory import system_allocator

# A fresh process frees a 256 MB pyarrow array, then asks for the memory back.
CODE = """
import json
import pyarrow as pa
from relearn.data.memory import release_unused

def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

data = pa.array(range(32 * 1024 * 1024), type=pa.int64())  # 256 MB, every page written
del data
freed = resident_mb()
release_unused()
print(json.dumps([freed, resident_mb()]))
"""


def test_release_unused_returns_what_pyarrow_freed() -> None:
    output = subprocess.run(
        [sys.executable, "-c", CODE], check=True, capture_output=True, text=True
    ).stdout
    freed, released = json.loads(output.splitlines()[-1])
    assert freed - released > 128, (freed, released)


def test_the_system_allocator_serves_arrow_inside_and_the_previous_pool_after() -> None:
    """A step's process may run the next step (the CLI, the bench): it gets its pool back."""
    before = pa.default_memory_pool().backend_name
    with system_allocator():
        assert pa.default_memory_pool().backend_name == "system"
        inside = pa.array(["a", "b"] * 1_000)
    assert pa.default_memory_pool().backend_name == before
    assert inside.to_pylist()[:2] == ["a", "b"]
