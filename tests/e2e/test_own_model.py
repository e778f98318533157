"""A new user's model, from a CSV to a gated candidate, through the commands the README shows.

The data is scikit-learn's bundled breast cancer set with a synthetic time column, cut into
"history" (bootstrap) and "recent" (production traffic, where the test flips the concept for
a sub-population so the champion makes confident mistakes). Every step is the installed
``relearn`` command except logging the traffic, done with the Python ``Predictor``.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from relearn.config import load_config
from relearn.services import Services, utcnow
from relearn.serving.predictor import Predictor
from relearn.store.db import transaction
from relearn.store.runs import get_run
from tests.conftest import ROOT, run_cli

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


def _log_recent(model_cfg, services: Services, recent: pd.DataFrame) -> None:
    """Production traffic of the last two days, outcomes an hour after each prediction."""
    now = utcnow()
    times = [now - timedelta(hours=47) + timedelta(minutes=3 * i) for i in range(len(recent))]
    with Predictor(services, model_cfg) as predictor:
        logged = predictor.predict(recent[model_cfg.feature_names], at=times)
        predictor.record_outcomes(
            (row.prediction_id, actual, row.predicted_at + timedelta(hours=1))
            for row, actual in zip(logged, recent[LABEL], strict=True)
        )


def test_own_model_from_csv_to_gated_candidate(tmp_path, database_url, tracking_uri):
    history_path, recent = _datasets(tmp_path)
    config_file = tmp_path / "relearn.yaml"
    shutil.copy(ROOT / "relearn.yaml", config_file)
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

    # 4. Production: predictions and outcomes reach the log.
    services = Services(database_url, tracking_uri)
    _log_recent(model_cfg, services, recent)

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
