"""``make run`` and ``make demo``: bring the stack up, seed it, and show what happens."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from relearn.bootstrap import bootstrap_model
from relearn.config import load_config
from relearn.services import Services
from relearn.serving.predictor import Predictor
from relearn.serving.router import SplitRouter, live_split
from relearn.settings import StackError, redact
from relearn.simulate.traffic import run_live, simulate_traffic
from relearn.simulate.world import ConceptShift, CovariateShift, World
from relearn.store.db import transaction
from relearn.store.predictions import count_predictions
from relearn.summary import collect_summary, render_summary
from relearn_dev.ab_demo import DEMO_AB_OVERRIDES, run_ab_phase
from relearn_dev.stack.services import (
    AIRFLOW_USER,
    Stack,
    airflow_password,
    owner_file,
    project_dir,
)
from relearn_dev.stack.supervisor import record_owner

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.settings import Settings
    from relearn.simulate.traffic import TrafficStats

log = logging.getLogger(__name__)

SEED_DAYS = 3
# DAGs that must run in this order in the demo; any other DAG runs afterwards, by name.
DEMO_DAG_ORDER = [
    "model_health",
    "auto_reinforcement",
    "drift_monitor",
    "request_retraining",
    "manual_retraining",
    "ab_promotion",
]
# Waits for a human's answer (the demo's config does not ask for approval).
DEMO_SKIPPED = {"ab_approval"}
# Extra runs before the one at "now", at these fractions of the simulated period: the drift
# monitor checks once before the drift starts (stable), then at the end (decayed: retrains).
DEMO_EARLIER_RUNS: dict[str, list[float]] = {"drift_monitor": [0.5]}
# Trigger-form values for the demo: each model's drift (``simulation.demo_drift``) starts 60 %
# into the simulated week, so the last two days hold only drifted traffic; fifteen epochs let
# the MLP's fine-tune learn the shift (the gradient-boosted model has no epochs: it refits).
DEMO_DAG_CONF: dict[str, dict] = {
    "auto_reinforcement": {"lookback_days": 2, "epochs": 15},
    "drift_monitor": {"epochs": 15},
    # A user's request, served right away by manual_retraining (which runs after it).
    "request_retraining": {
        "model": "churn",
        "reason": "demo: churners were missed after the price change",
        "priority": "high",
    },
}


def _sigterm_as_interrupt() -> None:
    def handler(_signum: int, _frame: object) -> None:
        # Only the first one interrupts: a second (`make stop` twice) must not break off the
        # orderly stop that the first one started.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def drifting_world(model_cfg: ModelConfig, drift: str, *, start: datetime, end: datetime):
    """The simulated world of ``[start, end)`` with ``drift`` starting 60 % into it.

    The same arguments give the same world (a concept shift's new labels are seeded by its
    start), so traffic after ``end`` can continue it.
    """
    drift_start = start + (end - start) * 0.6
    numeric = [f.name for f in model_cfg.features if f.type == "numeric"]
    shifts = {
        "none": [],
        "covariate": [
            CovariateShift(
                start=drift_start, features=numeric[: len(numeric) // 2 or 1], shift_std=1
            )
        ],
        "concept": [ConceptShift(start=drift_start, strength=1.0)],
    }
    shifts["both"] = shifts["covariate"] + shifts["concept"]
    if drift not in shifts:
        raise ValueError(f"unknown drift '{drift}' (choose from {', '.join(shifts)})")
    return World(model_cfg).with_drift(*shifts[drift])


def simulate_days(
    model_cfg: ModelConfig,
    settings: Settings,
    *,
    days: float,
    drift: str = "none",
    end: datetime | None = None,
) -> TrafficStats:
    """Feed ``days`` of simulated traffic ending ``end`` (now); drift starts 60 % into it."""
    end = end or datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    world = drifting_world(model_cfg, drift, start=start, end=end)
    sim = model_cfg.simulation
    log.info("simulating %.1f days of %s traffic (drift: %s)", days, model_cfg.name, drift)
    with Predictor(Services.from_settings(settings), model_cfg) as predictor:
        return simulate_traffic(
            world,
            predictor,
            start=start,
            end=end,
            predictions_per_hour=sim.predictions_per_hour,
            outcome_delay=timedelta(hours=sim.outcome_delay_hours),
            rng=np.random.default_rng(sim.seed),
            progress=log.info,
        )


def _bootstrap_all(settings: Settings) -> list[ModelConfig]:
    models = [m for m in load_config().models if m.simulation is not None]  # demo models only
    for model_cfg in models:
        bootstrap_model(Services.from_settings(settings), model_cfg)
    return models


def _start_live_traffic(
    models: list[ModelConfig], settings: Settings, stop: threading.Event
) -> list[threading.Thread]:
    threads = []
    for model_cfg in models:
        database_url = settings.database_url("relearn")
        # Routed by the live A/B split, so a test started in the UI gets challenger traffic.
        router = SplitRouter(live_split(database_url, model_cfg.name))
        predictor = Predictor(
            Services.from_settings(settings), model_cfg, router=router, batch_size=1
        )
        thread = threading.Thread(
            target=run_live,
            args=(World(model_cfg), predictor),
            kwargs={
                "predictions_per_minute": max(1, model_cfg.simulation.predictions_per_hour // 6),
                "outcome_delay": timedelta(seconds=60),
                "rng": np.random.default_rng(),
                "stop_event": stop,
            },
            name=f"traffic-{model_cfg.name}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads


def _seed_traffic(models: list[ModelConfig], settings: Settings) -> None:
    for model_cfg in models:
        with transaction(settings.database_url("relearn")) as connection:
            if count_predictions(connection, [model_cfg.name]):
                continue
        simulate_days(model_cfg, settings, days=SEED_DAYS)


def run_stack(settings: Settings, *, traffic: bool, airflow: bool = True) -> int:
    """Start everything, seed a demo, serve until Ctrl-C, then stop every process started."""
    _sigterm_as_interrupt()
    stack = Stack(settings, project_dir())
    stack.check_ports(airflow=airflow)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    record_owner(owner_file(settings))  # `relearn stack down` sends this process SIGTERM
    try:
        models = bring_up(stack, settings, airflow=airflow)
        if traffic:
            threads = _start_live_traffic(models, settings, stop)
        print(_banner(settings, airflow=airflow, traffic=traffic), flush=True)
        while (broken := stack.supervisor.first_exited()) is None:
            time.sleep(1)
        raise StackError(f"{broken.name} stopped unexpectedly (see {broken.log_file})")
    except KeyboardInterrupt:
        print("\nstopping Relearn ...", flush=True)
        return 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        try:
            stack.down()
        finally:
            owner_file(settings).unlink(missing_ok=True)


def bring_up(stack: Stack, settings: Settings, *, airflow: bool) -> list[ModelConfig]:
    """Start the stack so that no DAG can run before every model has its champion.

    The scheduler is what creates DAG runs (the latest ``auto_reinforcement`` interval among
    them): it starts only after migration, bootstrap and the seed traffic.
    """
    stack.start_database()
    stack.start_mlflow()
    if airflow:
        stack.start_airflow(scheduler=False)
    models = _bootstrap_all(settings)
    _seed_traffic(models, settings)
    if airflow:
        stack.start_scheduler()
    return models


def page_url(settings: Settings) -> str:
    """The Relearn page in Airflow's UI (the ``relearn`` external view of the plugin)."""
    return f"{settings.airflow_url}/plugin/relearn"


def _banner(settings: Settings, *, airflow: bool, traffic: bool) -> str:
    lines = ["", "Relearn is running:"]
    if airflow:
        lines.append(
            f"  Airflow UI  {settings.airflow_url}  "
            f"(login {AIRFLOW_USER} / {airflow_password(settings)})"
        )
        lines.append(f"  Relearn     {page_url(settings)}  (models, runs, trends, Retrain now)")
    lines.append(f"  MLflow UI   {settings.tracking_uri}")
    lines.append(
        f"  Postgres    {redact(settings.database_url('relearn'))}  (full URL: relearn db-url)"
    )
    if traffic:
        lines.append("  Simulated traffic is flowing into the prediction log.")
    lines += [f"  Logs        {settings.log_dir}", "Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def _dag_ids(project: Path) -> list[str]:
    """DAG ids of the bundle (one DAG per file, named after it), in demo order."""
    found = sorted(p.stem for p in (project / "dags").glob("*.py") if not p.stem.startswith("_"))
    found = [d for d in found if d not in DEMO_SKIPPED]
    ordered = [d for d in DEMO_DAG_ORDER if d in found]
    return ordered + [d for d in found if d not in ordered]


def run_dag(
    dag_id: str, env: dict[str, str], log_file: Path, logical_date: datetime | None = None
) -> bool:
    """``airflow dags test``: a real run on the metadata database, without a scheduler."""
    when = f" at {logical_date.isoformat()}" if logical_date else ""
    log.info("running DAG %s%s (log: %s)", dag_id, when, log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    conf = ["--conf", json.dumps(DEMO_DAG_CONF[dag_id])] if dag_id in DEMO_DAG_CONF else []
    date = [logical_date.isoformat()] if logical_date else []
    with log_file.open("w") as handle:
        result = subprocess.run(
            [airflow, "dags", "test", *conf, dag_id, *date],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    log.info("DAG %s %s", dag_id, "succeeded" if result.returncode == 0 else "FAILED")
    return result.returncode == 0


def _demo_runs(
    dag_id: str,
    models: list[ModelConfig],
    settings: Settings,
    env: dict[str, str],
    *,
    end: datetime,
    days: float,
) -> bool:
    """The demo's runs of one DAG: earlier ones, then one at the end of the week; for
    ``ab_promotion`` one per simulated hour with routed traffic in between."""
    logs = settings.log_dir / "demo"

    def run_at(at: datetime | None) -> bool:
        name = f"{dag_id}-{at:%Y%m%dT%H}.log" if at else f"{dag_id}.log"
        return run_dag(dag_id, env, logs / name, at)

    hour = timedelta(hours=1)
    if dag_id == "ab_promotion":
        start = end - timedelta(days=days)
        first = end.replace(minute=0, second=0) + hour
        worlds = {
            m.name: drifting_world(m, m.simulation.demo_drift, start=start, end=end) for m in models
        }
        return run_ab_phase(models, settings, first, run_at, worlds)
    earlier = [
        (end - timedelta(days=days * (1 - fraction))).replace(minute=0, second=0)
        for fraction in DEMO_EARLIER_RUNS.get(dag_id, [])
    ]
    results = [run_at(at) for at in earlier] + [run_at(None)]
    return all(results)


def run_demo(settings: Settings, *, days: float = 7) -> int:
    """Headless: bootstrap, a week of drifting traffic, every DAG once, then the summary."""
    _sigterm_as_interrupt()
    # Compressed A/B dwell times for this demo's processes (and the Airflow runs it starts).
    os.environ.update(DEMO_AB_OVERRIDES)
    project = project_dir()
    stack = Stack(settings, project)
    stack.check_ports(airflow=False)
    try:
        stack.start_database()
        stack.start_mlflow()
        env = stack.migrate_airflow()
        models = _bootstrap_all(settings)
        end = datetime.now(UTC).replace(microsecond=0)
        for model_cfg in models:
            simulate_days(
                model_cfg, settings, days=days, drift=model_cfg.simulation.demo_drift, end=end
            )
        failed = [
            dag_id
            for dag_id in _dag_ids(project)
            if not _demo_runs(dag_id, models, settings, env, end=end, days=days)
        ]
        summary = collect_summary(Services.from_settings(settings), [m.name for m in models])
        summary["dags_failed"] = failed
        path = settings.home / "demo-summary.json"
        path.write_text(json.dumps(summary, indent=2))
        print(render_summary(summary))
        print(f"\nSummary written to {path}")
        print(f"See it on the Relearn page: `make run`, then open {page_url(settings)}")
        if failed:
            print(f"DAG(s) failed: {', '.join(failed)} (logs in {settings.log_dir / 'demo'})")
            return 1
        return 0
    finally:
        stack.down()
