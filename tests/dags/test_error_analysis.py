"""The error_analysis DAG runs for real (``dag.test()`` on the Postgres metadata DB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relearn.store.db import transaction
from tests.conftest import ROOT
from tests.plugins.conftest import fresh_config  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

# A period no other test logs traffic in.
AT = datetime(2026, 11, 27, tzinfo=UTC)


def _dag(monkeypatch=None, config_path: str | None = None):
    from airflow.dag_processing.dagbag import DagBag

    if config_path:
        monkeypatch.setenv("RELEARN_CONFIG", config_path)
    return DagBag(dag_folder=str(ROOT / "dags" / "error_analysis.py")).dags["error_analysis"]


def test_error_analysis_stores_one_analysis_per_model(
    champion, model_cfg, database_url, tracking_uri
):
    from tests.integration.traffic import log_traffic

    log_traffic(
        model_cfg, database_url, tracking_uri, start=AT - timedelta(hours=8), end=AT, seed=5
    )
    run = _dag().test(logical_date=AT)
    assert run.state == "success"
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, status, champion_version, rows, window_end, findings"
            " FROM error_analyses WHERE scope = 'daily' AND analysis_key = %s",
            (run.run_id,),
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    assert sorted(rows) == ["churn", "credit_risk"]
    status, version, labelled, window_end, findings = rows["churn"]
    assert (status, version) == ("analysed", champion.version)
    assert window_end == AT
    assert labelled >= 100 and findings["suggestions"], findings
    # credit_risk has a champion but no traffic in this window: analysed as too little data.
    assert rows["credit_risk"][0] == "insufficient_data"


def test_a_model_without_champion_is_skipped(fresh_config, monkeypatch):  # noqa: F811
    path, model = fresh_config
    run = _dag(monkeypatch, path).test(logical_date=AT, run_conf={"model": model})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert states["analyze_errors"] == "skipped", states
