"""Scale figures: many models through the real scheduler, LocalExecutor vs two Celery workers,
and the prediction log's hot queries on a large log with their plans.

1. ``--models`` configured models (copies of relearn.yaml's models, alternating their kinds),
   each bootstrapped and given ``--predictions`` logged predictions over the last 7 days
   (bulk-generated in SQL: random features in each feature's range, ~30 % wrong answers, all
   labelled, 100,000 distinct units). Then one ``auto_reinforcement`` run over every model
   (``dry_run``: trains and gates, registers nothing, so both executors get the same work),
   triggered through the REST API of a real scheduler: first with the LocalExecutor, then with
   the CeleryExecutor (Redis, a ``default`` worker and a ``training`` worker). The
   LocalExecutor gets as many task slots as the two workers have together
   (``--local-parallelism``; 0 leaves Airflow's default, 16 tasks of a run at once). Printed: wall
   time of the run, and peak RSS of each worker's process tree (LocalExecutor: the scheduler
   with its executor's worker processes), sampled every 0.5 s — summed RSS, so pages the forked
   processes share are counted once per process (an upper bound).
2. A log of ``--log-rows`` rows over 90 days for the same models (10 % served by a challenger),
   appended day by day in time order with every model's rows interleaved, as a live log grows
   (set-based SQL on two connections; secondary indexes rebuilt after the load), then
   ``EXPLAIN (ANALYZE, BUFFERS)`` of the queries the product runs — captured from the real
   store functions, not copied: the drift window (``drift_rows``), the A/B arm statistics
   (``arm_totals``) and the health window (``window_stats``) — with the index each one uses.

The machine is shared (2 cores, several engineers): absolute figures are low; compare the two
executors within one run. Everything runs on a throw-away stack (temporary RELEARN_HOME, free
ports), torn down at the end.

    .venv/bin/python bench/scale.py [--models 20] [--predictions 100000] [--log-rows 50000000]
        [--executors local celery] [--local-parallelism N]
        [--skip-executors] [--skip-plans] [--keep]

The two parts run separately with ``--skip-plans`` / ``--skip-executors`` (the plans part needs
no bootstrapped model); ``--keep`` leaves the throw-away Postgres running with its log.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import psycopg2
import psycopg2.extensions
import yaml
from psycopg2 import sql

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn_dev.stack.services import Stack

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "auto_reinforcement"
WINDOW = timedelta(days=7)
LOG_DAYS = 90
# Connections loading the big log at once.
LOADERS = 2
INDEX_USE = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\S+)")


def scaled_config(models: int, path: Path) -> None:
    """``models`` copies of relearn.yaml's models, named scale_00.., kinds alternating."""
    raw = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    originals = raw["models"]
    raw["models"] = [
        {**originals[i % len(originals)], "name": f"scale_{i:02d}"} for i in range(models)
    ]
    path.write_text(yaml.safe_dump(raw))


def _feature_value(feature: Any) -> sql.Composable:
    if feature.type == "categorical":
        choices = sql.SQL(", ").join(sql.Literal(c) for c in feature.categories)
        count = sql.Literal(len(feature.categories))
        return sql.SQL("(ARRAY[{}])[1 + floor(random() * {})::int]").format(choices, count)
    low = feature.min if feature.min is not None else 0.0
    high = feature.max if feature.max is not None else 1.0
    return sql.SQL("round(({} + random() * {})::numeric, 3)").format(
        sql.Literal(float(low)), sql.Literal(float(high - low))
    )


def _predictions(
    model_cfg: ModelConfig, rows: int, *, end: datetime, span: timedelta, challenger_share: float
) -> sql.Composable:
    """SELECT ``rows`` labelled predictions of v1 (v2: challenger) in ``[end - span, end)``."""
    pairs = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(f.name), _feature_value(f)) for f in model_cfg.features
    )
    classes = sql.SQL(", ").join(sql.Literal(c) for c in model_cfg.classes)
    return sql.SQL(
        """
        SELECT gen_random_uuid(), {model}, CASE WHEN arm THEN '2' ELSE '1' END, at,
               jsonb_build_object({pairs}), predicted, confidence,
               CASE WHEN arm THEN 'challenger' ELSE 'champion' END,
               CASE WHEN random() < 0.7 THEN predicted
                    ELSE (ARRAY[{classes}])[1 + floor(random() * {n})::int] END,
               at + interval '1 hour', (5 + random() * 20)::real,
               'unit-' || floor(random() * 100000)::int
        FROM (
            SELECT {end}::timestamptz - random() * {span} AS at,
                   (ARRAY[{classes}])[1 + floor(random() * {n})::int] AS predicted,
                   0.5 + random() / 2 AS confidence, random() < {share} AS arm
            FROM generate_series(1, {rows})
        ) AS generated
        """
    ).format(
        model=sql.Literal(model_cfg.name),
        pairs=pairs,
        classes=classes,
        n=sql.Literal(len(model_cfg.classes)),
        end=sql.Literal(end),
        span=sql.Literal(span),
        share=sql.Literal(challenger_share),
        rows=sql.Literal(rows),
    )


def _insert(selects: list[sql.Composable]) -> sql.Composable:
    """One INSERT of the ``selects``' rows in time order, as a live log is appended."""
    return sql.SQL(
        """
        INSERT INTO prediction_log (prediction_id, model_name, model_version, predicted_at,
            features, predicted_label, confidence, served_by, actual_label, outcome_at,
            latency_ms, unit_id)
        SELECT * FROM ({union}) AS rows ORDER BY 4
        """
    ).format(union=sql.SQL(" UNION ALL ").join(selects))


def generate_predictions(
    connection: Any, model_cfg: ModelConfig, rows: int, *, end: datetime
) -> None:
    """``rows`` labelled predictions of ``model_cfg``'s v1 over the retraining window."""
    with connection.cursor() as cursor:
        cursor.execute(
            _insert([_predictions(model_cfg, rows, end=end, span=WINDOW, challenger_share=0.0)])
        )
    connection.commit()


def _log_days(url: str, models: list[ModelConfig], per_day: int, ends: list[datetime]) -> None:
    """Append whole days of every model's predictions, interleaved in time as they are served."""
    from relearn.settings import libpq_url

    with psycopg2.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        # A bench load, not the product's writes: nothing to lose on a crash, so no fsync wait;
        # the per-day sort stays in memory.
        cursor.execute("SET synchronous_commit = off; SET work_mem = '512MB'")
        for end in ends:
            selects = [
                _predictions(m, per_day, end=end, span=timedelta(days=1), challenger_share=0.1)
                for m in models
            ]
            cursor.execute(_insert(selects))
            connection.commit()


def load_log(url: str, models: list[ModelConfig], rows: int, end: datetime) -> int:
    """``rows`` predictions over LOG_DAYS days, loaded by ``LOADERS`` connections in parallel.

    The secondary indexes are dropped during the load and rebuilt from their own definitions
    after it (a bulk load's usual order, many times faster than updating them row by row); the
    primary key stays, so every row still goes through its uniqueness check.
    """
    from relearn.settings import libpq_url

    per_day = max(1, rows // (len(models) * LOG_DAYS))
    days = [end - timedelta(days=d) for d in range(LOG_DAYS - 1, -1, -1)]
    # Not ``with connect()``: that holds one transaction (and DROP INDEX's lock) to its end.
    with contextlib.closing(psycopg2.connect(libpq_url(url))) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'prediction_log' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                "WHERE conrelid = 'prediction_log'::regclass)"
            )
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(LOADERS) as pool:
            loaders = [
                pool.submit(_log_days, url, models, per_day, days[i::LOADERS])
                for i in range(LOADERS)
            ]
            for loader in loaders:
                loader.result()  # a failed loader fails the bench, never a partial log
        print(f"  rows loaded in {time.monotonic() - started:.0f} s", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for name, definition in indexes:
                started = time.monotonic()
                cursor.execute(definition)
                print(f"  {name} built in {time.monotonic() - started:.0f} s", flush=True)
            cursor.execute("ANALYZE prediction_log")
    return per_day * len(models) * LOG_DAYS


@dataclass
class RssSampler:
    """Peak RSS (MB) of each named process tree, sampled every 0.5 s in a thread."""

    roots: dict[str, int]
    peaks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _tree_rss(self, pid: int) -> float:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, pid in self.roots.items():
                self.peaks[name] = max(self.peaks.get(name, 0.0), self._tree_rss(pid))

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(
    stack: Stack, executor: str, local_parallelism: int
) -> tuple[float, dict[str, float], dict[str, int]]:
    """Start Airflow with ``executor``, run auto_reinforcement once over every model."""
    from relearn_dev.stack.rest import ONLY_TRIGGERED_RUNS, AirflowRest
    from relearn_dev.stack.services import Stack

    extra_env = dict(ONLY_TRIGGERED_RUNS)
    if executor == "local" and local_parallelism:
        extra_env["AIRFLOW__CORE__PARALLELISM"] = str(local_parallelism)
    airflow = Stack(stack.settings, ROOT, executor=executor, extra_env=extra_env)
    try:
        airflow.start_airflow()
        api = AirflowRest(stack.settings)
        api.unpause(DAG_ID)
        names = (
            ("airflow scheduler",)
            if executor == "local"
            else tuple(service.name for service in airflow.workers.values())
        )
        roots = {
            service.name: service.process.pid
            for service in airflow.supervisor.services
            if service.name in names and service.process is not None
        }
        with RssSampler(roots) as sampler:
            started = time.monotonic()
            run_id = api.trigger(DAG_ID, {"dry_run": True})
            state = api.wait(DAG_ID, run_id, timeout=3600)
            wall = time.monotonic() - started
        found = api.task_instances.get_task_instances(DAG_ID, run_id, limit=1000)
        states: dict[str, int] = {}
        for ti in found.task_instances:
            key = ti.state.value if ti.state else "none"
            states[key] = states.get(key, 0) + 1
        if state != "success":
            print(f"  {executor}: the run ended {state}: {states}")
        return wall, sampler.peaks, states
    finally:
        airflow.down(keep_database=True)


class RecordingCursor(psycopg2.extensions.cursor):
    """Remembers every statement the store runs, with its parameters bound."""

    statements: list[str]

    def execute(self, query: Any, params: Any = None) -> Any:
        self.connection.statements.append(self.mogrify(query, params).decode())
        return super().execute(query, params)


class RecordingConnection(psycopg2.extensions.connection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: list[str] = []


def explain(url: str, what: str, call: Any) -> None:
    """Run ``call(connection)`` (a real store function), then EXPLAIN ANALYZE what it ran."""
    from relearn.settings import libpq_url

    connection = psycopg2.connect(
        libpq_url(url), connection_factory=RecordingConnection, cursor_factory=RecordingCursor
    )
    try:
        started = time.monotonic()
        call(connection)
        seconds = time.monotonic() - started
        print(f"\n-- {what}: {seconds * 1000:.0f} ms for the store call")
        for statement in connection.statements:
            with connection.cursor() as cursor:
                psycopg2.extensions.cursor.execute(
                    cursor, "EXPLAIN (ANALYZE, BUFFERS) " + statement
                )
                plan = "\n".join(row[0] for row in cursor.fetchall())
            indexes = sorted(set(INDEX_USE.findall(plan))) or ["none (sequential scan)"]
            print(f"   index used: {', '.join(indexes)}")
            print("   " + plan.replace("\n", "\n   "))
        connection.rollback()
    finally:
        connection.close()


def query_plans(database_url: str, models: list[ModelConfig], log_rows: int) -> None:
    from relearn.settings import libpq_url
    from relearn.store.abtests import ArmWindow, arm_totals
    from relearn.store.prediction_log import drift_rows, window_stats

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.monotonic()
    total = load_log(database_url, models, log_rows, end)
    with psycopg2.connect(libpq_url(database_url)) as connection, connection.cursor() as cursor:
        # Not count(*): a sequential scan of the whole log, minutes at 50M rows.
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('prediction_log'))")
        (size,) = cursor.fetchone()
    print(
        f"\nlog: {total:,} rows ({size} with indexes), generated in "
        f"{time.monotonic() - started:.0f} s"
    )
    model_cfg = models[0]
    day = timedelta(days=1)
    explain(
        database_url,
        f"drift window (24 h of {model_cfg.name} v1)",
        lambda c: drift_rows(c, model_cfg, "1", since=end - day, until=end),
    )
    window = ArmWindow(model_cfg.name, "1", "2", end - 7 * day, end)
    explain(database_url, "A/B arm statistics (7 days)", lambda c: arm_totals(c, window))
    explain(
        database_url,
        "health window (24 h of the champion)",
        lambda c: window_stats(c, model_cfg, "1", since=end - day, until=end),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--log-rows", type=int, default=50_000_000)
    parser.add_argument(
        "--executors",
        nargs="+",
        choices=("local", "celery"),
        default=["local", "celery"],
        help="the executors to compare, in this order (the first is the baseline)",
    )
    parser.add_argument(
        "--local-parallelism",
        type=int,
        default=None,
        help="task slots of the LocalExecutor (default: as many as the Celery workers have "
        "together, so both run as many tasks at once; 0: Airflow's own default)",
    )
    parser.add_argument("--skip-executors", action="store_true")
    parser.add_argument("--skip-plans", action="store_true")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the throw-away Postgres (and its log) running, to EXPLAIN more queries",
    )
    args = parser.parse_args(argv)
    if args.local_parallelism is not None and args.local_parallelism < 0:
        parser.error("--local-parallelism must be 0 (Airflow's default) or more")

    home = Path(tempfile.mkdtemp(prefix="relearn-scale-"))
    config_path = home / "relearn.yaml"
    scaled_config(args.models, config_path)
    # Imported here, as in the functions above: `--help` and a bad argument answer without
    # loading Airflow, MLflow and torch.
    from relearn_dev.stack.executor import workers as celery_workers
    from relearn_dev.stack.services import Stack, throwaway_env

    for variable in ("RELEARN_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        os.environ.pop(variable, None)
    os.environ.update(throwaway_env(home, ROOT))
    os.environ["RELEARN_CONFIG"] = str(config_path)

    from relearn.bootstrap import bootstrap_model
    from relearn.config import load_config
    from relearn.services import Services
    from relearn.settings import libpq_url, load_settings

    models = load_config(config_path).models
    settings = load_settings()
    stack = Stack(settings, ROOT)
    try:
        stack.start_database()
        database_url = settings.database_url("relearn")
        if not args.skip_executors:
            stack.start_mlflow()
            services = Services(database_url, settings.tracking_uri)
            started = time.monotonic()
            for model_cfg in models:
                bootstrap_model(services, model_cfg)
            print(f"{len(models)} models bootstrapped in {time.monotonic() - started:.0f} s")
            end = datetime.now(UTC)
            started = time.monotonic()
            with psycopg2.connect(libpq_url(database_url)) as connection:
                for model_cfg in models:
                    generate_predictions(connection, model_cfg, args.predictions, end=end)
            print(
                f"{args.predictions:,} predictions x {len(models)} models logged in "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
            slots = args.local_parallelism
            if slots is None:
                slots = sum(worker.concurrency for worker in celery_workers())
            print(f"LocalExecutor slots: {slots or 'Airflow default'}", flush=True)
            results = {executor: one_run(stack, executor, slots) for executor in args.executors}
            first = args.executors[0]
            base = results[first][0]
            print(f"\none auto_reinforcement run over {len(models)} models (dry run):")
            for executor, (wall, peaks, states) in results.items():
                print(f"  {executor:6s} wall {wall:7.1f} s ({wall / base:.2f}x {first})  {states}")
                for name, peak in peaks.items():
                    print(f"         peak RSS {peak:7.0f} MB  {name}")
        if not args.skip_plans:
            query_plans(database_url, models, args.log_rows)
    finally:
        if args.keep and stack.postgres is not None:
            stack.down(keep_database=True)
            postgres = stack.postgres
            pid = (postgres.data_dir / "postmaster.pid").read_text().split()[0]
            print(
                f"\nPostgres keeps running: psql '{libpq_url(database_url)}'\n"
                f"when done: kill -INT {pid}; rm -rf {home} {postgres.cluster_dir}"
            )
        else:
            stack.discard()
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
