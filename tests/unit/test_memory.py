"""``release_unused``: memory a step freed leaves the process before its next phase.

Measured in a fresh process, since resident memory is a property of the whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
