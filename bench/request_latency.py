"""Manual-request queue: pickup latency under a real scheduler and triggerer, claim throughput.

What it measures (figures only, no pass/fail):

1. Claim throughput (no Airflow): 5,000 pending requests for a dummy model, claimed by 8
   threads, each looping ``relearn.store.requests.claim_next`` in its own transaction (one
   connection per thread) until none is left; then the same with 1 thread, for context.
   Prints claims/s and the per-claim round trip, and checks that every request was claimed
   exactly once. Target: >= 500 claims/s.
2. Pickup latency: the whole local stack (Postgres, MLflow, Airflow api-server, scheduler,
   dag-processor and triggerer with the LocalExecutor) runs; the other DAGs are paused.
   Requests for ``churn`` go in one at a time, each while the ``manual_retraining`` run's
   ``wait_for_request`` sensor is deferred and its trigger listening (its connection shows in
   ``pg_stat_activity``); each is timed from the INSERT to: trigger fired (the trigger's log)
   -> sensor task instance scheduled -> queued -> running -> request claimed (status
   ``processing``) -> ``record_run`` queued (the retraining run is queued) -> started ->
   request closed. The prediction log is empty, so each retraining ends quickly with
   "insufficient data". Two series:

   a. steady state (N, default 20): the INSERT comes 0.5-2.5 s (uniform random) after the
      worker that ran the deferring try reported its workload finished (the scheduler's log),
      i.e. the sensor is simply waiting. Target: p95 <= 2 s from insert to claim.
   b. early (default 4): the INSERT comes right after the trigger listens, before that report
      (~5 s after the deferral): the window in which the executor's late "success" for the
      deferring try can fail the resumed try (an Airflow race), which costs a 1 min retry.

The stack is a throw-away one in a temporary RELEARN_HOME on free ports, torn down at the end
(also on error, Ctrl-C or SIGTERM) unless ``--keep``.

    .venv/bin/python bench/request_latency.py [--requests 20] [--early-requests 4]
        [--claims 5000] [--threads 8] [--only throughput|pickup] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from psycopg2.extensions import connection as Connection

    from relearn.settings import Settings
    from relearn_dev.stack.services import Stack

ROOT = Path(__file__).resolve().parents[1]
MODEL = "churn"
DAG_ID = "manual_retraining"
SENSOR = "wait_for_request"
RECORD = "record_run"
TARGET_P95_SECONDS = 2.0
TARGET_CLAIMS_PER_SECOND = 500.0
POLL = 0.05  # seconds between polls while a request waits to be claimed
CLAIM_TIMEOUT = 180.0
CLOSE_TIMEOUT = 600.0
EXIT_TIMEOUT = 30.0
# The worker that ran the deferring try reports its workload finished ~5 s after the deferral
# (in the scheduler's log); the executor then sends "success" for the same try number, which
# the scheduler may take for the resumed try (see the report). Steady state: the INSERT comes
# this many seconds (uniform random) after that report, so it also lands at a random phase of
# the triggerer's and the scheduler's 1 s loops.
STEADY_DELAY = (0.5, 2.5)
# Early: this many seconds after the trigger listens, i.e. before that report.
EARLY_DELAY = (0.0, 1.0)
READY_TIMEOUT = 900.0  # the first parse, the first run and the bootstrap
# The sensor's lease (its default): the claim time is lease_expires_at minus this.
SENSOR_LEASE = timedelta(hours=2)
# The trigger's connection, once it listens, last ran has_pending().
LISTENING = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND state = 'idle' AND backend_start >= %s
      AND query LIKE 'SELECT EXISTS (SELECT 1 FROM model_retraining_requests%%'
"""
ACTIVE_STATES = ("scheduled", "queued", "running")  # up_for_retry of a paused DAG stays


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _summary(values: list[float]) -> str:
    if not values:
        return f"{'-':>7} {'-':>7} {'-':>7}"
    return f"{_quantile(values, 0.5):7.2f} {_quantile(values, 0.95):7.2f} {max(values):7.2f}"


# --- the throw-away stack ------------------------------------------------------------------


@contextlib.contextmanager
def _stack(keep: bool) -> Iterator[Stack]:
    """A Stack in a temporary RELEARN_HOME on free ports; only Postgres started yet."""
    from relearn_dev.stack.throwaway import throwaway_stack

    with throwaway_stack(ROOT, mlflow=False, keep=keep) as throwaway:
        yield throwaway.stack


def _connect(url: str) -> Connection:
    from relearn.store.db import connect

    connection = connect(url)
    connection.autocommit = True
    return connection


# --- 1. claim throughput -------------------------------------------------------------------


def _enqueue(url: str, model: str, count: int) -> None:
    """``count`` pending requests, priorities mixed, distinct creation times; then ANALYZE."""
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO model_retraining_requests (model_name, reason, priority, created_at) "
                "SELECT %s, 'bench ' || g, (ARRAY['high', 'normal', 'low'])[1 + g %% 3], "
                "clock_timestamp() FROM generate_series(1, %s) AS g",
                (model, count),
            )
            cursor.execute("ANALYZE model_retraining_requests")
    finally:
        connection.close()


def _claim_all(url: str, model: str, threads: int) -> dict[str, Any]:
    """Every thread claims until nothing is left; returns ids per claimer and timings."""
    from relearn.store.db import connect
    from relearn.store.requests import claim_next

    claimed: dict[str, list[uuid.UUID]] = {}
    round_trips: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(claimer: str) -> None:
        ids: list[uuid.UUID] = []
        times: list[float] = []
        try:
            connection = connect(url)
        except BaseException as error:
            errors.append(error)
            start.abort()
            return
        try:
            start.wait()
            while True:
                began = time.perf_counter()
                with connection:  # one transaction per claim, committed here
                    request = claim_next(connection, claimer, model_names=[model])
                times.append(time.perf_counter() - began)
                if request is None:
                    break
                ids.append(request.id)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()
            with lock:
                claimed[claimer] = ids
                round_trips.extend(times)

    workers = [
        threading.Thread(target=worker, args=(f"bench-claimer-{i}",), daemon=True)
        for i in range(threads)
    ]
    for thread in workers:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in workers:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    return {"claimed": claimed, "seconds": seconds, "round_trips": round_trips}


def _verify_once(url: str, model: str, count: int, claimed: dict[str, list[uuid.UUID]]) -> str:
    """Every request claimed exactly once, by whom the threads say, on the first attempt."""
    ids = [request_id for per_claimer in claimed.values() for request_id in per_claimer]
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT claimed_by, count(*), count(*) FILTER (WHERE status = 'processing'), "
                "min(attempts), max(attempts) FROM model_retraining_requests "
                "WHERE model_name = %s GROUP BY claimed_by",
                (model,),
            )
            rows = cursor.fetchall()
    finally:
        connection.close()
    in_db = {claimer: total for claimer, total, _, _, _ in rows}
    processing = sum(row[2] for row in rows)
    attempts = {row[3] for row in rows} | {row[4] for row in rows}
    unclaimed = in_db.get(None, 0)
    matches = all(in_db.get(claimer, 0) == len(per) for claimer, per in claimed.items())
    ok = (
        len(ids) == count == len(set(ids)) == processing
        and unclaimed == 0
        and attempts == {1}
        and matches
    )
    return (
        f"{count:,} requests, {len(ids):,} claims, {len(set(ids)):,} distinct, {processing:,} "
        f"processing, {unclaimed:,} unclaimed, attempts {sorted(attempts)}, per-claimer counts "
        f"{'match' if matches else 'DIFFER from'} the table -> "
        f"{'each claimed exactly once' if ok else 'NOT EXACTLY ONCE'}"
    )


def _delete(url: str, model: str) -> None:
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM model_retraining_requests WHERE model_name = %s", (model,))
    finally:
        connection.close()


def claim_throughput(url: str, count: int, threads: int) -> list[dict[str, Any]]:
    results = []
    for n_threads in dict.fromkeys((threads, 1)):
        model = f"bench-dummy-{uuid.uuid4().hex[:8]}"
        _progress(f"claim throughput: {count:,} requests, {n_threads} thread(s)")
        _enqueue(url, model, count)
        try:
            run = _claim_all(url, model, n_threads)
            check = _verify_once(url, model, count, run["claimed"])
        finally:
            _delete(url, model)
        claims = sum(len(ids) for ids in run["claimed"].values())
        results.append(
            {
                "threads": n_threads,
                "claims": claims,
                "seconds": run["seconds"],
                "rate": claims / run["seconds"],
                "round_trips_ms": [t * 1000 for t in run["round_trips"]],
                "per_thread": sorted(len(ids) for ids in run["claimed"].values()),
                "check": check,
            }
        )
        _progress(f"  {claims / run['seconds']:,.0f} claims/s")
    return results


# --- 2. pickup latency ---------------------------------------------------------------------


@dataclass
class Ready:
    """The state in which a request is inserted: sensor deferred, its trigger listening."""

    run_id: str
    ti_id: str  # the sensor's task instance id (= the executor's workload id)
    try_number: int
    deferred_at: datetime  # the trigger row's creation
    listening_seen: datetime  # first poll that saw the trigger's connection


@dataclass
class Sample:
    index: int
    mode: str  # "steady" or "early"
    ready: Ready
    created: datetime
    deferred_exit: datetime | None = None  # the deferring try's workload reported finished
    retried: bool = False  # the sensor needed another try
    fired: datetime | None = None  # "Trigger fired event" in the trigger's log
    scheduled: datetime | None = None  # the sensor TI's scheduled_dttm after the event
    queued: datetime | None = None
    running_seen: datetime | None = None
    claimed: datetime | None = None
    claimed_run: str | None = None
    record_queued: datetime | None = None
    record_started: datetime | None = None
    closed: datetime | None = None
    status: str = "pending"
    next_deferred: datetime | None = None
    next_listening: datetime | None = None
    states: dict[str, datetime] = field(default_factory=dict)


class Metadata:
    """Reads Airflow's metadata database (and pg_stat_activity of Relearn's)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.airflow = _connect(settings.database_url("airflow"))
        self.relearn = _connect(settings.database_url("relearn"))

    def close(self) -> None:
        self.airflow.close()
        self.relearn.close()

    def _one(self, connection: Connection, sql: str, params: tuple = ()) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def dags(self) -> dict[str, bool]:
        with self.airflow.cursor() as cursor:
            cursor.execute("SELECT dag_id, is_paused FROM dag")
            return dict(cursor.fetchall())

    def latest_sensor(self) -> tuple[str, str, str | None, int, datetime | None] | None:
        """(run_id, TI id, sensor state, try number, trigger created) of the newest running run."""
        return self._one(
            self.airflow,
            "SELECT dr.run_id, ti.id::text, ti.state, ti.try_number, t.created_date "
            "FROM dag_run dr JOIN task_instance ti ON ti.dag_id = dr.dag_id "
            "AND ti.run_id = dr.run_id AND ti.task_id = %s "
            "LEFT JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE dr.dag_id = %s AND dr.state = 'running' ORDER BY dr.id DESC LIMIT 1",
            (SENSOR, DAG_ID),
        )

    def others_active(self) -> int:
        return self._one(
            self.airflow,
            "SELECT count(*) FROM task_instance WHERE dag_id <> %s AND state = ANY(%s)",
            (DAG_ID, list(ACTIVE_STATES)),
        )[0]

    def listening(self, since: datetime) -> bool:
        return bool(self._one(self.relearn, LISTENING, (since,))[0])

    def sensor_state(self, run_id: str) -> str | None:
        row = self._one(
            self.airflow,
            "SELECT state FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            (DAG_ID, run_id, SENSOR),
        )
        return row[0] if row else None

    def task_times(self, run_id: str) -> dict[str, tuple]:
        """task_id -> (state, scheduled_dttm, queued_dttm, start_date, end_date, try_number)."""
        with self.airflow.cursor() as cursor:
            cursor.execute(
                "SELECT task_id, state, scheduled_dttm, queued_dttm, start_date, end_date, "
                "try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            )
            return {row[0]: row[1:] for row in cursor.fetchall()}

    def request(self, request_id: uuid.UUID) -> tuple:
        """(status, claimed_by, updated_at, lease_expires_at, retraining_run_id, processed_at)."""
        return self._one(
            self.relearn,
            "SELECT status, claimed_by, updated_at, lease_expires_at, retraining_run_id, "
            "processed_at FROM model_retraining_requests WHERE id = %s",
            (request_id,),
        )


def _check_alive(stack: Stack) -> None:
    from relearn.settings import StackError

    broken = stack.supervisor.first_exited()
    if broken is not None:
        raise StackError(f"{broken.name} stopped unexpectedly (see {broken.log_file})")


def _api(settings: Settings, method: str, path: str, body: dict, token: str | None = None) -> dict:
    request = urllib.request.Request(
        f"{settings.airflow_url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def _pause_others(settings: Settings, dag_ids: list[str]) -> None:
    from relearn_dev.stack.services import AIRFLOW_USER, airflow_password

    token = _api(
        settings,
        "POST",
        "/auth/token",
        {"username": AIRFLOW_USER, "password": airflow_password(settings)},
    )["access_token"]
    for dag_id in dag_ids:
        path = f"/api/v2/dags/{dag_id}?update_mask=is_paused"
        _api(settings, "PATCH", path, {"is_paused": True}, token)


def _bootstrap(settings: Settings) -> subprocess.Popen:
    """``relearn bootstrap --model churn`` in a child process (it imports torch and MLflow)."""
    command = [str(Path(sys.executable).parent / "relearn"), "bootstrap", "--model", MODEL]
    return subprocess.Popen(command, cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr)


def _wait_for_dags(stack: Stack, meta: Metadata, bootstrap: subprocess.Popen) -> list[str]:
    """Until the bundle is parsed and the champion bootstrapped; pauses the other DAGs."""
    started = time.monotonic()
    last = 0.0
    paused: list[str] = []
    while True:
        _check_alive(stack)
        dags = meta.dags()
        others = [dag_id for dag_id, is_paused in dags.items() if dag_id != DAG_ID]
        if DAG_ID in dags and len(dags) >= len(list((ROOT / "dags").glob("[!_]*.py"))):
            if others:
                _pause_others(stack.settings, others)
                paused = others
            break
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            _progress(
                f"waiting for the dag-processor to parse the bundle "
                f"({time.monotonic() - started:.0f} s, parsed: {', '.join(sorted(dags)) or '-'})"
            )
        if time.monotonic() - started > READY_TIMEOUT:
            raise TimeoutError(f"{DAG_ID} not parsed after {READY_TIMEOUT:.0f} s")
        time.sleep(1)
    _progress(f"parsed after {time.monotonic() - started:.0f} s; paused {', '.join(paused)}")
    if bootstrap.wait(timeout=READY_TIMEOUT) != 0:
        raise RuntimeError(f"relearn bootstrap failed (exit {bootstrap.returncode})")
    return paused


def _wait_ready(
    stack: Stack, meta: Metadata, previous_run: str | None, timeout: float, *, settle: bool
) -> Ready:
    """Until a run other than ``previous_run`` has its sensor deferred and trigger listening.

    ``settle``: also until no task of another DAG is active (before the first request).
    """
    started = time.monotonic()
    last = time.monotonic()
    while True:
        _check_alive(stack)
        found = meta.latest_sensor()
        state = "no running run"
        if found is not None:
            run_id, ti_id, state, try_number, deferred_at = found
            if run_id != previous_run and state == "deferred" and deferred_at is not None:
                if meta.listening(deferred_at) and not (settle and meta.others_active()):
                    return Ready(run_id, ti_id, try_number, deferred_at, _now())
                state = "deferred, trigger not listening yet (or other DAGs still active)"
        if time.monotonic() - last >= 15:
            last = time.monotonic()
            _progress(
                f"waiting for the sensor to defer ({time.monotonic() - started:.0f} s: {state})"
            )
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"the sensor did not defer within {timeout:.0f} s (last: {state})")
        time.sleep(POLL)


class SchedulerLog:
    """``airflow-scheduler.log`` read as it grows: when each deferring workload finished.

    The LocalExecutor's workers log there: ``Workload finished ... final_state=deferred ...
    workload_id=<task instance id>``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.exits: dict[str, datetime] = {}

    def deferred_exit(self, ti_id: str) -> datetime | None:
        if self.path.exists():
            with self.path.open("rb") as log:
                log.seek(self.offset)
                chunk = log.read()
                self.offset += len(chunk)
            lines = (self.partial + chunk).split(b"\n")
            self.partial = lines.pop()
            for raw in lines:
                line = raw.decode(errors="replace")
                if "Workload finished" not in line or "final_state=deferred" not in line:
                    continue
                workload = re.search(r"workload_id=([0-9a-f-]+)", line)
                with contextlib.suppress(ValueError):
                    stamp = datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
                    if workload and stamp.tzinfo:
                        self.exits[workload.group(1)] = stamp
        return self.exits.get(ti_id)

    def wait_deferred_exit(self, stack: Stack, ti_id: str) -> datetime | None:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while (found := self.deferred_exit(ti_id)) is None and time.monotonic() < deadline:
            _check_alive(stack)
            time.sleep(POLL)
        return found


def _trigger_fired(settings: Settings, run_id: str, try_number: int) -> datetime | None:
    """When the trigger yielded its event, from its log (``<ti log>.trigger.<id>.log``)."""
    folder = (
        settings.log_dir / "airflow" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={SENSOR}"
    )
    fired: list[datetime] = []
    for path in folder.glob(f"attempt={try_number}.log.trigger.*.log"):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                record = json.loads(line)
                if record.get("event") == "Trigger fired event":
                    stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                    fired.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
    return max(fired) if fired else None


def _one_request(
    stack: Stack, meta: Metadata, log: SchedulerLog, index: int, mode: str, ready: Ready
) -> Sample:
    from relearn.store.requests import create_request

    connection = meta.relearn
    request = create_request(
        connection, model_name=MODEL, known_models=[MODEL], reason=f"request_latency bench #{index}"
    )
    sample = Sample(index=index, mode=mode, ready=ready, created=request.created_at)
    began = last = time.monotonic()
    # Fast: until claimed, noting when the sensor's state changes.
    while True:
        state = meta.sensor_state(ready.run_id) or "none"
        sample.states.setdefault(state, _now())
        status, claimer, updated_at, lease_expires_at, run_link, _ = meta.request(request.id)
        if status != "pending":
            sample.claimed = updated_at if run_link is None else lease_expires_at - SENSOR_LEASE
            sample.claimed_run = (claimer or "").partition("/")[2]
            break
        if time.monotonic() - began > CLAIM_TIMEOUT:
            raise TimeoutError(f"request #{index} not claimed after {CLAIM_TIMEOUT:.0f} s")
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            _progress(f"  request #{index} still pending (sensor {state})")
        time.sleep(POLL)
    sample.running_seen = sample.states.get("running")
    # Slow: until the request is closed.
    while True:
        _check_alive(stack)
        status, _, _, _, _, processed_at = meta.request(request.id)
        if status in ("completed", "failed", "cancelled"):
            sample.status, sample.closed = status, processed_at
            break
        if time.monotonic() - began > CLOSE_TIMEOUT:
            raise TimeoutError(f"request #{index} still {status} after {CLOSE_TIMEOUT:.0f} s")
        time.sleep(0.25)
    run_id = sample.claimed_run or ready.run_id
    tasks = meta.task_times(run_id)
    if SENSOR in tasks:
        sample.retried = tasks[SENSOR][5] > ready.try_number
        scheduled, queued = tasks[SENSOR][1], tasks[SENSOR][2]
        if sample.retried:  # the columns now hold the retry's times: the first resume's, polled
            scheduled, queued = sample.states.get("scheduled"), sample.states.get("queued")
        sample.scheduled = scheduled if scheduled and scheduled >= sample.created else None
        sample.queued = queued if queued and queued >= sample.created else None
    sample.deferred_exit = log.deferred_exit(ready.ti_id)
    if RECORD in tasks:
        sample.record_queued, sample.record_started = tasks[RECORD][2], tasks[RECORD][3]
    sample.fired = _trigger_fired(stack.settings, ready.run_id, ready.try_number)
    return sample


def pickup_latency(stack: Stack, count: int, early: int, bootstrap: bool) -> dict[str, Any]:
    settings = stack.settings
    _progress(f"starting MLflow and Airflow (logs in {settings.log_dir})")
    stack.start_mlflow()
    stack.start_airflow()
    child = _bootstrap(settings) if bootstrap else subprocess.Popen([sys.executable, "-c", ""])
    meta = Metadata(settings)
    log = SchedulerLog(settings.log_dir / "airflow-scheduler.log")
    samples: list[Sample] = []
    rng = random.Random(0)
    try:
        paused = _wait_for_dags(stack, meta, child)
        _progress("waiting for the first sensor to defer (and the other DAGs' runs to end)")
        ready = _wait_ready(stack, meta, None, READY_TIMEOUT, settle=True)
        started = time.monotonic()
        plan = ["steady"] * count + ["early"] * early
        for index, mode in enumerate(plan, start=1):
            if mode == "steady":
                log.wait_deferred_exit(stack, ready.ti_id)
                time.sleep(rng.uniform(*STEADY_DELAY))
            else:
                time.sleep(rng.uniform(*EARLY_DELAY))
            sample = _one_request(stack, meta, log, index, mode, ready)
            samples.append(sample)
            _progress(
                f"request {index}/{len(plan)} ({mode}): claimed after "
                f"{_seconds(sample.created, sample.claimed):.2f} s, {sample.status} after "
                f"{_seconds(sample.created, sample.closed):.1f} s"
                + (" (the sensor was retried)" if sample.retried else "")
            )
            ready = _wait_ready(stack, meta, sample.claimed_run, CLOSE_TIMEOUT, settle=False)
            sample.next_deferred, sample.next_listening = ready.deferred_at, ready.listening_seen
        elapsed = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=30)
        meta.close()
    return {"samples": samples, "paused": paused, "elapsed": elapsed}


# --- report --------------------------------------------------------------------------------


def _print_throughput(results: list[dict[str, Any]], port: int) -> None:
    print(
        f"\n1. claim throughput: claim_next(model_names=[dummy]), one transaction per claim, "
        f"one connection per thread (Postgres :{port}, requests of mixed priority)"
    )
    print(
        f"   {'threads':>7} {'claims':>7} {'seconds':>8} {'claims/s':>9}"
        f"  {'claim ms p50':>12} {'p95':>6} {'max':>7}  claims per thread"
    )
    for r in results:
        ms = r["round_trips_ms"]
        spread = (
            f"{r['per_thread'][0]:,}..{r['per_thread'][-1]:,}"
            if len(r["per_thread"]) > 1
            else f"{r['per_thread'][0]:,}"
        )
        print(
            f"   {r['threads']:>7} {r['claims']:>7,} {r['seconds']:8.2f} {r['rate']:>9,.0f}"
            f"  {_quantile(ms, 0.5):>12.2f} {_quantile(ms, 0.95):>6.2f} {max(ms):>7.1f}  {spread}"
        )
        print(f"           check: {r['check']}")
    print(
        f"   target: >= {TARGET_CLAIMS_PER_SECOND:,.0f} claims/s ({results[0]['threads']} threads)"
    )


POINTS: list[tuple[str, Any]] = [
    ("trigger fired (trigger's log)", lambda s: s.fired),
    ("sensor TI scheduled (event stored)", lambda s: s.scheduled),
    ("sensor TI queued (scheduler)", lambda s: s.queued),
    (f"sensor TI running (polled every {POLL:g} s)", lambda s: s.running_seen),
    ("request claimed (status processing)", lambda s: s.claimed),
    ("record_run queued (run queued)", lambda s: s.record_queued),
    ("record_run started", lambda s: s.record_started),
    ("request closed", lambda s: s.closed),
]


def _print_points(samples: list[Sample]) -> None:
    print(f"   {'seconds from the INSERT to':<44} {'p50':>7} {'p95':>7} {'max':>7}   n")
    for label, get in POINTS:
        values = [v for s in samples if (v := _seconds(s.created, get(s))) is not None]
        print(f"   {label:<44} {_summary(values)} {len(values):>3}")
    print("   step by step (seconds)")
    before, earlier = "INSERT", lambda s: s.created
    for label, get in POINTS:
        values = [v for s in samples if (v := _seconds(earlier(s), get(s))) is not None]
        short = label.split(" (")[0]
        print(f"     {before + ' -> ' + short:<42} {_summary(values)} {len(values):>3}")
        before, earlier = short, get


def _print_pickup(result: dict[str, Any], settings: Settings) -> None:
    samples: list[Sample] = result["samples"]
    steady = [s for s in samples if s.mode == "steady"]
    early = [s for s in samples if s.mode == "early"]
    print(
        f"\n2. pickup latency: requests for '{MODEL}', one at a time, each inserted while the "
        f"{DAG_ID} sensor was deferred and its trigger listening (LocalExecutor; paused: "
        f"{', '.join(result['paused']) or '-'})"
    )
    if steady:
        print(
            f"\n2a. steady state: {len(steady)} requests, each inserted {STEADY_DELAY[0]:g}-"
            f"{STEADY_DELAY[1]:g} s (uniform random) after the worker that ran the deferring try"
            " reported its workload finished"
        )
        _print_points(steady)
        claims = [v for s in steady if (v := _seconds(s.created, s.claimed)) is not None]
        p95 = _quantile(claims, 0.95)
        print(
            f"   insert -> claim p95 {p95:.2f} s; target p95 <= {TARGET_P95_SECONDS:g} s "
            f"({'within' if p95 <= TARGET_P95_SECONDS else 'over'} target); sensor retried in "
            f"{sum(s.retried for s in steady)} of {len(steady)}"
        )
    if early:
        hits = [s for s in early if s.retried]
        inside = sum(s.deferred_exit is None or s.deferred_exit > s.created for s in early)
        claims = [v for s in early if (v := _seconds(s.created, s.claimed)) is not None]
        queued = [v for s in early if (v := _seconds(s.created, s.record_queued)) is not None]
        print(
            f"\n2b. early: {len(early)} requests, each inserted {EARLY_DELAY[0]:g}-"
            f"{EARLY_DELAY[1]:g} s after the trigger listened ({inside} of them before the "
            "deferring try's workload was reported finished)"
        )
        print(
            f"   sensor retried in {len(hits)} of {len(early)} (a retry: the executor's stale "
            "'success' for the deferring try failed the resumed try; retry_delay 1 min)"
        )
        print(f"   {'seconds from the INSERT to':<44} {'p50':>7} {'p95':>7} {'max':>7}")
        print(f"   {'request claimed':<44} {_summary(claims)}")
        print(f"   {'record_run queued (run queued)':<44} {_summary(queued)}")

    exits = [
        v for s in samples if (v := _seconds(s.ready.deferred_at, s.deferred_exit)) is not None
    ]
    between = [v for s in samples if (v := _seconds(s.closed, s.next_deferred)) is not None]
    listen = [v for s in samples if (v := _seconds(s.next_deferred, s.next_listening)) is not None]
    cycles = [v for s in samples if (v := _seconds(s.created, s.next_listening)) is not None]
    print(f"\n   between requests (context), all requests  {'p50':>12} {'p95':>7} {'max':>7}")
    print(f"     {'sensor deferred -> deferring workload done':<42} {_summary(exits)}")
    print(f"     {'request closed -> next sensor deferred':<42} {_summary(between)}")
    print(f"     {'sensor deferred -> trigger listening':<42} {_summary(listen)}")
    print(f"     {'full cycle: INSERT -> next sensor listening':<42} {_summary(cycles)}")
    statuses = sorted({s.status for s in samples})
    print(
        f"   {len(samples)} requests in {result['elapsed']:.0f} s; closed as "
        + ", ".join(f"{sum(s.status == x for s in samples)} {x}" for x in statuses)
        + "; claimed by another run than the waiting one: "
        + str(sum(s.claimed_run != s.ready.run_id for s in samples))
    )
    print(
        f"\n   {'#':>3} {'mode':<6} {'defer->ins':>10} {'claim':>7} {'run queued':>10}"
        f" {'closed':>7} retry  sensor states seen (s after the INSERT)"
    )
    for s in samples:
        seen = " ".join(f"{state}@{_seconds(s.created, at):.2f}" for state, at in s.states.items())
        print(
            f"   {s.index:>3} {s.mode:<6} {_seconds(s.ready.deferred_at, s.created):10.2f}"
            f" {_seconds(s.created, s.claimed) or float('nan'):7.2f}"
            f" {_seconds(s.created, s.record_queued) or float('nan'):10.2f}"
            f" {_seconds(s.created, s.closed) or float('nan'):7.1f}"
            f" {'yes' if s.retried else 'no':<5}  {seen}"
        )
    print(f"   logs: {settings.log_dir} (triggerer, scheduler; task logs under airflow/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=20, help="steady-state requests to time (pickup)"
    )
    parser.add_argument(
        "--early-requests",
        type=int,
        default=4,
        help="requests inserted right after the sensor defers (pickup)",
    )
    parser.add_argument("--claims", type=int, default=5000, help="requests to claim (throughput)")
    parser.add_argument("--threads", type=int, default=8, help="claiming threads (throughput)")
    parser.add_argument("--only", choices=["throughput", "pickup"], help="run one part only")
    parser.add_argument(
        "--no-bootstrap", action="store_true", help="skip registering the churn champion"
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    load_before = os.getloadavg()[0]
    try:
        with _stack(args.keep) as stack:
            settings = stack.settings
            throughput = pickup = None
            if args.only != "pickup":
                throughput = claim_throughput(
                    settings.database_url("relearn"), args.claims, args.threads
                )
            if args.only != "throughput":
                pickup = pickup_latency(
                    stack, args.requests, args.early_requests, not args.no_bootstrap
                )
            print(
                f"\nRelearn manual-request queue benchmark (stack in {settings.home}, "
                f"Postgres :{settings.pg_port}, Airflow {settings.airflow_url})"
            )
            if throughput:
                _print_throughput(throughput, settings.pg_port)
            if pickup:
                _print_pickup(pickup, settings)
            print(
                f"\n1-min load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on "
                f"{os.cpu_count()} CPUs (other work on the machine slows every figure)"
            )
            sys.stdout.flush()
    except KeyboardInterrupt:
        _progress("interrupted (the stack was torn down unless --keep)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
