"""The auto_reinforcement DAG runs for real: ``dag.test()`` on the Postgres metadata DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest

from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.store.db import transaction
from relearn.store.runs import find_run
from tests.conftest import ROOT
from tests.integration.traffic import drop_feature, log_traffic

pytestmark = pytest.mark.integration

TASKS = ("record_run", "prepare_data", "train", "validate_model", "register")


@pytest.fixture(scope="module")
def dag(stack):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "auto_reinforcement.py")).dags[
        "auto_reinforcement"
    ]


def _states(run) -> dict[str, str]:
    # Unmapped tasks and churn's (the first configured model; credit_risk runs alongside).
    return {
        ti.task_id.split(".")[-1]: ti.state
        for ti in run.get_task_instances()
        if ti.map_index in (-1, 0)
    }


def test_drifted_window_becomes_a_blessed_challenger(
    dag, champion, model_cfg, database_url, tracking_uri
):
    end = datetime(2026, 2, 4, 2, tzinfo=UTC)
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=end - timedelta(days=3),
        end=end,
        concept_shift=1.0,
        seed=21,
    )
    run = dag.test(logical_date=end, run_conf={"lookback_days": 3, "epochs": 15})
    states = _states(run)
    assert run.state == "success", states
    assert {states[t] for t in TASKS} == {"success"}, states
    assert states["announce_challenger"] == "success"
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert row.status == "completed" and row.source == "auto_daily"
    assert row.params["window_end"] == end.isoformat()
    current = aliases(registry_client(tracking_uri), model_cfg.name)
    assert current[CHALLENGER] == row.model_version
    assert current[CHAMPION] == champion.version
    assert _asset_events(run.run_id) == [{"model": "churn", "version": row.model_version}]
    assert row.airflow_url.endswith(f"/dags/auto_reinforcement/runs/{quote(run.run_id, safe='')}")
    logs = _kept_logs(tracking_uri, row.mlflow_run_id)
    assert {name.split(".")[-3] for name in logs} >= {"prepare_data", "train", "validate_model"}
    assert "candidate blessed" in logs[next(n for n in logs if "validate_model" in n)]


def _kept_logs(tracking_uri: str, mlflow_run_id: str) -> dict[str, str]:
    """The step logs a retraining run kept in its MLflow run, by file name."""
    client = registry_client(tracking_uri)
    return {
        Path(entry.path).name: mlflow.artifacts.load_text(f"runs:/{mlflow_run_id}/{entry.path}")
        for entry in client.list_artifacts(mlflow_run_id, "logs")
    }


def _asset_events(run_id: str) -> list[dict]:
    """Extras of the challenger Asset events a DAG run emitted (Airflow's metadata DB)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id)
            .where(AssetModel.uri == "relearn://models/challenger")
        )
        return list(session.scalars(query))


def test_too_few_errors_skip_training(dag, champion, model_cfg, database_url):
    end = datetime(2026, 2, 4, 2, tzinfo=UTC)
    run = dag.test(logical_date=end, run_conf={"lookback_days": 3, "min_error_samples": 10**6})
    states = _states(run)
    assert run.state == "success", states
    assert states["prepare_data"] == "skipped"
    assert {states[t] for t in ("train", "validate_model", "register")} == {"skipped"}
    assert _asset_events(run.run_id) == []
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert (row.status, row.metrics["outcome"]) == ("completed", "insufficient data")


def test_unusable_window_fails_the_run_through_the_callback(
    dag, champion, model_cfg, database_url, tracking_uri
):
    end = datetime(2026, 2, 10, 2, tzinfo=UTC)
    log_traffic(
        model_cfg, database_url, tracking_uri, start=end - timedelta(days=1), end=end, seed=22
    )
    drop_feature(database_url, "contract", start=end - timedelta(days=1), end=end)
    before = aliases(registry_client(tracking_uri), model_cfg.name)
    run = dag.test(logical_date=end, run_conf={"lookback_days": 1, "min_error_samples": 1})
    states = _states(run)
    assert run.state == "failed"
    assert states["prepare_data"] == "failed"
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert row.status == "failed"
    assert "feature column 'contract' is missing" in row.error_message
    (prepare_log,) = _kept_logs(tracking_uri, row.mlflow_run_id).values()
    assert "feature column 'contract' is missing" in prepare_log and "Traceback" in prepare_log
    assert aliases(registry_client(tracking_uri), model_cfg.name) == before


def test_no_champion_to_fine_tune_skips_instead_of_failing(
    dag, champion, model_cfg, database_url, tracking_uri
):
    """A first run before the champion exists: skipped and explained, not a red DAG run."""
    end = datetime(2026, 2, 16, 2, tzinfo=UTC)
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=end - timedelta(days=1),
        end=end,
        concept_shift=1.0,
        seed=23,
    )
    client = registry_client(tracking_uri)
    client.delete_registered_model_alias(model_cfg.name, CHAMPION)
    try:
        run = dag.test(logical_date=end, run_conf={"lookback_days": 1, "min_error_samples": 1})
    finally:
        client.set_registered_model_alias(model_cfg.name, CHAMPION, champion.version)
    states = _states(run)
    assert run.state == "success", states
    assert (states["prepare_data"], states["train"]) == ("success", "skipped"), states
    assert {states[t] for t in ("validate_model", "register", "announce_challenger")} == {"skipped"}
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert row.status == "failed" and row.trigger_key == run.run_id
    assert f"'{model_cfg.name}' has no champion yet" in row.error_message


def test_dry_run_gates_and_skips_registering(dag, champion, model_cfg, database_url, tracking_uri):
    end = datetime(2026, 2, 22, 2, tzinfo=UTC)
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=end - timedelta(days=1),
        end=end,
        concept_shift=1.0,
        seed=24,
    )
    before = aliases(registry_client(tracking_uri), model_cfg.name)
    conf = {"lookback_days": 1, "min_error_samples": 1, "epochs": 1, "dry_run": True}
    run = dag.test(logical_date=end, run_conf=conf)
    states = _states(run)
    assert run.state == "success", states
    assert {states[t] for t in ("record_run", "prepare_data", "train")} == {"success"}, states
    assert {states[t] for t in ("validate_model", "register", "announce_challenger")} == {"skipped"}
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert (row.status, row.metrics["dry_run"], row.model_version) == ("completed", True, None)
    assert "blessed" in row.metrics["gate"]
    assert aliases(registry_client(tracking_uri), model_cfg.name) == before
