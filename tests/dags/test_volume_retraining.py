"""The volume_retraining DAG runs for real: ``dag.test()`` on the Postgres metadata DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relearn.store.db import transaction
from relearn.store.runs import find_run
from tests.conftest import ROOT
from tests.integration.traffic import log_traffic

pytestmark = pytest.mark.integration

RETRAINING = ("record_run", "prepare_data", "train", "validate_model", "register")
# This module's period: two days after a concept shift, far from the other modules' runs.
SHIFT = datetime(2026, 8, 3, tzinfo=UTC)
CHECK_AT = SHIFT + timedelta(days=2)


@pytest.fixture(scope="module")
def dag(stack):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "volume_retraining.py")).dags["volume_retraining"]


@pytest.fixture
def churn_on_volume(monkeypatch, champion, model_cfg, database_url, tracking_uri):
    """churn retrains on 50 new outcomes (credit_risk does in relearn.yaml already)."""
    monkeypatch.setenv("RELEARN__CHURN__REINFORCEMENT__MIN_NEW_LABELLED", "50")
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=SHIFT,
        end=CHECK_AT,
        concept_shift=1.0,
        seed=41,
    )


def _states(run, models: list[str]) -> dict[str, dict[str, str]]:
    """model -> task -> state; the task group is mapped over ``models`` in this order."""
    states: dict[str, dict[str, str]] = {}
    for ti in run.get_task_instances():
        if ti.map_index >= 0:
            model = models[ti.map_index]
            states.setdefault(model, {})[ti.task_id.split(".")[-1]] = ti.state
    return states


def test_enough_new_outcomes_start_an_auto_volume_run_then_it_waits(
    dag, churn_on_volume, config, model_cfg, database_url
):
    run = dag.test(logical_date=CHECK_AT)
    states = _states(run, config.model_names)
    assert run.state == "success", states
    churn = states["churn"]
    assert churn["check_volume"] == "success", churn
    assert {churn[t] for t in RETRAINING} == {"success"}, churn
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert (row.source, row.status) == ("auto_volume", "completed")
    assert row.params["window_end"] == CHECK_AT.isoformat()
    # credit_risk (on volume in relearn.yaml) has no traffic in this period: nothing to do.
    other = states["credit_risk"]
    assert {other[t] for t in ("check_volume", *RETRAINING)} == {"skipped"}, other

    # An hour later the interval (24 h) has not passed: checked, and nothing starts.
    later = dag.test(logical_date=CHECK_AT + timedelta(hours=1), run_conf={"model": "churn"})
    churn = _states(later, ["churn"])["churn"]
    assert later.state == "success"
    assert {churn[t] for t in ("check_volume", *RETRAINING)} == {"skipped"}, churn
    with transaction(database_url) as connection:
        assert find_run(connection, later.run_id, model_cfg.name) is None


def test_off_by_default_nothing_starts(dag, champion, model_cfg, database_url):
    run = dag.test(logical_date=CHECK_AT + timedelta(days=3), run_conf={"model": "churn"})
    churn = _states(run, ["churn"])["churn"]
    assert run.state == "success"
    assert {churn[t] for t in ("check_volume", *RETRAINING)} == {"skipped"}, churn
    with transaction(database_url) as connection:
        assert find_run(connection, run.run_id, model_cfg.name) is None
