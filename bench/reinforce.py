"""Auto-reinforcement at scale: one loop over a 1,000,000-row prediction log, timed per stage.

What it measures (figures only, no pass/fail):

1. Data generation (not part of the measured loop, run in its own child process): a week of
   ``churn`` predictions by the bootstrapped champion, bulk-loaded with ``COPY``. The label
   function is concept-shifted for the last ``--drift-days`` of the week, so the window holds
   far more than 10,000 qualifying errors (wrong, confidence >= 0.7, labelled, in the window).
2. The loop ``start -> prepare -> train -> evaluate -> publish`` outside Airflow with default
   options (lookback 7 days, confidence 0.7, epochs 5, replay ratio 1.0), in a fresh child
   process: seconds per stage (with the main calls inside each stage) and the process's own
   peak RSS (``VmHWM``; ``ru_maxrss`` is printed too, though after ``exec`` it also counts the
   parent's peak).
3. A baseline in a third child process: ``load_window`` (filtered in SQL) against the naive
   load of the whole labelled window into pandas and filtering there; plus ``EXPLAIN ANALYZE``
   of the three window queries.

Targets: <= 60 s for the whole loop and <= 1 GB peak RSS (the seed implementation reported
2-10 min and 100-500 MB).

The stack is a throw-away embedded Postgres and MLflow server in a temporary RELEARN_HOME on
free ports, torn down at the end (also on error or Ctrl-C) unless ``--keep``. With
RELEARN_DATABASE_URL and/or MLFLOW_TRACKING_URI set, those servers are used instead; a window
that already holds rows (a kept stack) is reused rather than generated again.

    .venv/bin/python bench/reinforce.py [--rows 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import json
import logging
import math
import os
import resource
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
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 1024.0
SEED_REPORTED = "2-10 min, 100-500 MB"
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
# The naive baseline: every labelled row of the window, features included.
_NAIVE = (
    "SELECT prediction_id, model_version, predicted_at, outcome_at, predicted_label,"
    " actual_label, confidence, features" + _WINDOW_FILTER + " AND actual_label IS NOT NULL"
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
        },
        "peak_rss_mb": _peak_mb(),
        "maxrss_mb": _maxrss_mb(),
        "batch_size": model_cfg.training.batch_size,
        "load_average": [load_before, os.getloadavg()[0]],
    }


def _profiler() -> Any:
    import cProfile

    return cProfile.Profile()


def _print_profile(profiler: Any, stage: str) -> None:
    import pstats

    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
    print(f"--- cProfile of {stage} (cumulative) ---\n{stream.getvalue()}", file=sys.stderr)
    profiler.clear()


# --- 3. window-load baseline (child process) -----------------------------------------------


def run_baseline(database_url: str) -> dict:
    """``load_window`` against loading every labelled row and filtering in pandas."""
    import pandas as pd

    from relearn.data import window
    from relearn.store.db import transaction

    model_cfg = _model_cfg()
    rf = model_cfg.reinforcement
    seed = model_cfg.training.random_seed
    threshold = rf.confidence_threshold
    result: dict[str, Any] = {"start_peak_mb": _peak_mb()}

    started = time.perf_counter()
    with transaction(database_url) as connection:
        frame = window.load_window(
            connection,
            model_cfg,
            since=NOW - LOOKBACK,
            until=NOW,
            confidence_threshold=threshold,
            replay_ratio=rf.replay_ratio,
            holdout_fraction=rf.holdout_fraction,
            max_holdout_rows=rf.max_holdout_rows,
            seed=seed,
        )
    result["sql"] = {
        "seconds": time.perf_counter() - started,
        "rows": len(frame),
        "roles": {k: int(v) for k, v in frame["role"].value_counts().items()},
        "peak_mb": _peak_mb(),
    }
    errors = int((frame["role"] == window.ERROR).sum())
    del frame
    gc.collect()

    result["explain"] = _explain_window(database_url, model_cfg, errors)

    params = _window_params(model_cfg)
    started = time.perf_counter()
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(_NAIVE, params)
        rows = cursor.fetchall()
    fetched = time.perf_counter()
    base = pd.DataFrame([row[:-1] for row in rows], columns=window.BASE_COLUMNS)
    base["prediction_id"] = base["prediction_id"].astype(str)
    base["predicted_at"] = pd.to_datetime(base["predicted_at"], utc=True)
    features = pd.DataFrame.from_records([row[-1] for row in rows], index=base.index)
    del rows
    frame = pd.concat([base, features], axis=1)
    framed = time.perf_counter()
    bucket = pd.util.hash_pandas_object(frame["prediction_id"], index=False) % 10_000
    in_holdout = (bucket < round(rf.holdout_fraction * 10_000)).to_numpy()
    wrong = (frame["predicted_label"] != frame["actual_label"]).to_numpy()
    errors_mask = ~in_holdout & wrong & (frame["confidence"] >= threshold).to_numpy()
    correct = frame[~in_holdout & ~wrong]
    chosen = [
        frame[errors_mask],
        correct.sample(n=min(len(correct), int(errors_mask.sum())), random_state=seed),
        frame[in_holdout].nlargest(rf.max_holdout_rows, "predicted_at"),
    ]
    selected = sum(len(part) for part in chosen)
    result["naive"] = {
        "seconds": time.perf_counter() - started,
        "fetch": fetched - started,
        "frame": framed - fetched,
        "filter": time.perf_counter() - framed,
        "rows": len(frame),
        "selected": selected,
        "peak_mb": _peak_mb(),
    }
    return result


def _explain_window(database_url: str, model_cfg: ModelConfig, errors: int) -> list[dict]:
    """Server time and plan of each ``load_window`` query (the module's own SQL)."""
    from relearn.data import window
    from relearn.store.db import transaction
    from relearn.store.prediction_log import retraining_query

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
            query = retraining_query(model_cfg, role).as_string(connection)
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


def _child(flag: str, database_url: str, tracking_uri: str, *extra: str) -> dict:
    """Run this script with ``flag`` in a fresh interpreter; its stdout goes to our stderr."""
    with tempfile.TemporaryDirectory(prefix="relearn-bench-result-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), flag]
        command += ["--database-url", database_url, "--tracking-uri", tracking_uri]
        command += ["--result-file", str(result_file), *extra]
        env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        subprocess.run(command, check=True, stdout=sys.stderr, cwd=ROOT, env=env)
        return json.loads(result_file.read_text())


def _mb(value: float) -> str:
    return f"{value:,.0f}"


def _report(where: str, drift_days: float, gen: dict, loop: dict, base: dict) -> None:
    model_cfg = _model_cfg()
    threshold = model_cfg.reinforcement.confidence_threshold
    print(
        f"\nRelearn auto-reinforcement benchmark: model '{MODEL}', "
        f"window {NOW - LOOKBACK:%Y-%m-%d %H:%M} .. {NOW:%Y-%m-%d %H:%M} UTC"
    )
    print(f"stack: {where}")

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

    options = ", ".join(f"{k} {v:g}" for k, v in loop["options"].items())
    print(f"\n2. reinforcement loop (fresh child process; {options})")
    print(f"   {'stage':<44} {'seconds':>8}  {'peak RSS MB':>11}")
    total = 0.0
    for stage in loop["stages"]:
        total += stage["seconds"]
        print(f"   {stage['stage']:<44} {stage['seconds']:8.2f}  {_mb(stage['peak']):>11}")
        calls = loop["calls"].get(stage["stage"], {})
        for label, (seconds, count) in sorted(calls.items(), key=lambda item: -item[1][0]):
            times = f" (x{count})" if count > 1 else ""
            print(f"     {label + times:<42} {seconds:8.2f}")
        if calls and stage["stage"] != "imports":
            rest = stage["seconds"] - sum(seconds for seconds, _ in calls.values())
            print(f"     {'rest (DB, MLflow calls)':<42} {rest:8.2f}")
    peak = loop["peak_rss_mb"]
    print(f"   {'total':<44} {total:8.2f}    target <= {TARGET_SECONDS:g} s")
    print(
        f"   {'peak RSS (VmHWM)':<44} {_mb(peak):>8} MB target <= {TARGET_RSS_MB:,.0f} MB"
        f"  (ru_maxrss {_mb(loop['maxrss_mb'])} MB)"
    )
    print(f"   seed implementation reported: {SEED_REPORTED}")
    before, after = loop["load_average"]
    print(
        f"   1-min load average {before:.1f} -> {after:.1f} on {os.cpu_count()} CPUs "
        "(other work on the machine slows every figure)"
    )

    metrics = loop["run"]["metrics"] or {}
    validation = metrics.get("data_validation", {})
    roles = base["sql"]["roles"]
    print(
        f"   rows in window {gen['labelled']:,} labelled; loaded {validation.get('rows', 0):,}"
        f" ({', '.join(f'{k} {v:,}' for k, v in roles.items())}),"
        f" quarantined {validation.get('quarantined', 0):,}"
    )
    print(f"   errors selected {metrics.get('errors', 0):,}")
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

    sql, naive = base["sql"], base["naive"]
    print("\n3. window load baseline (one more child process, after the loop: warm cache)")
    print(f"   {'approach':<44} {'seconds':>8} {'rows':>10}  {'peak RSS MB':>11}")
    print(
        f"   {'load_window (filtered in SQL)':<44} {sql['seconds']:8.2f} {sql['rows']:>10,}"
        f"  {_mb(sql['peak_mb']):>11}"
    )
    print(
        f"   {'naive: all labelled rows, filter in pandas':<44} {naive['seconds']:8.2f}"
        f" {naive['rows']:>10,}  {_mb(naive['peak_mb']):>11}"
    )
    print(
        f"     fetch {naive['fetch']:.2f} s, build frame {naive['frame']:.2f} s, "
        f"filter {naive['filter']:.2f} s -> {naive['selected']:,} rows kept"
    )
    print(
        f"   naive / SQL-filtered: {naive['seconds'] / sql['seconds']:.1f}x the time, "
        f"{naive['rows'] / max(sql['rows'], 1):.1f}x the rows "
        f"(process baseline {_mb(base['start_peak_mb'])} MB)"
    )
    print("   load_window queries, EXPLAIN ANALYZE (server time, excludes sending rows):")
    for query in base["explain"]:
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
    only.add_argument("--baseline-only", action="store_true", help="only the load baseline")
    parser.add_argument("--database-url", default=os.environ.get("RELEARN_DATABASE_URL"))
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--result-file", type=Path, help="write a child's result JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.generate_only or args.loop_only or args.baseline_only:
        if not args.database_url or not args.tracking_uri:
            parser.error("needs --database-url and --tracking-uri (or their env variables)")
        if args.generate_only:
            result = generate(args.database_url, args.tracking_uri, args.rows, args.drift_days)
        elif args.loop_only:
            result = run_loop(args.database_url, args.tracking_uri, args.profile)
        else:
            result = run_baseline(args.database_url)
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
            _progress("running the reinforcement loop (child process)")
            loop = _child("--loop-only", *urls, *(["--profile"] if args.profile else []))
            _progress("measuring the window-load baseline (child process)")
            base = _child("--baseline-only", *urls)
            _report(where, args.drift_days, gen, loop, base)
    except KeyboardInterrupt:
        _progress("interrupted (the stack was torn down unless --keep)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
