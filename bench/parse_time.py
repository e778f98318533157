"""DAG parse cost: per DAG file, its import time in a fresh interpreter and heavy modules pulled in.

Each file is imported in a new Python process after ``airflow.sdk`` and ``pendulum`` (which
every DAG needs; their cost is printed once as the baseline). Target: <= 0.2 s per file on top
of the baseline, and none of torch, mlflow, great_expectations, pandas, sklearn.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mlflow", "great_expectations", "pandas", "sklearn")
TARGET_SECONDS = 0.2
REPEATS = 3

PROBE = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.sdk, pendulum
t1 = time.perf_counter()
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t2 = time.perf_counter()
heavy = sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(json.loads(sys.argv[2])))
print(json.dumps({"baseline": t1 - t0, "file": t2 - t1, "heavy": heavy}))
"""


def measure(path: Path) -> dict:
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path), json.dumps(HEAVY)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "baseline": statistics.median(r["baseline"] for r in runs),
        "file": statistics.median(r["file"] for r in runs),
        "heavy": runs[0]["heavy"],
    }


def main() -> int:
    files = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
    results = {p.name: measure(p) for p in files}
    baseline = statistics.median(r["baseline"] for r in results.values())
    print(f"baseline (airflow.sdk + pendulum): {baseline:.3f} s, median of {REPEATS} runs")
    print(f"{'DAG file':<32} {'import s':>9} {'x baseline':>11}  heavy modules  verdict")
    failures = 0
    for name, r in results.items():
        ok = r["file"] <= TARGET_SECONDS and not r["heavy"]
        failures += not ok
        print(
            f"{name:<32} {r['file']:>9.3f} {r['file'] / baseline:>11.2f}  "
            f"{', '.join(r['heavy']) or '-':<13}  {'ok' if ok else 'OVER TARGET'}"
        )
    print(f"target: <= {TARGET_SECONDS} s per file, no {', '.join(HEAVY)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
