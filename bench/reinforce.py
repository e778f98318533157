"""Auto-reinforcement at scale: one loop over a 1,000,000-row prediction log, before and after.

What it measures (figures only, no pass/fail), "before" and "after" in the same run, on the
same data and stack:

1. Data generation (not part of the measured loop, run in its own child process): a week of
   ``churn`` predictions by the bootstrapped champion, bulk-loaded with ``COPY``. The label
   function is concept-shifted for the last ``--drift-days`` of the week, so the window holds
   far more than 10,000 qualifying errors (wrong, confidence >= 0.7, labelled, in the window).
2. The loop ``start -> prepare -> train -> evaluate -> publish`` outside Airflow with default
   options (lookback 7 days, confidence 0.7, epochs 5, replay ratio 10), in a fresh child
   process per code version: seconds per stage (with the main calls inside each stage) and
   the process's own peak RSS (``VmHWM``). "after" is this tree; "before" is ``--before``
   (default: ``main`` before issue 15 section 4), its ``include/`` extracted with ``git
   archive`` and put first on the child's PYTHONPATH, so both run the same bench code against
   their own product code. Then the two runs' decisions are compared: rows loaded per role,
   quarantined rows, errors, the dataset snapshot's content digest (same rows, same values,
   same split, same order), holdout metrics and the gate's result.
2b. The same steps as Airflow runs them: each in its own fresh process (one task of the
   ``auto_reinforcement`` DAG each), importing what the operator imports, with the step's log
   captured as the operator does; per step its seconds, peak RSS, the peak after its imports
   and which heavy libraries its imports (and its run) loaded; then the maximum over the
   steps, before and after, and whether this run's decisions equal the one-process loop's.
   Airflow's own task-runner memory is not included.
3. ``load_window`` alone, before and after, each in a fresh child process (warm cache): time,
   rows, peak RSS and a digest of the whole frame (dtypes and values); plus ``EXPLAIN
   ANALYZE`` of the three window queries.

Targets (issue 15 section 4): <= 10 s for the whole loop and <= 512 MB peak RSS. Importing
torch, MLflow, Great Expectations, scikit-learn, pandas and matplotlib into one process already
costs more than 512 MB before a row is read: the bench measures that floor (a fresh process
that only imports) and prints it next to the peaks. In production each step is its own
process, so the peak that matters there is 2b's maximum; 2b prints each step's own floor.

The stack is a throw-away embedded Postgres and MLflow server in a temporary RELEARN_HOME on
free ports, torn down at the end (also on error or Ctrl-C) unless ``--keep``. With
RELEARN_DATABASE_URL and/or MLFLOW_TRACKING_URI set, those servers are used instead; a window
that already holds rows (a kept stack) is reused rather than generated again.

    .venv/bin/python bench/reinforce.py [--rows 1000000] [--keep] [--before REF | --no-before]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.training.classifier import TabularClassifier

ROOT = Path(__file__).resolve().parents[1]
MODEL = "churn"
# The fixed end of the window; in the past, since validation quarantines future timestamps.
NOW = datetime(2026, 3, 1, tzinfo=UTC)
LOOKBACK = timedelta(days=7)
OUTCOME_DELAY = timedelta(hours=1)
CHUNK_ROWS = 100_000
MIN_ERRORS = 10_000
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 512.0
# ``main`` before the fifth wave's work on issue 15 section 4 (chunked validation, partial
# snapshot loads); 7aef376 is ``main`` before the issue (no typed window, no one-copy dataset).
BEFORE_REF = "a50d1b2f65419d5991816b583fc1756c0e6ee798"
STAGES = ("start", "prepare", "train", "evaluate", "publish")
COPY_COLUMNS = (
    "prediction_id",
    "model_name",
    "model_version",
    "predicted_at",
    "features",
    "predicted_label",
    "confidence",
    "probabilities",
    "latency_ms",
    "served_by",
    "actual_label",
    "outcome_at",
)
_WINDOW_FILTER = """
    FROM prediction_log
    WHERE model_name = %(model)s AND predicted_at >= %(since)s AND predicted_at < %(until)s
"""
_COUNTS = (
    "SELECT count(*), count(actual_label), count(*) FILTER (WHERE actual_label IS NOT NULL"
    " AND predicted_label <> actual_label AND confidence >= %(threshold)s)" + _WINDOW_FILTER
)


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _peak_mb() -> float:
    """This process's peak RSS in MB (VmHWM: the current address space only)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return _maxrss_mb()


def _maxrss_mb() -> float:
    """``ru_maxrss`` in MB (KiB on Linux); inherits the parent's peak across fork + exec."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_cfg() -> ModelConfig:
    from relearn.config import load_config

    return load_config(ROOT / "relearn.yaml").model(MODEL)


def _window_params(model_cfg: ModelConfig) -> dict[str, Any]:
    return {
        "model": MODEL,
        "since": NOW - LOOKBACK,
        "until": NOW,
        "threshold": model_cfg.reinforcement.confidence_threshold,
    }


def _window_counts(database_url: str, model_cfg: ModelConfig) -> dict[str, int]:
    from relearn.store.db import transaction

    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(_COUNTS, _window_params(model_cfg))
        rows, labelled, errors = cursor.fetchone()
    return {"rows": rows, "labelled": labelled, "qualifying_errors": errors}


# --- 1. data generation (child process) ----------------------------------------------------


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]


def _csv_chunk(
    model_cfg: ModelConfig,
    version: str,
    at: pd.DatetimeIndex,
    features: pd.DataFrame,
    labels: np.ndarray,
    proba: np.ndarray,
    rng: np.random.Generator,
) -> io.StringIO:
    """One chunk as CSV in ``COPY_COLUMNS`` order; outcomes not yet in by ``NOW`` stay NULL."""
    import numpy as np
    import pandas as pd

    n = len(at)
    classes = np.asarray(model_cfg.classes, dtype=object)
    best = proba.argmax(axis=1)
    outcome_at = at + pd.Timedelta(OUTCOME_DELAY)
    known = np.asarray(outcome_at <= pd.Timestamp(NOW))
    probabilities = pd.DataFrame(proba, columns=list(model_cfg.classes))
    frame = pd.DataFrame(
        {
            "prediction_id": _uuids(rng, n),
            "model_name": MODEL,
            "model_version": version,
            "predicted_at": at,
            "features": features.to_json(orient="records", lines=True).splitlines(),
            "predicted_label": classes[best],
            "confidence": proba[np.arange(n), best],
            "probabilities": probabilities.to_json(orient="records", lines=True).splitlines(),
            "latency_ms": np.round(rng.gamma(2.0, 1.5, n), 3),
            "served_by": "champion",
            "actual_label": np.where(known, labels, None),
            "outcome_at": outcome_at.where(known),
        },
        columns=list(COPY_COLUMNS),
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False)
    buffer.seek(0)
    return buffer


def generate(database_url: str, tracking_uri: str, rows: int, drift_days: float) -> dict:
    """Bootstrap the champion, then log ``rows`` predictions of the week before ``NOW``."""
    from relearn.bootstrap import bootstrap_model
    from relearn.services import Services
    from relearn.store.db import connect

    model_cfg = _model_cfg()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    champion = bootstrap_model(Services(database_url, tracking_uri), model_cfg)
    seconds["bootstrap champion"] = time.perf_counter() - started
    drift_start = NOW - timedelta(days=drift_days)
    result: dict[str, Any] = {
        "champion_version": champion.version,
        "drift_start": drift_start.isoformat(),
        "seconds": seconds,
    }
    existing = _window_counts(database_url, model_cfg)["rows"]
    if existing:
        _progress(f"the window already holds {existing:,} {MODEL} rows: reusing them")
        result["reused"] = True
    else:
        result.update(
            _generate_rows(
                database_url, tracking_uri, model_cfg, champion.version, rows, drift_start
            )
        )
        seconds.update(result.pop("chunk_seconds"))
        started = time.perf_counter()
        connection = connect(database_url)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE) prediction_log")
        finally:
            connection.close()
        seconds["VACUUM (ANALYZE)"] = time.perf_counter() - started
    result.update(_window_counts(database_url, model_cfg))
    result["peak_rss_mb"] = _peak_mb()
    return result


def _generate_rows(
    database_url: str,
    tracking_uri: str,
    model_cfg: ModelConfig,
    version: str,
    rows: int,
    drift_start: datetime,
) -> dict[str, Any]:
    """Simulate, predict with champion ``version`` in bulk and ``COPY`` in chunks."""
    import numpy as np
    import pandas as pd

    from relearn.registry import model_uri
    from relearn.retraining.artifacts import load_registered_classifier
    from relearn.simulate.world import ConceptShift, World
    from relearn.store.db import connect

    classifier: TabularClassifier = load_registered_classifier(
        tracking_uri, model_uri(MODEL, version)
    )
    world = World(model_cfg).with_drift(ConceptShift(start=drift_start, strength=1.0))
    rng = np.random.default_rng(model_cfg.simulation.seed)
    since_us = int(pd.Timestamp(NOW - LOOKBACK).value // 1000)
    span_us = int(LOOKBACK / timedelta(microseconds=1))
    drift_us = int(pd.Timestamp(drift_start).value // 1000)
    build = load = 0.0
    correct = {"before": [0, 0], "after": [0, 0]}
    copy_sql = f"COPY prediction_log ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    connection = connect(database_url)
    try:
        for begin in range(0, rows, CHUNK_ROWS):
            started = time.perf_counter()
            n = min(CHUNK_ROWS, rows - begin)
            # This chunk's slice of the week, in time order, as a log is appended.
            low, high = span_us * begin / rows, span_us * (begin + n) / rows
            stamps = since_us + np.sort(rng.uniform(low, high, n)).astype("int64")
            at = pd.DatetimeIndex(pd.to_datetime(stamps, unit="us", utc=True))
            features, labels = world.sample(n, at, rng)
            proba = classifier.predict_proba(features)
            hits = np.asarray(model_cfg.classes, dtype=object)[proba.argmax(axis=1)] == labels
            after = stamps >= drift_us
            for key, rows_of in (("before", ~after), ("after", after)):
                correct[key][0] += int(hits[rows_of].sum())
                correct[key][1] += int(rows_of.sum())
            buffer = _csv_chunk(model_cfg, version, at, features, labels, proba, rng)
            copied = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.copy_expert(copy_sql, buffer)
            connection.commit()
            build += copied - started
            load += time.perf_counter() - copied
            _progress(
                f"logged {begin + n:>9,} / {rows:,} rows "
                f"(simulate + predict + CSV {build:5.1f} s, COPY {load:5.1f} s)"
            )
    finally:
        connection.close()
    return {
        "inserted": rows,
        "champion_accuracy": {
            key: (hit / total if total else None) for key, (hit, total) in correct.items()
        },
        "chunk_seconds": {"simulate + predict + CSV": build, "COPY into prediction_log": load},
    }


# --- 2. the reinforcement loop (child process) ---------------------------------------------


class _Clock:
    """Seconds per stage and per instrumented call inside each stage."""

    def __init__(self) -> None:
        self.stage = "imports"
        self.calls: dict[str, dict[str, list[float]]] = {}

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                self.calls.setdefault(self.stage, {}).setdefault(label, []).append(spent)

        setattr(owner, name, timed)


def _instrument(clock: _Clock) -> None:
    """Time the main calls of each step, patched where the step modules look them up."""
    import relearn.retraining.artifacts
    import relearn.retraining.prepare
    import relearn.retraining.publish
    import relearn.retraining.train
    import relearn.store.runs
    from relearn.training.classifier import TabularClassifier

    artifacts = relearn.retraining.artifacts
    prepare, train = relearn.retraining.prepare, relearn.retraining.train
    for owner, name, label in (
        (prepare, "load_window", "load_window (SQL)"),
        (prepare, "validate_window", "validate_window (Great Expectations)"),
        (relearn.store.runs, "quarantine_rows", "quarantine_rows"),
        (artifacts, "ensure_mlflow_run", "create MLflow run"),
        (prepare, "build_dataset", "build_dataset"),
        (artifacts, "log_dataset", "log dataset snapshot to MLflow"),
        (artifacts, "load_dataset", "download dataset snapshot"),
        (artifacts, "load_registered_classifier", "load model from registry"),
        (TabularClassifier, "fit", "fit"),
        (TabularClassifier, "predict_proba", "predict_proba"),
        (train, "training_curve_png", "plots"),
        (train, "confusion_matrix_png", "plots"),
        (train, "log_pyfunc_model", "log candidate model to MLflow"),
        (relearn.retraining.publish, "register_version", "register version"),
    ):
        clock.wrap(owner, name, label)


def run_loop(database_url: str, tracking_uri: str, profile: bool) -> dict:
    """The five steps in this process, as ``relearn.retraining.loop.reinforce`` runs them."""
    started = time.perf_counter()
    clock = _Clock()
    _instrument(clock)
    from relearn.retraining.evaluate import evaluate
    from relearn.retraining.options import ReinforceOptions
    from relearn.retraining.prepare import prepare
    from relearn.retraining.publish import publish
    from relearn.retraining.record import fail, start
    from relearn.retraining.train import train
    from relearn.services import Services
    from relearn.store.db import transaction
    from relearn.store.runs import get_run

    load_before = os.getloadavg()[0]
    stages = [{"stage": "imports", "seconds": time.perf_counter() - started, "peak": _peak_mb()}]
    model_cfg = _model_cfg()
    services = Services(database_url, tracking_uri)
    options = ReinforceOptions.from_config(model_cfg)
    steps = {"prepare": prepare, "train": train, "evaluate": evaluate, "publish": publish}
    profiler = _profiler() if profile else None
    run_id = ""
    results: dict[str, Any] = {}
    try:
        for stage in STAGES:
            clock.stage = stage
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            if stage == "start":
                result = start(
                    services, model_cfg, options, trigger_key=f"bench-{uuid.uuid4()}", now=NOW
                )
                run_id = result.retraining_run_id
            else:
                result = steps[stage](services, model_cfg, run_id)
            results[stage] = result.to_xcom()
            if profiler:
                profiler.disable()
                _print_profile(profiler, stage)
            stages.append(
                {"stage": stage, "seconds": time.perf_counter() - started, "peak": _peak_mb()}
            )
            if result.terminal:
                break
    except BaseException as error:
        if run_id:
            fail(services, run_id, error if isinstance(error, Exception) else "stopped")
        raise
    with transaction(database_url) as connection:
        run = get_run(connection, run_id)
    calls = {
        stage: {label: [sum(spent), len(spent)] for label, spent in by_label.items()}
        for stage, by_label in clock.calls.items()
    }
    return {
        "options": {
            k: getattr(options, k)
            for k in ("lookback_days", "confidence_threshold", "epochs", "replay_ratio")
        },
        "stages": stages,
        "calls": calls,
        "results": results,
        "run": {
            "status": run.status,
            "metrics": run.metrics,
            "model_version": run.model_version,
            "dataset_digest": run.dataset_digest,
        },
        "peak_rss_mb": _peak_mb(),
        "maxrss_mb": _maxrss_mb(),
        "batch_size": model_cfg.training.batch_size,
        "load_average": [load_before, os.getloadavg()[0]],
    }


HEAVY = ("torch", "mlflow", "great_expectations", "sklearn", "pandas", "matplotlib")
# What a step's process imports: the module run_step imports for it.
STEP_MODULES = {
    "start": "relearn.retraining.record",
    "prepare": "relearn.retraining.prepare",
    "train": "relearn.retraining.train",
    "evaluate": "relearn.retraining.evaluate",
    "publish": "relearn.retraining.publish",
}
# What the whole loop in one process imports: every step, the MLP's torch, the plots.
LOOP_MODULES = [*STEP_MODULES.values(), "relearn.training.torch_mlp", "matplotlib.figure"]
# How a heavy library that a step loads while it runs is imported (matplotlib: to draw).
LIBRARY_IMPORTS = {"matplotlib": "matplotlib.figure"}


def import_floor(modules: list[str], code: Path | None = None) -> float:
    """Peak RSS in MB of a fresh interpreter that only imports ``modules``: what a process
    that needs them holds before it reads a row (``code``: another ``include/`` first)."""
    script = "import importlib, resource, sys\n"
    script += "for name in sys.argv[1:]: importlib.import_module(name)\n"
    script += "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    paths = [str(code)] if code is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT / "include")])}
    output = subprocess.run(
        [sys.executable, "-c", script, *modules],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    ).stdout
    return float(output.split()[-1])


def step_floor(step: dict, code: Path | None = None) -> float:
    """The import floor of a step: its module and the heavy libraries it loaded as it ran."""
    libraries = [LIBRARY_IMPORTS.get(name, name) for name in step["used"]]
    return import_floor([STEP_MODULES[step["stage"]], *libraries], code)


def run_step(database_url: str, tracking_uri: str, stage: str, run_id: str | None) -> dict:
    """One step in this fresh process, as an Airflow task runs it (the operator's imports,
    the step's log captured for MLflow); ``start`` creates the run and returns its id."""
    started = time.perf_counter()
    from relearn.retraining.record import fail, load_run
    from relearn.retraining.runlog import captured_log

    if stage == "start":
        from relearn.retraining.options import ReinforceOptions
        from relearn.retraining.record import start as step
    elif stage == "prepare":
        from relearn.retraining.prepare import prepare as step
    elif stage == "train":
        from relearn.retraining.train import train as step
    elif stage == "evaluate":
        from relearn.retraining.evaluate import evaluate as step
    else:
        from relearn.retraining.publish import publish as step
    from relearn.services import Services

    imported = [name for name in HEAVY if name in sys.modules]
    result: dict[str, Any] = {
        "stage": stage,
        "import_seconds": time.perf_counter() - started,
        "import_peak": _peak_mb(),
        "imported": imported,
    }
    model_cfg = _model_cfg()
    services = Services(database_url, tracking_uri)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    if stage == "start":
        options = ReinforceOptions.from_config(model_cfg)
        outcome = step(services, model_cfg, options, trigger_key=f"bench-{uuid.uuid4()}", now=NOW)
    else:
        try:
            with captured_log(services, model_cfg, str(run_id), f"bench-{stage}"):
                outcome = step(services, model_cfg, str(run_id))
        except Exception as error:
            fail(services, str(run_id), error)
            raise
    run = load_run(services, outcome.retraining_run_id)
    result.update(
        seconds=time.perf_counter() - started,
        peak=_peak_mb(),
        used=[name for name in HEAVY if name in sys.modules and name not in imported],
        status=outcome.status.value,
        terminal=outcome.terminal,
        retraining_run_id=outcome.retraining_run_id,
        load_average=[load_before, os.getloadavg()[0]],
        run={
            "status": run.status,
            "metrics": run.metrics,
            "model_version": run.model_version,
            "dataset_digest": run.dataset_digest,
        },
    )
    return result


def _profiler() -> Any:
    import cProfile

    return cProfile.Profile()


def _print_profile(profiler: Any, stage: str) -> None:
    import pstats

    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
    print(f"--- cProfile of {stage} (cumulative) ---\n{stream.getvalue()}", file=sys.stderr)
    profiler.clear()


# --- 3. window load, before and after (child processes) ---------------------------------


def _frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and values (row order included)."""
    import pandas as pd

    digest = hashlib.sha256(repr(list(frame.dtypes.items())).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def run_window_load(database_url: str, explain: bool) -> dict:
    """``load_window`` of the code on this process's path: time, rows, peak RSS, digest."""
    from relearn.data import window
    from relearn.store.db import transaction

    model_cfg = _model_cfg()
    rf = model_cfg.reinforcement
    result: dict[str, Any] = {"start_peak_mb": _peak_mb()}
    started = time.perf_counter()
    with transaction(database_url) as connection:
        frame = window.load_window(
            connection,
            model_cfg,
            since=NOW - LOOKBACK,
            until=NOW,
            confidence_threshold=rf.confidence_threshold,
            replay_ratio=rf.replay_ratio,
            holdout_fraction=rf.holdout_fraction,
            max_holdout_rows=rf.max_holdout_rows,
            seed=model_cfg.training.random_seed,
        )
    result.update(
        seconds=time.perf_counter() - started,
        peak_mb=_peak_mb(),
        rows=len(frame),
        roles={k: int(v) for k, v in frame["role"].value_counts().items()},
        digest=_frame_digest(frame),
    )
    if explain:
        result["explain"] = _explain_window(database_url, model_cfg, result["roles"]["error"])
    return result


def _explain_window(database_url: str, model_cfg: ModelConfig, errors: int) -> list[dict]:
    """Server time and plan of each ``load_window`` query (the module's own SQL)."""
    from relearn.data import window
    from relearn.store.db import transaction
    from relearn.store.retraining_window import window_query

    rf = model_cfg.reinforcement
    params = {
        **_window_params(model_cfg),
        "seed": model_cfg.training.random_seed,
        "holdout_buckets": round(rf.holdout_fraction * 10_000),
    }
    limits = {
        window.ERROR: None,
        window.REPLAY: math.ceil(rf.replay_ratio * errors),
        window.HOLDOUT: rf.max_holdout_rows,
    }
    plans = []
    with transaction(database_url) as connection, connection.cursor() as cursor:
        for role, limit in limits.items():
            query = window_query(model_cfg, role).as_string(connection)
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, {**params, "limit": limit}
            )
            (explained,) = cursor.fetchone()
            top = explained[0]
            plans.append(
                {
                    "role": role,
                    "ms": top["Execution Time"],
                    "rows": top["Plan"]["Actual Rows"],
                    "plan": _plan_outline(top["Plan"]),
                }
            )
    return plans


def _plan_outline(node: dict, depth: int = 0) -> list[str]:
    """One line per plan node: type, relation/index, actual rows and time."""
    name = node["Node Type"]
    if node.get("Index Name"):
        name += f" using {node['Index Name']}"
    elif node.get("Relation Name"):
        name += f" on {node['Relation Name']}"
    if node.get("Sort Key"):
        name += f" by {', '.join(node['Sort Key'])}"
    if node.get("Sort Method"):
        name += f" ({node['Sort Method']}, {node.get('Sort Space Used', '?')} kB)"
    line = (
        f"{'  ' * depth}{name}: rows {node['Actual Rows']:,.0f}, "
        f"{node['Actual Total Time']:.0f} ms, buffers hit {node.get('Shared Hit Blocks', 0):,}"
        f" read {node.get('Shared Read Blocks', 0):,}"
    )
    if node.get("Rows Removed by Filter"):
        line += f", removed by filter {node['Rows Removed by Filter']:,}"
    lines = [line]
    for child in node.get("Plans", []):
        lines += _plan_outline(child, depth + 1)
    return lines


# --- the orchestrating parent --------------------------------------------------------------


@contextlib.contextmanager
def _services(keep: bool) -> Iterator[tuple[str, str, str]]:
    """(database URL, tracking URI, description): the env's servers or a throw-away stack."""
    database_url = os.environ.get("RELEARN_DATABASE_URL")
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if database_url and tracking_uri:
        yield database_url, tracking_uri, "external (RELEARN_DATABASE_URL, MLFLOW_TRACKING_URI)"
        return
    from relearn_dev.stack.throwaway import throwaway_stack

    with throwaway_stack(ROOT, keep=keep) as throwaway:
        settings = throwaway.settings
        where = (
            f"Postgres :{settings.pg_port}"
            + (" (embedded)" if settings.embedded_postgres else " (external)")
            + f", MLflow {settings.tracking_uri}, RELEARN_HOME {throwaway.home}"
        )
        yield settings.database_url("relearn"), settings.tracking_uri, where


@contextlib.contextmanager
def _before_tree(ref: str | None) -> Iterator[Path | None]:
    """``include/`` of ``ref`` extracted into a temporary directory (None: no "before")."""
    if ref is None:
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="relearn-bench-before-"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "include"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        yield tmp / "include"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _child(
    flag: str, database_url: str, tracking_uri: str, *extra: str, code: Path | None = None
) -> dict:
    """Run this script with ``flag`` in a fresh interpreter; its stdout goes to our stderr.

    ``code``: an ``include/`` directory whose ``relearn`` is imported instead of this tree's.
    """
    with tempfile.TemporaryDirectory(prefix="relearn-bench-result-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), flag]
        command += ["--database-url", database_url, "--tracking-uri", tracking_uri]
        command += ["--result-file", str(result_file), *extra]
        env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(code), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        subprocess.run(command, check=True, stdout=sys.stderr, cwd=ROOT, env=env)
        return json.loads(result_file.read_text())


def _steps(database_url: str, tracking_uri: str, code: Path | None) -> dict:
    """Each step in its own fresh process, in order, as the ``auto_reinforcement`` DAG runs
    them (one task each); stops after a terminal step as the DAG skips what follows."""
    urls = (database_url, tracking_uri)
    steps, run_id = [], None
    for stage in STAGES:
        extra = ("--run-id", run_id) if run_id else ()
        step = _child(f"--step-only={stage}", *urls, *extra, code=code)
        run_id = step["retraining_run_id"]
        steps.append(step)
        if step["terminal"]:
            break
    for step in steps:
        step["floor"] = step_floor(step, code)
    return {"steps": steps, "run": steps[-1]["run"], "peak_rss_mb": max(s["peak"] for s in steps)}


def _mb(value: float) -> str:
    return f"{value:,.0f}"


def _report_generation(drift_days: float, gen: dict) -> None:
    threshold = _model_cfg().reinforcement.confidence_threshold
    print("\n1. data generation (child process, not part of the measured loop)")
    for label, seconds in gen["seconds"].items():
        print(f"   {label:<34} {seconds:8.1f} s")
    if gen.get("reused"):
        print("   (rows already in the window were reused, none generated)")
    else:
        acc = gen["champion_accuracy"]
        print(
            f"   {gen['inserted']:,} rows logged by champion v{gen['champion_version']}; concept"
            f" shift for the last {drift_days:g} day(s) (from {gen['drift_start'][:16]})"
        )
        print(
            "   champion accuracy on them: "
            + ", ".join(f"{k} the shift {v:.3f}" for k, v in acc.items() if v is not None)
        )
    print(
        f"   in the window (SQL count): {gen['rows']:,} rows, {gen['labelled']:,} labelled, "
        f"{gen['qualifying_errors']:,} qualifying errors (wrong, confidence >= {threshold:g}); "
        f"wanted >= {MIN_ERRORS:,}"
    )
    print(f"   generator peak RSS {_mb(gen['peak_rss_mb'])} MB")


def _stage_rows(loop: dict) -> dict[str, tuple[float, float | None]]:
    """(seconds, peak MB) per stage and per instrumented call ('stage / call')."""
    rows: dict[str, tuple[float, float | None]] = {}
    for stage in loop["stages"]:
        rows[stage["stage"]] = (stage["seconds"], stage["peak"])
        calls = loop["calls"].get(stage["stage"], {})
        for label, (seconds, count) in sorted(calls.items(), key=lambda item: -item[1][0]):
            times = f" (x{count})" if count > 1 else ""
            rows[f"{stage['stage']} / {label}{times}"] = (seconds, None)
    rows["total"] = (sum(stage["seconds"] for stage in loop["stages"]), loop["peak_rss_mb"])
    return rows


def _ratio(before: float | None, after: float | None) -> str:
    return f"{after / before:5.2f}x" if before and after is not None else ""


def _report_loop(after: dict, before: dict | None) -> None:
    options = ", ".join(f"{k} {v:g}" for k, v in after["options"].items())
    print(f"\n2. reinforcement loop (a fresh child process per version; {options})")
    print(
        f"   {'stage / main call':<46} {'before s':>9} {'after s':>8} {'ratio':>6}"
        f"  {'before MB':>9} {'after MB':>8}"
    )
    ours, theirs = _stage_rows(after), _stage_rows(before) if before else {}
    for name, (seconds, peak) in ours.items():
        then = theirs.get(name, (None, None))
        label = name if " / " not in name else "  " + name.split(" / ", 1)[1]
        cells = f"{then[0]:9.2f}" if then[0] is not None else f"{'':9}"
        cells += f" {seconds:8.2f} {_ratio(then[0], seconds):>6}"
        if peak is not None:
            cells += f"  {_mb(then[1]) if then[1] else '':>9} {_mb(peak):>8}"
        print(f"   {label:<46} {cells}")
    floor = after["import_floor"]
    print(
        f"   targets: <= {TARGET_SECONDS:g} s, <= {TARGET_RSS_MB:,.0f} MB; importing what the"
        f" loop uses (torch, MLflow, GX, sklearn, pandas, matplotlib) into one process alone"
        f" peaks at {_mb(floor)} MB; above that floor: after {_mb(after['peak_rss_mb'] - floor)}"
        " MB"
        + (
            f", before {_mb(before['peak_rss_mb'] - before['import_floor'])} MB (its floor"
            f" {_mb(before['import_floor'])} MB)"
            if before
            else ""
        )
    )
    for name, loop in (("after", after), ("before", before)):
        if loop:
            low, high = loop["load_average"]
            cpus = os.cpu_count()
            print(f"   1-min load average during {name}: {low:.1f} -> {high:.1f} on {cpus} CPUs")
    _report_outcome(after)


def _report_outcome(loop: dict) -> None:
    metrics = loop["run"]["metrics"] or {}
    validation = metrics.get("data_validation", {})
    print(
        f"   loaded {validation.get('rows', 0):,} rows, quarantined "
        f"{validation.get('quarantined', 0):,}; errors selected {metrics.get('errors', 0):,}"
    )
    sizes = metrics.get("dataset") or {}
    print("   dataset " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    training = metrics.get("training") or {}
    if training:
        batches = math.ceil(sizes.get("train", 0) / loop["batch_size"])
        per_epoch = ", ".join(f"{epoch['seconds']:.1f}" for epoch in training["history"])
        print(
            f"   training: {training['epochs_run']} epochs (best {training['best_epoch']}), "
            f"{batches:,} mini-batches of {loop['batch_size']} each, seconds per epoch {per_epoch}"
        )
    holdout, champion = metrics.get("holdout") or {}, metrics.get("champion_holdout") or {}
    if holdout:
        line = f"   holdout accuracy: candidate {holdout['accuracy']:.3f}"
        if champion:
            line += f", champion {champion['accuracy']:.3f}"
        print(line)
    gate = metrics.get("gate") or {}
    verdict = "blessed" if gate.get("blessed") else "not blessed"
    reasons = "; ".join(gate.get("reasons") or [])
    print(f"   candidate {verdict}{': ' + reasons if reasons else ''}")
    print(
        f"   run {loop['run']['status']}, registered {MODEL} v{loop['run']['model_version']}"
        f" (step results: {', '.join(r['status'] for r in loop['results'].values())})"
    )


def _decisions(loop: dict, load: dict) -> dict[str, Any]:
    """What must not change: rows per role, validation, errors, the dataset, holdout, gate."""
    metrics = loop["run"]["metrics"] or {}
    gate = metrics.get("gate") or {}
    return {
        "rows loaded per role": load["roles"],
        "window frame (dtypes and values)": load["digest"][:16],
        "rows validated / quarantined": (
            metrics.get("data_validation", {}).get("rows"),
            metrics.get("data_validation", {}).get("quarantined"),
        ),
        "failed expectations": metrics.get("data_validation", {}).get("failed_expectations"),
        "errors selected": metrics.get("errors"),
        "dataset sizes": metrics.get("dataset"),
        "dataset digest (rows, values, split, order)": (loop["run"]["dataset_digest"] or "")[:16],
        "training history (losses, val metrics)": [
            {k: v for k, v in epoch.items() if k != "seconds"}
            for epoch in (metrics.get("training") or {}).get("history", [])
        ],
        "holdout metrics": metrics.get("holdout"),
        "gate": (gate.get("blessed"), gate.get("reasons")),
    }


def _report_decisions(
    after: tuple[dict, dict], before: tuple[dict, dict] | None, what: str = "before and after"
) -> None:
    if before is None:
        print("\n   (no 'before' run: --no-before)")
        return
    ours, theirs = _decisions(*after), _decisions(*before)
    different = [name for name in ours if ours[name] != theirs[name]]
    print(f"\n   same decisions {what}: " + ("yes" if not different else "NO"))
    for name, value in ours.items():
        shown = value if "history" not in name and "holdout" not in name else "(compared)"
        mark = "same" if name not in different else f"DIFFERENT (before: {theirs[name]})"
        print(f"     {name:<44} {mark}: {shown}")


def _report_steps(after: dict, before: dict | None) -> None:
    """Per step in its own process: what the heaviest Airflow task of the DAG peaks at."""
    print(
        "\n2b. each step in its own fresh process, as the auto_reinforcement DAG's tasks run"
        " (operator imports + step; Airflow's own task-runner memory not included)"
    )
    print(
        f"   {'step':<10} {'before s':>9} {'after s':>8} {'ratio':>6}  {'before MB':>9}"
        f" {'after MB':>8} {'ratio':>6}  {'imports MB':>10} {'floor MB':>8}"
        "  heavy libraries imported (+ at run)"
    )
    theirs = {step["stage"]: step for step in (before or {}).get("steps", [])}
    for step in after["steps"]:
        then = theirs.get(step["stage"], {})
        cells = f"{then['seconds']:9.2f}" if then else f"{'':9}"
        cells += f" {step['seconds']:8.2f} {_ratio(then.get('seconds'), step['seconds']):>6}"
        cells += f"  {_mb(then['peak']) if then else '':>9} {_mb(step['peak']):>8}"
        cells += f" {_ratio(then.get('peak'), step['peak']):>6}  {_mb(step['import_peak']):>10}"
        cells += f" {_mb(step['floor']):>8}"
        libraries = ", ".join(step["imported"]) + (
            f" (+ {', '.join(step['used'])})" if step["used"] else ""
        )
        print(f"   {step['stage']:<10} {cells}  {libraries}")
    then = before["peak_rss_mb"] if before else None
    print(
        f"   {'max':<10} {'':9} {'':8} {'':6}  {_mb(then) if then else '':>9}"
        f" {_mb(after['peak_rss_mb']):>8} {_ratio(then, after['peak_rss_mb']):>6}"
        f"   (target <= {TARGET_RSS_MB:,.0f} MB per step)"
    )
    print(
        "   floor: a fresh process importing only the step's module and the heavy libraries it"
        " loaded while it ran, before it reads a row"
    )
    for name, steps in (("after", after), ("before", before)):
        if steps:
            loads = [value for step in steps["steps"] for value in step["load_average"]]
            print(
                f"   1-min load average during the {name} steps: {min(loads):.1f} .. "
                f"{max(loads):.1f} on {os.cpu_count()} CPUs"
            )


def _report_load(after: dict, before: dict | None) -> None:
    print("\n3. load_window alone (a fresh child process each, after the loops: warm cache)")
    print(
        f"   {'version':<10} {'seconds':>8} {'rows':>10} {'peak RSS MB':>12} {'over start MB':>14}"
    )
    for name, load in (("before", before), ("after", after)):
        if load:
            print(
                f"   {name:<10} {load['seconds']:8.2f} {load['rows']:>10,}"
                f" {_mb(load['peak_mb']):>12} {_mb(load['peak_mb'] - load['start_peak_mb']):>14}"
            )
    if before:
        used = [load["peak_mb"] - load["start_peak_mb"] for load in (before, after)]
        print(
            f"   after / before: {_ratio(before['seconds'], after['seconds'])} the time, "
            f"{_ratio(*used)} the memory over the process start; same frame (dtypes and values): "
            + ("yes" if before["digest"] == after["digest"] else "NO")
        )
    print("   load_window queries, EXPLAIN ANALYZE (server time, excludes sending rows):")
    for query in after["explain"]:
        print(f"     {query['role']:<8} {query['ms']:9.1f} ms  {query['rows']:>8,.0f} rows")
        for line in query["plan"]:
            print(f"       {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="predictions to log")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--drift-days", type=float, default=1.0, help="concept shift for the last N days"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each loop stage (slower; to stderr)"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--generate-only", action="store_true", help="only log the rows")
    only.add_argument("--loop-only", action="store_true", help="only run the loop")
    only.add_argument("--load-only", action="store_true", help="only load_window")
    only.add_argument("--step-only", choices=STAGES, help="only this step (with --run-id)")
    parser.add_argument("--run-id", help="with --step-only: the retraining run")
    parser.add_argument("--explain", action="store_true", help="with --load-only: EXPLAIN too")
    parser.add_argument(
        "--before", default=BEFORE_REF, help="git ref of the 'before' code (default: %(default)s)"
    )
    parser.add_argument("--no-before", action="store_true", help="measure this tree only")
    parser.add_argument("--database-url", default=os.environ.get("RELEARN_DATABASE_URL"))
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--result-file", type=Path, help="write a child's result JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.generate_only or args.loop_only or args.load_only or args.step_only:
        if not args.database_url or not args.tracking_uri:
            parser.error("needs --database-url and --tracking-uri (or their env variables)")
        if args.generate_only:
            result = generate(args.database_url, args.tracking_uri, args.rows, args.drift_days)
        elif args.loop_only:
            result = run_loop(args.database_url, args.tracking_uri, args.profile)
        elif args.step_only:
            result = run_step(args.database_url, args.tracking_uri, args.step_only, args.run_id)
        else:
            result = run_window_load(args.database_url, args.explain)
        text = json.dumps(result, default=str)
        if args.result_file:
            args.result_file.write_text(text)
        else:
            print(text)
        return 0

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        with _services(args.keep) as (database_url, tracking_uri, where):
            urls = (database_url, tracking_uri)
            _progress(f"generating {args.rows:,} rows (child process)")
            sizes = ("--rows", str(args.rows), "--drift-days", str(args.drift_days))
            gen = _child("--generate-only", *urls, *sizes)
            if gen["qualifying_errors"] < MIN_ERRORS:
                _progress(f"only {gen['qualifying_errors']:,} qualifying errors (< {MIN_ERRORS:,})")
            profile = ["--profile"] if args.profile else []
            with _before_tree(None if args.no_before else args.before) as code:
                _progress("running the reinforcement loop, after (child process)")
                loop = _child("--loop-only", *urls, *profile)
                loop["import_floor"] = import_floor(LOOP_MODULES)
                loop_before = None
                if code is not None:
                    _progress(f"running the reinforcement loop, before: {args.before[:12]}")
                    loop_before = _child("--loop-only", *urls, *profile, code=code)
                    loop_before["import_floor"] = import_floor(LOOP_MODULES, code)
                _progress("running each step in its own process, after (as Airflow runs them)")
                steps = _steps(*urls, None)
                steps_before = None
                if code is not None:
                    _progress(f"running each step in its own process, before: {args.before[:12]}")
                    steps_before = _steps(*urls, code)
                _progress("measuring load_window alone (child processes)")
                load = _child("--load-only", *urls, "--explain")
                load_before = None if code is None else _child("--load-only", *urls, code=code)
            print(
                f"\nRelearn auto-reinforcement benchmark: model '{MODEL}', "
                f"window {NOW - LOOKBACK:%Y-%m-%d %H:%M} .. {NOW:%Y-%m-%d %H:%M} UTC"
            )
            print(f"stack: {where}; before = {'-' if code is None else args.before[:12]}")
            _report_generation(args.drift_days, gen)
            _report_loop(loop, loop_before)
            _report_decisions(
                (loop, load), None if loop_before is None else (loop_before, load_before)
            )
            _report_steps(steps, steps_before)
            _report_decisions((steps, load), (loop, load), "per step vs one process (after)")
            _report_load(load, load_before)
    except KeyboardInterrupt:
        _progress("interrupted (the stack was torn down unless --keep)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
