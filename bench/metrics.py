"""Scrape time of ``/metrics`` on a large prediction log, against a baseline of the same run.

A throw-away embedded Postgres and MLflow server (free ports, torn down at the end), a
prediction log of ``--rows`` rows (default 10M) spread evenly over ``--days`` days (default 90,
the default retention) for ``--models`` models, three quarters labelled; a month of hourly
health checks, drift reports, daily retraining runs, a few requests and alerts per model.

Printed, in one run (median of ``--repeat`` runs each):
1. baseline: ``SELECT count(*)`` of the same 24 h window of the log (what any query of the
   window costs at least);
2. the scrape's database part (``relearn.monitoring.metrics.database_figures``);
3. the whole scrape (``render_metrics``: database, one MLflow call per model, exposition);
and each scrape query's plan (``EXPLAIN``), reduced to the scans it uses (index or sequential).
Target: a scrape <= 1 s. The machine's load average is printed: on a shared host the absolute
figures scale with it; the ratio to the baseline is the comparable one.

    .venv/bin/python bench/metrics.py [--rows 10000000] [--days 90] [--models 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2.extras import LoggingConnection

import relearn.store.db
from relearn.monitoring import metrics
from relearn.services import Services
from relearn.settings import libpq_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def _stack() -> Iterator[Services]:
    from relearn.settings import load_settings
    from relearn_dev.stack.services import Stack, throwaway_env

    home = Path(tempfile.mkdtemp(prefix="relearn-bench-"))
    os.environ.update(throwaway_env(home, ROOT))
    for variable in ("RELEARN_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        os.environ.pop(variable, None)
    settings = load_settings()
    stack = Stack(settings, ROOT)
    try:
        _progress(f"starting Postgres and MLflow in {home}")
        stack.start_database()
        stack.start_mlflow()
        yield Services(settings.database_url("relearn"), settings.tracking_uri)
    finally:
        stack.discard()
        shutil.rmtree(home, ignore_errors=True)


def _execute(url: str, statement: str, params: Any = None) -> list[tuple]:
    connection = psycopg2.connect(libpq_url(url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def generate(url: str, rows: int, days: int, models: list[str]) -> None:
    """The log (in chunks of 1M rows, for progress) and a realistic amount of the rest."""
    start, span = NOW - timedelta(days=days), timedelta(days=days)
    chunk = 1_000_000
    for first in range(0, rows, chunk):
        count = min(chunk, rows - first)
        _execute(
            url,
            """
            INSERT INTO prediction_log (prediction_id, model_name, model_version, predicted_at,
                features, predicted_label, confidence, latency_ms, served_by, actual_label,
                outcome_at)
            SELECT gen_random_uuid(), (%(models)s)[1 + i %% cardinality(%(models)s)], '1',
                   %(start)s + %(span)s * (i::float8 / %(rows)s),
                   jsonb_build_object('x', i %% 100), CASE WHEN i %% 3 = 0 THEN 'yes' ELSE 'no' END,
                   0.5 + (i %% 50) / 100.0, (i %% 97) / 3.0,
                   CASE WHEN i %% 10 = 0 THEN 'challenger' ELSE 'champion' END,
                   CASE WHEN i %% 4 <> 0 THEN CASE WHEN i %% 5 = 0 THEN 'yes' ELSE 'no' END END,
                   CASE WHEN i %% 4 <> 0 THEN %(start)s + %(span)s * (i::float8 / %(rows)s) END
            FROM generate_series(%(first)s, %(last)s) AS i
            """,
            {
                "models": models,
                "start": start,
                "span": span,
                "rows": rows,
                "first": first,
                "last": first + count - 1,
            },
        )
        _progress(f"{first + count:,} rows")
    for model in models:
        _execute(
            url,
            """
            INSERT INTO health_checks (model_name, checked_at, status, details, trigger_key,
                score, availability, error_score, latency_score)
            SELECT %(m)s, %(now)s - h * interval '1 hour', 'healthy', '{}', 'h' || h,
                   0.9, 1, 0.8, 1 FROM generate_series(0, 24 * 30) AS h;
            INSERT INTO model_retraining_runs (id, model_name, source, status, trigger_key,
                created_at, completed_at, metrics)
            SELECT gen_random_uuid(), %(m)s, 'auto_daily', 'completed', 'r' || d,
                   %(now)s - d * interval '1 day', %(now)s - d * interval '1 day',
                   jsonb_build_object('gate', jsonb_build_object('blessed', d %% 3 = 0))
            FROM generate_series(1, 90) AS d;
            INSERT INTO drift_reports (id, model_name, checked_at, window_start, rows,
                labelled_rows, score, threshold, verdict, features, action, trigger_key)
            SELECT gen_random_uuid(), %(m)s, %(now)s - h * interval '1 hour',
                   %(now)s - (h + 24) * interval '1 hour', 1000, 700, 0.1, 0.2, 'stable', '[]',
                   'none', 'd' || h FROM generate_series(0, 24 * 30) AS h;
            INSERT INTO model_retraining_requests (model_name, status, created_at)
            SELECT %(m)s, (ARRAY['completed', 'pending', 'processing'])[1 + i %% 3],
                   %(now)s - i * interval '1 hour' FROM generate_series(1, 300) AS i;
            INSERT INTO alerts (model_name, kind, severity, subject, message, raised_at,
                trigger_key)
            SELECT %(m)s, 'drift', 'warning', 's' || i, 'm', %(now)s - i * interval '6 hours', 't'
            FROM generate_series(1, 400) AS i;
            """,
            {"m": model, "now": NOW},
        )
    _progress("VACUUM ANALYZE")
    _execute(url, "VACUUM (ANALYZE)")


def _median_seconds(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class _Statements:
    """A file-like sink for ``LoggingConnection``: the SQL each scrape query sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def write(self, text: str) -> None:
        self.sent.append(text)


def _plans(url: str, services: Services, models: list[str]) -> list[tuple[str, list[str]]]:
    """Each scrape query's scans, from ``EXPLAIN`` of the exact SQL the scrape sent."""
    sink = _Statements()

    def logging_connect(database_url: str) -> Any:
        connection = psycopg2.connect(libpq_url(database_url), connection_factory=LoggingConnection)
        connection.initialize(sink)
        return connection

    original = relearn.store.db.connect
    relearn.store.db.connect = logging_connect
    try:
        metrics.database_figures(services.database_url, models, now=NOW)
    finally:
        relearn.store.db.connect = original
    found = []
    for statement in sink.sent:
        text = statement.decode() if isinstance(statement, bytes) else statement
        plan = [row[0] for row in _execute(url, f"EXPLAIN {text}")]
        scans = [
            line.strip().removeprefix("->  ").split("  (")[0]
            for line in plan
            if re.search(r"Scan", line)
        ]
        found.append((" ".join(text.split())[:90], scans))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    models = [f"bench_{i}" for i in range(args.models)]
    with _stack() as services:
        url = services.database_url
        started = time.perf_counter()
        generate(url, args.rows, args.days, models)
        _progress(f"generated in {time.perf_counter() - started:.0f} s")
        window = (NOW - timedelta(hours=24), NOW)
        in_window = _execute(
            url,
            "SELECT count(*) FROM prediction_log WHERE model_name = ANY(%s)"
            " AND predicted_at >= %s AND predicted_at < %s",
            (models, *window),
        )[0][0]

        def baseline() -> None:
            _execute(
                url,
                "SELECT count(*) FROM prediction_log WHERE model_name = ANY(%s)"
                " AND predicted_at >= %s AND predicted_at < %s",
                (models, *window),
            )

        metrics.scrape(services, models, now=NOW)  # warm the caches as a running server has
        base = _median_seconds(baseline, args.repeat)
        database = _median_seconds(
            lambda: metrics.database_figures(url, models, now=NOW), args.repeat
        )
        whole = _median_seconds(
            lambda: metrics.render_metrics(services, models, now=NOW), args.repeat
        )
        body = metrics.render_metrics(services, models, now=NOW)
        print(f"log: {args.rows:,} rows over {args.days} days, {args.models} models;")
        print(f"     {in_window:,} rows in the scraped 24 h window; load {os.getloadavg()[0]:.1f}")
        print(f"baseline count(*) of the window:  {base * 1000:8.1f} ms")
        print(f"scrape, database part:            {database * 1000:8.1f} ms  "
              f"({database / base:.1f} x baseline)")  # fmt: skip
        print(f"scrape, whole (+ MLflow, format): {whole * 1000:8.1f} ms  "
              f"({whole / base:.1f} x baseline; target <= 1000 ms: "
              f"{'met' if whole <= 1.0 else 'MISSED'})")  # fmt: skip
        print(f"exposition: {len(body.splitlines())} lines, {len(body):,} bytes")
        print("query plans (scans used):")
        for text, scans in _plans(url, services, models):
            print(f"  {text}")
            for scan in scans:
                print(f"      {scan}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
