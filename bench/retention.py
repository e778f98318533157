"""Retention at scale: expire N old predictions while another client keeps writing.

Both phases run on the same generated data, in one process, against a throw-away embedded
Postgres and MLflow server (RELEARN_HOME in a temporary folder, free ports, torn down at the
end unless ``--keep``):

1. **baseline** -- the plain work on the same rows: one ``COPY`` of them out (no digest, no
   Parquet, no upload) and one ``DELETE ... WHERE predicted_at < cutoff`` in one transaction,
   rolled back (so the rows are not generated twice; an aborted delete leaves no dead tuples);
2. **retention** -- ``relearn.retention.expire_model``: each of ``--days`` expired UTC days is
   exported to Parquet, uploaded to MLflow, read back and verified, then deleted in
   transactions of ``--batch-size`` rows (digest-checked by primary key), then
   ``VACUUM (ANALYZE)``.

During each phase a separate process inserts one prediction per transaction (autocommit,
~200/s) and records every insert's latency; a thread in it samples ``pg_stat_activity`` every
20 ms for the writer waiting on a lock. Printed per phase: seconds, rows/s, the writer's
inserts, p50 / p99 / worst insert latency, lock-wait samples, the longest transaction the
phase held open (the vacuum horizon it pins), and the table's size and dead tuples after.

Rows are generated with ``generate_series`` (``--rows`` over ``--days`` old days, plus
``--recent`` rows inside the retention window that must stay).

    .venv/bin/python bench/retention.py [--rows 10000000] [--days 30] [--batch-size 5000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2

from relearn.config import load_config
from relearn.retention import expire_model
from relearn.settings import libpq_url
from relearn_dev.stack.throwaway import sql_rows, throwaway_stack

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.services import Services

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench"
NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
RETENTION_DAYS = 90
WRITER_INTERVAL = 0.005


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def _stack(keep: bool) -> Iterator[Services]:
    with throwaway_stack(ROOT, keep=keep) as throwaway:
        yield throwaway.services


def generate(url: str, rows: int, days: int, recent: int) -> float:
    """``rows`` predictions spread over ``days`` days before the cutoff, ``recent`` after."""
    started = time.perf_counter()
    oldest = NOW - timedelta(days=RETENTION_DAYS + 1 + days)
    for count, start, span in (
        (rows, oldest, timedelta(days=days)),
        (recent, NOW - timedelta(days=RETENTION_DAYS - 1), timedelta(days=RETENTION_DAYS - 2)),
    ):
        sql_rows(
            url,
            """
            INSERT INTO prediction_log (prediction_id, model_name, model_version, unit_id,
                predicted_at, features, predicted_label, confidence, probabilities, latency_ms,
                actual_label, outcome_at)
            SELECT gen_random_uuid(), %(model)s, '1', 'u' || (i %% 10000),
                   %(start)s + %(span)s * (i::float8 / %(count)s),
                   jsonb_build_object('tenure_months', i %% 240, 'monthly_charges',
                       (i %% 1000) / 7.0, 'support_calls', i %% 9, 'data_usage_gb', i %% 500,
                       'contract', (ARRAY['monthly', 'yearly', 'two_year'])[1 + i %% 3],
                       'region', (ARRAY['north', 'south', 'east', 'west'])[1 + i %% 4]),
                   CASE WHEN i %% 3 = 0 THEN 'yes' ELSE 'no' END, 0.5 + (i %% 50) / 100.0,
                   jsonb_build_object('no', 0.6, 'yes', 0.4), 3.5,
                   CASE WHEN i %% 4 = 0 THEN 'yes' ELSE 'no' END,
                   %(start)s + %(span)s * (i::float8 / %(count)s) + interval '6 hours'
            FROM generate_series(1, %(count)s) AS i
            """,
            {"model": MODEL, "start": start, "span": span, "count": count},
        )
    sql_rows(url, "VACUUM (ANALYZE) prediction_log")
    return time.perf_counter() - started


def _writer(url: str, ready: Any, stop: Any, results: Any) -> None:
    """Insert predictions one per transaction until ``stop``; report latencies and lock waits."""
    connection = psycopg2.connect(libpq_url(url), application_name="bench-writer")
    connection.autocommit = True
    lock_samples = [0, 0]  # [samples, samples waiting on a lock]

    def sample() -> None:
        probe = psycopg2.connect(libpq_url(url))
        probe.autocommit = True
        with probe.cursor() as cursor:
            while not stop.is_set():
                cursor.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') FROM "
                    "pg_stat_activity WHERE application_name = 'bench-writer'"
                )
                lock_samples[0] += 1
                lock_samples[1] += cursor.fetchone()[0]
                time.sleep(0.02)
        probe.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    latencies = []
    ready.set()
    with connection.cursor() as cursor:
        while not stop.is_set():
            started = time.perf_counter()
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version, "
                "predicted_at, features, predicted_label, confidence) "
                "VALUES (%s, %s, '1', now(), '{\"tenure_months\": 1}', 'no', 0.9)",
                (str(uuid.uuid4()), MODEL),
            )
            latencies.append(time.perf_counter() - started)
            time.sleep(WRITER_INTERVAL)
    sampler.join()
    connection.close()
    results.put({"latencies": latencies, "lock_samples": lock_samples})


class _Observed:
    """A phase with the writer running and the longest open transaction sampled."""

    def __init__(self, url: str) -> None:
        self.url = url
        context = multiprocessing.get_context("spawn")
        self.ready, self.stop, self.results = context.Event(), context.Event(), context.Queue()
        self.process = context.Process(
            target=_writer, args=(url, self.ready, self.stop, self.results)
        )
        self.longest_xact = 0.0
        self._done = threading.Event()

    def _watch(self) -> None:
        while not self._done.is_set():
            rows = sql_rows(
                self.url,
                "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) "
                "FROM pg_stat_activity WHERE application_name NOT IN ('bench-writer') "
                "AND state <> 'idle' AND pid <> pg_backend_pid() AND datname = current_database()",
            )
            self.longest_xact = max(self.longest_xact, float(rows[0][0]))
            time.sleep(0.1)

    def __enter__(self) -> _Observed:
        self.process.start()
        self.ready.wait(timeout=120)
        time.sleep(1.0)  # the writer is connected and warm before the phase starts
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self._done.set()
        self.watcher.join()
        self.stop.set()
        self.writer = self.results.get(timeout=60)
        self.process.join(timeout=60)


def _baseline(url: str, cutoff: datetime) -> tuple[float, int]:
    """COPY the old rows out, then DELETE them in one transaction and roll it back:
    (COPY seconds, rows the DELETE removed)."""
    connection = psycopg2.connect(libpq_url(url))
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor, tempfile.TemporaryFile() as out:
            cursor.copy_expert(
                cursor.mogrify(
                    "COPY (SELECT * FROM prediction_log WHERE model_name = %s "
                    "AND predicted_at < %s) TO STDOUT WITH (FORMAT csv)",
                    (MODEL, cutoff),
                ).decode(),
                out,
            )
        connection.commit()
        copied = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM prediction_log WHERE model_name = %s AND predicted_at < %s",
                (MODEL, cutoff),
            )
            deleted = cursor.rowcount
        connection.rollback()
    finally:
        connection.close()
    return copied, deleted


def _table_state(url: str) -> dict[str, Any]:
    ((size, dead, live),) = sql_rows(
        url,
        "SELECT pg_total_relation_size('prediction_log'), n_dead_tup, n_live_tup "
        "FROM pg_stat_user_tables WHERE relname = 'prediction_log'",
    )
    return {"size_mb": size / 2**20, "dead": dead, "live": live}


def _p99(observed: _Observed) -> float:
    latencies = sorted(observed.writer["latencies"])
    return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def _wait_share(observed: _Observed) -> float:
    samples, waiting = observed.writer["lock_samples"]
    return waiting / max(samples, 1)


def _report(name: str, rows: int, observed: _Observed, state: dict, extra: str = "") -> None:
    latencies = sorted(observed.writer["latencies"])
    samples, waiting = observed.writer["lock_samples"]
    p99 = _p99(observed)
    print(
        f"{name:<10} {observed.seconds:8.1f} s  {rows / observed.seconds:10,.0f} rows/s  "
        f"writer: {len(latencies):6,} inserts, p50 {statistics.median(latencies) * 1e3:6.1f} ms, "
        f"p99 {p99 * 1e3:7.1f} ms, worst {latencies[-1] * 1e3:7.1f} ms, lock waits "
        f"{waiting}/{samples} samples  longest transaction {observed.longest_xact:6.1f} s  "
        f"table {state['size_mb']:,.0f} MB ({state['live']:,} live, {state['dead']:,} dead)"
        f"{extra}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30, help="expired days the rows span")
    parser.add_argument("--recent", type=int, default=200_000, help="rows that must stay")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    churn = load_config(ROOT / "relearn.yaml").models[0]
    model = churn.model_copy(
        update={
            "name": MODEL,
            "retention": churn.retention.model_copy(
                update={"days": RETENTION_DAYS, "batch_size": args.batch_size}
            ),
        }
    )
    cutoff = NOW - timedelta(days=RETENTION_DAYS)
    cutoff = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    with _stack(args.keep) as services:
        url = services.database_url
        _progress(f"generating {args.rows:,} old + {args.recent:,} recent rows")
        seconds = generate(url, args.rows, args.days, args.recent)
        _progress(f"generated in {seconds:.0f} s; phase 1: baseline (COPY out, one DELETE)")
        with _Observed(url) as baseline:
            copy_seconds, deleted = _baseline(url, cutoff)
        assert deleted == args.rows, deleted
        baseline_state = _table_state(url)

        _progress("phase 2: retention")
        with _Observed(url) as retention:
            result = expire_model(services, model, now=NOW, trigger_key="bench")
        assert result.deleted == args.rows, result.summary()
        (delete_seconds,) = sql_rows(
            url,
            "SELECT extract(epoch FROM sum(deleted_at - archived_at)) FROM prediction_archives",
        )[0]
        retention_state = _table_state(url)

    print(
        f"\nexpire {args.rows:,} rows over {args.days} days ({args.recent:,} recent rows kept), "
        f"batches of {args.batch_size:,}; generation took {seconds:.0f} s"
    )
    _report(
        "retention",
        args.rows,
        retention,
        retention_state,
        f"\n{'':<10} of which read back + verify + batched delete: {float(delete_seconds):.1f} s "
        f"({args.rows / float(delete_seconds):,.0f} rows/s); archived {result.archived:,} rows",
    )
    _report(
        "baseline",
        args.rows,
        baseline,
        baseline_state,
        f"\n{'':<10} COPY out {copy_seconds:.1f} s, one DELETE (rolled back) "
        f"{baseline.seconds - copy_seconds:.1f} s",
    )
    # The machine is shared: absolute figures drift with its load, ratios to the baseline
    # measured in the same run much less.
    plain_delete = baseline.seconds - copy_seconds
    print(
        f"ratios vs the baseline: time x{retention.seconds / baseline.seconds:.1f} "
        f"(export + upload x{(retention.seconds - float(delete_seconds)) / copy_seconds:.1f} "
        f"the COPY; read back + verify + delete x{float(delete_seconds) / plain_delete:.1f} "
        "the DELETE), "
        f"writer p99 x{_p99(retention) / _p99(baseline):.2f}, "
        f"lock-wait share {_wait_share(retention):.2%} vs {_wait_share(baseline):.2%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
