"""Peak memory of onboarding a large dataset: 1,000,000 rows x 30 columns of Parquet.

The file has 27 numeric features, one categorical feature, a time column and a two-class
label. Each step runs in a fresh Python process, which prints its peak RSS (``ru_maxrss``)
so one step's memory never hides another's:

1. baseline: ``pandas.read_parquet`` of the whole file (what a naive loader would do);
2. ``relearn model init``'s inference (``draft_entry``, one streaming pass);
3. bootstrap's data path and training: ``dataset_reference`` (every row checked, a sample of
   ``training.max_dataset_rows`` kept, time-ordered split), ``train_v1`` (torch MLP) and the
   drift profile of the sample, without MLflow;
4. the real command, ``relearn bootstrap --model M --dataset FILE``, against a throw-away
   Postgres and MLflow server started for the run (as the tests do): steps 3 plus the
   registration, the upload of the sample and the profile.

Target: step 4 within 1 GB, the daily loop's allowance.

    .venv/bin/python bench/onboard.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = 27
LIMIT_MB = 1024
_WRITE_ROWS = 100_000


def _write_dataset(path: Path, rows: int) -> None:
    """The file, written in row groups so generating it stays small too."""
    rng = np.random.default_rng(0)
    writer = None
    start = np.datetime64("2024-01-01T00:00:00")
    for offset in range(0, rows, _WRITE_ROWS):
        n = min(_WRITE_ROWS, rows - offset)
        numbers = rng.normal(size=(n, NUMERIC))
        columns = {f"x{i}": numbers[:, i] * (i + 1) for i in range(NUMERIC)}
        columns["segment"] = rng.choice(["a", "b", "c", "d"], size=n)
        columns["observed_at"] = start + np.arange(offset, offset + n).astype("timedelta64[m]")
        score = numbers[:, :5].sum(axis=1) + rng.normal(scale=1.0, size=n)
        columns["label"] = np.where(score > 0, "yes", "no")
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_baseline(path: Path, _config: Path) -> str:
    import pandas as pd

    frame = pd.read_parquet(path)
    return f"{len(frame)} rows"


def _child_init(path: Path, config: Path) -> str:
    from relearn.onboarding.draft import draft_entry
    from relearn.onboarding.entry import render

    draft = draft_entry(path, name="bench_onboard", label="label", time_column="observed_at")
    config.write_text("models:\n" + render(draft.entry, indent="  "), encoding="utf-8")
    return f"{len(draft.entry['features'])} features"


def _child_bootstrap(path: Path, config: Path) -> str:
    from relearn.bootstrap import dataset_reference, train_v1
    from relearn.config import load_config
    from relearn.drift.profile import build_profile

    model_cfg = load_config(config).model("bench_onboard")
    reference = dataset_reference(model_cfg, path)
    trained = train_v1(model_cfg, reference)
    frame = reference.frame[model_cfg.feature_names]
    proba = trained.classifier.predict_proba(frame)
    build_profile(
        frame,
        model_cfg,
        predicted_labels=[model_cfg.classes[i] for i in proba.argmax(axis=1)],
        confidences=proba.max(axis=1),
        accuracy=trained.metrics["accuracy"],
    )
    accuracy = trained.metrics["accuracy"]
    return f"{reference.rows} rows, {len(frame)} sampled, accuracy {accuracy:.3f}"


def _child_cli(path: Path, config: Path) -> str:
    from relearn.cli.app import main

    code = main(
        ["--config", str(config), "bootstrap", "--model", "bench_onboard", "--dataset", str(path)]
    )
    if code != 0:
        sys.exit(f"relearn bootstrap exited {code}")
    return "relearn bootstrap, registered in MLflow"


@contextlib.contextmanager
def _stack():
    """A private Postgres and MLflow server for the real command (the dev package's stack)."""
    from relearn_dev.stack.throwaway import throwaway_stack

    with throwaway_stack(ROOT):
        yield


STEPS = {
    "baseline": ("pandas.read_parquet, whole file", _child_baseline),
    "init": ("relearn model init (draft_entry)", _child_init),
    "bootstrap": ("bootstrap: read+check+sample+split, train, profile", _child_bootstrap),
    "cli": ("relearn bootstrap --dataset (with MLflow registration)", _child_cli),
}


def _run_step(step: str, path: Path, config: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--child", step, str(path), str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"step {step} failed:\n{result.stderr[-3000:]}")
    peak, detail = result.stdout.strip().splitlines()[-1].split(" ", 1)
    seconds = time.perf_counter() - started
    print(f"{STEPS[step][0]:<55} peak RSS {float(peak):7.0f} MB  {seconds:6.1f} s  ({detail})")
    return float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("STEP", "FILE", "CONFIG"))
    args = parser.parse_args()
    if args.child:
        step, path, config = args.child
        detail = STEPS[step][1](Path(path), Path(config))
        print(f"{_peak_mb():.1f} {detail}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path, config = Path(tmp) / "data.parquet", Path(tmp) / "relearn.yaml"
        _write_dataset(path, args.rows)
        size = path.stat().st_size / 2**20
        print(f"{args.rows:,} rows x {NUMERIC + 3} columns, Parquet {size:.0f} MB")
        baseline = _run_step("baseline", path, config)
        _run_step("init", path, config)
        _run_step("bootstrap", path, config)
        with _stack():
            bootstrap = _run_step("cli", path, config)
    verdict = "within" if bootstrap <= LIMIT_MB else "OVER"
    print(
        f"bootstrap peak {bootstrap:.0f} MB vs baseline {baseline:.0f} MB "
        f"({bootstrap / baseline:.2f}x): {verdict} the {LIMIT_MB} MB limit"
    )


if __name__ == "__main__":
    main()
