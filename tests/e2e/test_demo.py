"""`make demo` end to end, in its own RELEARN_HOME and ports, exactly as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from relearn_dev.stack.services import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SECTIONS = (
    "predictions_logged",
    "accuracy_by_day",
    "runs",
    "model_versions",
    "requests",
    "drift_reports",
    "ab_tests",
    "alias_history",
)


def test_make_demo(tmp_path) -> None:
    # A user's shell: none of the test session's Airflow, Relearn or MLflow settings (this
    # process exported MLFLOW_TRACKING_URI, which would point the demo at the session's server).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RELEARN", "MLFLOW"))
    }
    env.update(
        RELEARN_HOME=str(tmp_path / "home"),
        RELEARN_PG_PORT=str(free_port()),
        RELEARN_MLFLOW_PORT=str(free_port()),
        RELEARN_AIRFLOW_PORT=str(free_port()),
    )
    result = subprocess.run(
        ["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Predictions logged:" in result.stdout

    summary = json.loads((tmp_path / "home" / "demo-summary.json").read_text())
    assert set(SECTIONS) <= set(summary)
    assert summary["predictions_logged"] >= 2 * 7 * 24 * 40  # both specialists
    churn = _of(summary, "churn")
    days = churn["accuracy_by_day"]
    assert len(days) >= 6
    # The injected concept drift shows: the last days are clearly worse than the first.
    assert days[-2]["accuracy"] < days[0]["accuracy"] - 0.05, days
    assert [(h["model_name"], h["champion_version"]) for h in churn["health_checks"]] == [
        ("churn", "1")
    ]
    # The daily reinforcement learned from the drifted days: a completed run and version 2,
    # aliased challenger exactly when its gate blessed it.
    daily, drift, manual = churn["runs"]
    assert (daily["source"], daily["status"], daily["model_version"]) == (
        "auto_daily",
        "completed",
        "2",
    )
    assert daily["blessed"] is not None, daily
    assert "Retraining runs:" in result.stdout
    # The drift monitor: stable before the drift, decayed at the end (the concept changed,
    # the inputs did not), which retrained (decay_triggered) and, once blessed, asked for an
    # A/B test of the new version.
    before, after = churn["drift_reports"]
    assert (before["verdict"], before["action"]) == ("stable", "none"), before
    assert (after["verdict"], after["action"]) == ("decayed", "retrain"), after
    assert after["report_uri"].startswith("runs:/")
    assert after["retraining_run_id"] == drift["id"]
    assert (drift["source"], drift["status"], drift["model_version"]) == (
        "decay_triggered",
        "completed",
        "3",
    )
    assert drift["blessed"], drift["gate_reasons"]
    assert "Drift reports:" in result.stdout
    # A/B in compressed time: v3 goes 10 -> 25 -> 50 -> 100 % and is promoted; then the old
    # champion, far worse on today's traffic, is tried again and rolled back.
    tests = [(t["challenger_version"], t["status"]) for t in churn["ab_tests"]]
    assert tests == [("3", "promoted"), ("1", "rolled_back")], churn["ab_tests"]
    versions = {v["version"]: v["aliases"] for v in churn["model_versions"]}
    assert versions[3] == ["champion"] and versions[1] == ["previous_champion"], versions
    moves = [(h["alias"], h["version"]) for h in churn["alias_history"]]
    assert ("champion", "3") in moves and ("previous_champion", "1") in moves
    assert moves[-1] == ("challenger", None)
    assert "Alias history:" in result.stdout
    # The filed request was served by manual_retraining and is linked to its run.
    [request] = summary["requests"]
    assert (request["status"], request["retraining_run_id"]) == ("completed", manual["id"])
    assert (manual["source"], manual["status"]) == ("manual", "completed")
    _check_second_specialist(_of(summary, "credit_risk"))
    assert summary["dags_failed"] == []
    # Everything it started is stopped again.
    for port in (env["RELEARN_PG_PORT"], env["RELEARN_MLFLOW_PORT"]):
        assert (
            subprocess.run(
                ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True
            ).returncode
            != 0
        ), f"port {port} still open after the demo:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"


def _of(summary: dict, model: str) -> dict:
    """The summary's sections narrowed to one model's rows."""
    return {
        section: [r for r in rows if model in (r.get("model_name"), r.get("model"), r.get("name"))]
        for section, rows in summary.items()
        if isinstance(rows, list) and rows and isinstance(rows[0], dict)
    }


def _check_second_specialist(credit: dict) -> None:
    """credit_risk (sklearn_hgb, three classes, concept + covariate drift) went through every
    DAG too: its own health check, a daily refit, a drift verdict that retrained."""
    days = credit["accuracy_by_day"]
    assert len(days) >= 6 and days[-2]["accuracy"] < days[0]["accuracy"] - 0.05, days
    assert [h["champion_version"] for h in credit["health_checks"]] == ["1"]
    daily, drift = credit["runs"]  # volume_retraining waits: the last run is minutes old
    assert (daily["source"], daily["status"], daily["model_version"]) == (
        "auto_daily",
        "completed",
        "2",
    )
    before, after = credit["drift_reports"]
    assert (before["verdict"], before["action"]) == ("stable", "none"), before
    assert after["verdict"] in ("decayed", "drifted") and after["action"] == "retrain", after
    assert after["retraining_run_id"] == drift["id"]
    assert drift["source"] in ("decay_triggered", "drift_triggered"), drift
    assert (drift["status"], drift["model_version"]) == ("completed", "3"), drift
    # Any A/B test it got was decided within the demo's simulated hours.
    assert {t["status"] for t in credit["ab_tests"]} <= {"promoted", "rolled_back"}
