"""Collection throughput: predictions accepted over HTTP, and rows through ``relearn ingest``.

A throw-away stack (embedded Postgres, Airflow's migrated metadata DB) on free ports; the
real Airflow api-server app (``airflow.api_fastapi.app:create_app``, which mounts the
collection API from its plugin entry point) served by uvicorn on loopback in a subprocess.

Printed, in one run:
1. HTTP: ``--batches`` POSTs of ``--batch`` rows (bodies encoded before timing, a REST API
   token from ``/auth/token``), ``--clients`` concurrent connections, ``--workers`` server
   processes (Airflow's ``[api] workers``, default 4): predictions accepted/s
   (every row validated against the model's schema, committed, answered with its id);
2. ingest: a ``--ingest-rows`` CSV (one column per feature) through ``ingest_file`` (read,
   screen, COPY, insert) in rows/s;
3. baselines measured in the same run on the same database (before and after, averaged):
   ready-made ``LoggedPrediction`` objects through ``insert_predictions`` (multi-row INSERT
   via ``execute_values``, what the Python Predictor uses), and a pre-rendered buffer through a
   raw ``COPY prediction_log`` (no reading, validation or formatting: the write path's ceiling).
The machine's load average is printed with the figures: on a shared host they scale with it.

Targets: >= 20,000 predictions/s over HTTP; >= 100,000 rows/s through ingest.

    .venv/bin/python bench/collect.py [--batch 10000] [--batches 20] [--clients 2]
        [--ingest-rows 500000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pandas as pd

from relearn.collect.ingest import IngestKind, ingest_file
from relearn.config import load_config
from relearn.store.db import transaction
from relearn.store.predictions import (
    _COPY_COLUMNS,
    LoggedPrediction,
    PredictionColumns,
    insert_predictions,
)
from relearn_dev.stack.throwaway import throwaway_stack

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.config import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
HTTP_TARGET, INGEST_TARGET = 20_000, 100_000
MODEL = "churn"


def _progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code < 500
    return False


@contextlib.contextmanager
def _api_server(env: dict[str, str], workers: int) -> Iterator[str]:
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "uvicorn"),
        "--factory",
        "airflow.api_fastapi.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
        # A worker busy importing the core on its first request misses uvicorn's 5 s health
        # check on a loaded machine and is killed mid-request.
        "--timeout-worker-healthcheck",
        "300",
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a loaded 2-core machine: minutes, not seconds
        while not _healthy(url):
            if server.poll() is not None:
                raise RuntimeError("the api-server exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError("the api-server did not answer within 600 s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _feature_columns(model_cfg: ModelConfig, n: int, rng: np.random.Generator) -> dict:
    columns = {}
    for feature in model_cfg.features:
        if feature.categories:
            columns[feature.name] = rng.choice(feature.categories, n).tolist()
        else:
            low = 0.0 if feature.min is None else feature.min
            high = low + 100.0 if feature.max is None else feature.max
            columns[feature.name] = np.round(rng.uniform(low, high, n), 3).tolist()
    return columns


def _rows(model_cfg: ModelConfig, n: int, seed: int) -> pd.DataFrame:
    """``n`` valid predictions, flat (one column per feature)."""
    rng = np.random.default_rng(seed)
    at = datetime.now(UTC) - timedelta(hours=1)
    return pd.DataFrame(
        {
            "prediction_id": [str(uuid.uuid4()) for _ in range(n)],
            "model_version": "1",
            "unit_id": [f"unit-{i}" for i in range(n)],
            "predicted_at": at.isoformat(),
            "predicted_label": rng.choice(model_cfg.classes, n),
            "confidence": np.round(rng.uniform(0.5, 1.0, n), 4),
            "latency_ms": 2.5,
            **_feature_columns(model_cfg, n, rng),
        }
    )


def _bodies(model_cfg: ModelConfig, batch: int, batches: int) -> list[bytes]:
    names = model_cfg.feature_names
    bodies = []
    for index in range(batches):
        frame = _rows(model_cfg, batch, seed=index)
        records = frame.to_dict("records")
        rows = [
            {
                **{k: v for k, v in record.items() if k not in names},
                "features": {name: record[name] for name in names},
            }
            for record in records
        ]
        bodies.append(json.dumps({"rows": rows}).encode())
    return bodies


def _logged(frame: pd.DataFrame) -> list[LoggedPrediction]:
    names = [c for c in frame.columns if c not in LoggedPrediction.__dataclass_fields__]
    at = datetime.fromisoformat(frame["predicted_at"].iloc[0])
    return [
        LoggedPrediction(
            prediction_id=uuid.UUID(r["prediction_id"]),
            model_name=MODEL,
            model_version="1",
            unit_id=r["unit_id"],
            predicted_at=at,
            features={name: r[name] for name in names if name != "predicted_at"},
            predicted_label=r["predicted_label"],
            confidence=r["confidence"],
            probabilities=None,
            latency_ms=r["latency_ms"],
            served_by="champion",
        )
        for r in frame.to_dict("records")
    ]


def _columns(frame: pd.DataFrame) -> PredictionColumns:
    """``frame`` as ready-made COPY columns (what screening hands to the write path)."""
    logged = _logged(frame)
    return PredictionColumns(
        model_name=MODEL,
        prediction_id=[str(r.prediction_id) for r in logged],
        model_version=[r.model_version for r in logged],
        unit_id=[r.unit_id for r in logged],
        predicted_at=[r.predicted_at.isoformat() for r in logged],
        features=[json.dumps(r.features) for r in logged],
        predicted_label=[r.predicted_label for r in logged],
        confidence=[r.confidence for r in logged],
        probabilities=[None for _ in logged],
        latency_ms=[r.latency_ms for r in logged],
        served_by=[r.served_by for r in logged],
    )


def http_rate(url: str, env: dict[str, str], bodies: list[bytes], clients: int) -> float:
    passwords = json.loads((Path(env["AIRFLOW_HOME"]) / "passwords.json").read_text())
    username, password = next(iter(passwords.items()))
    token = httpx.post(
        f"{url}/auth/token", json={"username": username, "password": password}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    endpoint = f"{url}/relearn/api/v1/models/{MODEL}/predictions"
    # Warm-up: the first request imports pandas and the core in the server.
    warm = httpx.post(endpoint, content=bodies[0], headers=headers, timeout=300)
    warm.raise_for_status()

    def send(body: bytes) -> int:
        with httpx.Client(timeout=300) as session:
            answer = session.post(endpoint, content=body, headers=headers)
        answer.raise_for_status()
        result = answer.json()
        if result["rejected"]:
            raise RuntimeError(f"rows rejected: {result['rejected'][:3]}")
        return result["logged"]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        logged = sum(pool.map(send, bodies[1:]))
    elapsed = time.perf_counter() - started
    expected = sum(1 for _ in bodies[1:]) * (len(json.loads(bodies[1])["rows"]))
    if logged != expected:
        raise RuntimeError(f"{logged} logged of {expected}")
    return logged / elapsed


def baseline_rates(database_url: str, model_cfg: ModelConfig, n: int) -> tuple[float, float]:
    """Ready-made rows through ``insert_predictions``; a pre-rendered buffer through COPY."""
    rows = _logged(_rows(model_cfg, n, seed=10_001))
    started = time.perf_counter()
    with transaction(database_url) as connection:
        insert_predictions(connection, rows)
    insert_rate = n / (time.perf_counter() - started)
    buffer = io.StringIO(_columns(_rows(model_cfg, n, seed=10_002)).copy_text)
    started = time.perf_counter()
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.copy_expert(f"COPY prediction_log ({_COPY_COLUMNS}) FROM STDIN", buffer)
    return insert_rate, n / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--ingest-rows", type=int, default=500_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="api-server processes (Airflow's [api] workers)"
    )
    args = parser.parse_args(argv)
    model_cfg = load_config(ROOT / "relearn.yaml").model(MODEL)
    with throwaway_stack(ROOT, mlflow=False) as throwaway:
        stack = throwaway.stack
        env = stack.migrate_airflow()
        database_url = stack.settings.database_url("relearn")
        _progress(f"encoding {args.batches + 1} bodies of {args.batch} rows")
        bodies = _bodies(model_cfg, args.batch, args.batches + 1)
        _progress("baselines, before")
        before = baseline_rates(database_url, model_cfg, args.batch * 5)
        with _api_server(env, args.workers) as url:
            _progress("posting batches")
            http = http_rate(url, env, bodies, args.clients)
        _progress(f"writing a {args.ingest_rows}-row CSV")
        path = Path(tempfile.mkdtemp()) / "history.csv"
        _rows(model_cfg, args.ingest_rows, seed=20_000).to_csv(path, index=False)
        started = time.perf_counter()
        report = ingest_file(
            database_url,
            load_config(ROOT / "relearn.yaml"),
            IngestKind.PREDICTIONS,
            path,
            model=MODEL,
        )
        ingest = report.logged / (time.perf_counter() - started)
        if report.bad or report.logged != args.ingest_rows:
            raise RuntimeError(f"ingest: {report.logged} logged, {len(report.bad)} bad")
        shutil.rmtree(path.parent)
        _progress("baselines, after")
        after = baseline_rates(database_url, model_cfg, args.batch * 5)
    # The load of a shared machine drifts: the baselines are the mean of before and after.
    insert_rate, copy_rate = ((b + a) / 2 for b, a in zip(before, after, strict=True))
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"HTTP predictions accepted:     {http:>10,.0f} rows/s  (target >= {HTTP_TARGET:,})")
    print(f"relearn ingest (CSV):          {ingest:>10,.0f} rows/s  (target >= {INGEST_TARGET:,})")
    print(
        f"baseline execute_values INSERT:{insert_rate:>10,.0f} rows/s  (ready-made rows; "
        f"{before[0]:,.0f} before, {after[0]:,.0f} after)"
    )
    print(
        f"baseline raw COPY:             {copy_rate:>10,.0f} rows/s  (pre-rendered buffer; "
        f"{before[1]:,.0f} before, {after[1]:,.0f} after)"
    )
    print(
        f"HTTP / raw COPY: {http / copy_rate:.2f}x; HTTP / INSERT: {http / insert_rate:.2f}x; "
        f"ingest / raw COPY: {ingest / copy_rate:.2f}x"
    )
    ok = http >= HTTP_TARGET and ingest >= INGEST_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
