"""A new user's model, from a CSV to a gated candidate, through the commands the README shows.

The data is scikit-learn's bundled breast cancer set with a synthetic time column, cut into
"history" (bootstrap) and "recent" (production traffic, where the test flips the concept for
a sub-population so the champion makes confident mistakes). Every step is the installed
``relearn`` command, and the traffic goes over the collection API of a real Airflow
api-server with a REST API token, as the README's Python example does it: ask the arm and
version for a unit, predict with that version from MLflow, post predictions, then outcomes.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from relearn.config import load_config
from relearn.services import utcnow
from relearn.store.db import transaction
from relearn.store.runs import get_run
from relearn_dev.stack.services import AIRFLOW_USER, airflow_password, free_port
from relearn_dev.stack.supervisor import Service, Supervisor
from tests.conftest import ROOT, run_cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

MODEL = "tumour_e2e"
LABEL = "diagnosis"
HISTORY_ROWS = 400
# Enough recent labelled rows that the retraining holdout (20 %) reaches min_eval_samples.
RECENT_ROWS = 900
SHIFTED_FEATURE = "mean_texture"


def _datasets(directory) -> tuple:
    """history.csv (with a time column) and the recent rows, concept-shifted."""
    raw = load_breast_cancer(as_frame=True)
    frame = raw.frame.rename(columns=lambda name: name.replace(" ", "_"))
    frame[LABEL] = frame.pop("target").map(dict(enumerate(raw.target_names)))
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    history = frame.iloc[:HISTORY_ROWS].copy()
    history.insert(0, "observed_at", pd.date_range("2025-01-01", periods=HISTORY_ROWS, freq="6h"))
    history_path = directory / "history.csv"
    history.to_csv(history_path, index=False)

    # Recent traffic: the held-back rows, resampled with a little jitter, within the ranges
    # model init derived from history; then the label flips for the rougher half.
    rng = np.random.default_rng(5)
    rest = frame.iloc[HISTORY_ROWS:]
    recent = rest.sample(n=RECENT_ROWS, replace=True, random_state=5).reset_index(drop=True)
    features = [c for c in recent.columns if c != LABEL]
    jitter = rng.normal(0.0, 0.02, size=(RECENT_ROWS, len(features))) * rest[features].std().values
    low, high = history[features].min().values, history[features].max().values
    recent[features] = np.clip(recent[features].values + jitter, low, high)
    shifted = recent[SHIFTED_FEATURE] > recent[SHIFTED_FEATURE].median()
    flipped = {"malignant": "benign", "benign": "malignant"}
    recent.loc[shifted, LABEL] = recent.loc[shifted, LABEL].map(flipped)
    return history_path, recent


def _cli(*args: str, env: dict[str, str]) -> str:
    result = run_cli(*args, env=env)
    assert result.returncode == 0, f"relearn {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "relearn.yaml"
    shutil.copy(ROOT / "relearn.yaml", path)
    return path


@pytest.fixture
def api_server(stack, config_file) -> Iterator[str]:
    """Airflow's api-server as ``make run`` starts it (one worker), reading the test's config;
    its URL. The collection API is mounted there by the installed plugin."""
    port = free_port()
    env = {**stack.migrate_airflow(), "RELEARN_CONFIG": str(config_file)}
    env["AIRFLOW__API__WORKERS"] = "1"
    service = Service(
        name="airflow api-server",
        command=[sys.executable, "-m", "airflow", "api-server", "--port", str(port)],
        env=env,
        log_file=stack.settings.log_dir / "e2e-api-server.log",
        health_url=f"http://127.0.0.1:{port}/api/v2/monitor/health",
        ready_timeout=300.0,  # two shared cores: Airflow's import alone can take a minute
    )
    supervisor = Supervisor()
    try:
        supervisor.start(service)
        supervisor.wait_ready(service)
        yield f"http://127.0.0.1:{port}"
    finally:
        supervisor.stop_all()


def _log_over_http(base_url: str, token: str, recent: pd.DataFrame, model_cfg) -> None:
    """Production traffic of the last two days, as the README's Python example sends it;
    outcomes an hour after each prediction."""
    api = httpx.Client(
        base_url=f"{base_url}/relearn/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    arm = api.get(f"/models/{MODEL}/assignment", params={"unit_id": "patient-1"}).json()
    version = arm["model_version"]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    frame = recent[model_cfg.feature_names]
    frame = frame.astype({name: "float64" for name in frame.select_dtypes("integer")})
    probabilities = model.predict(frame)
    start = utcnow() - timedelta(hours=47)
    times = [start + timedelta(minutes=3 * i) for i in range(len(frame))]
    rows = [
        {
            "prediction_id": str(uuid.uuid4()),
            "model_version": version,
            "served_by": arm["arm"],  # no test runs: every unit is the champion's
            "unit_id": f"patient-{i}",
            "predicted_at": at.isoformat(),
            "features": features,
            "probabilities": probs,
            "predicted_label": max(probs, key=probs.get),
        }
        for i, (at, features, probs) in enumerate(
            zip(times, frame.to_dict("records"), probabilities.to_dict("records"), strict=True)
        )
    ]
    answer = api.post(f"/models/{MODEL}/predictions", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["logged"], answer.json()["rejected"]) == (len(rows), [])
    outcomes = [
        {
            "prediction_id": row["prediction_id"],
            "actual_label": actual,
            "outcome_at": (at + timedelta(hours=1)).isoformat(),
        }
        for row, at, actual in zip(rows, times, recent[LABEL], strict=True)
    ]
    attached = api.post(f"/models/{MODEL}/outcomes", json={"outcomes": outcomes}).json()
    assert len(attached["attached"]) == len(rows), attached
    usage = {c["kind"]: c for c in api.get(f"/models/{MODEL}").json()["usage"]["counts"]}
    assert usage["predictions"]["accepted"] == usage["outcomes"]["accepted"] == len(rows)
    assert usage["exposure"]["events"] == 1


def test_own_model_from_csv_to_gated_candidate(
    tmp_path, config_file, api_server, settings, database_url, tracking_uri, monkeypatch
):
    history_path, recent = _datasets(tmp_path)
    env = {"RELEARN_CONFIG": str(config_file)}

    # 1. Describe the model from its data; 2. validate the configuration.
    _cli(
        "model",
        "init",
        "--name",
        MODEL,
        "--dataset",
        str(history_path),
        "--label",
        LABEL,
        "--time-column",
        "observed_at",
        "--write",
        env=env,
    )
    assert MODEL in _cli("config", env=env)
    model_cfg = load_config(config_file).model(MODEL)
    assert model_cfg.time_column == "observed_at" and model_cfg.simulation is None
    assert sorted(model_cfg.classes) == ["benign", "malignant"]
    assert len(model_cfg.features) == 30

    # Without data, bootstrap says what to pass instead of inventing a champion.
    refused = run_cli("bootstrap", "--model", MODEL, env=env)
    assert refused.returncode == 1 and "--dataset" in refused.stderr

    # 3. v1 from the history file.
    _cli("migrate", env=env)
    assert "is champion (registered)" in _cli(
        "bootstrap", "--model", MODEL, "--dataset", str(history_path), env=env
    )

    # 4. Production: predictions and outcomes reach the log over HTTP, with a REST API token.
    password = airflow_password(settings)
    answer = httpx.post(
        f"{api_server}/auth/token", json={"username": AIRFLOW_USER, "password": password}
    )
    assert answer.status_code == 201, answer.text
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    _log_over_http(api_server, answer.json()["access_token"], recent, model_cfg)

    # 5. Retrain from the champion's mistakes.
    lines = _cli("reinforce", "--model", MODEL, "--lookback-days", "3", env=env).splitlines()
    report = json.loads(lines[-1])
    assert report["model"] == MODEL and report["status"] == "completed", report
    with transaction(database_url) as connection:
        run = get_run(connection, report["retraining_run_id"])
    gate = run.metrics["gate"]
    # Blessed or not, the gate judged the candidate on the recent holdout's real numbers.
    assert isinstance(gate["blessed"], bool)
    assert {"accuracy", "f1_macro", "accuracy_vs_champion"} <= {c["name"] for c in gate["checks"]}
    assert run.metrics["holdout"]["n"] >= model_cfg.gates.min_eval_samples
    assert 0.0 < run.metrics["champion_holdout"]["accuracy"] < 1.0
