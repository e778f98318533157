"""The drift_monitor DAG runs for real: ``dag.test()`` on the Postgres metadata DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relearn.store.db import transaction
from relearn.store.drift_reports import get_report
from relearn.store.runs import find_run
from tests.conftest import ROOT, abort_live_tests
from tests.integration.traffic import log_traffic

pytestmark = pytest.mark.integration

RETRAINING = ("record_run", "prepare_data", "train", "validate_model", "register")
# This module's period: a day and a half after a concept shift, checked hourly.
SHIFT = datetime(2026, 5, 10, tzinfo=UTC)
CHECK_AT = SHIFT + timedelta(hours=30)


@pytest.fixture(scope="module")
def dag(stack):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "drift_monitor.py")).dags["drift_monitor"]


@pytest.fixture(scope="module")
def concept_shift(champion, model_cfg, database_url, tracking_uri):
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=SHIFT,
        end=CHECK_AT,
        concept_shift=1.0,
        seed=31,
    )


def _states(run) -> dict[str, str]:
    # Unmapped tasks and churn's (the first configured model; credit_risk runs alongside).
    return {
        ti.task_id.split(".")[-1]: ti.state
        for ti in run.get_task_instances()
        if ti.map_index in (-1, 0)
    }


def _report(database_url, model_name, run_id):
    with transaction(database_url) as connection:
        return get_report(connection, model_name, run_id)


def test_dry_run_reports_and_skips_retraining(dag, concept_shift, model_cfg, database_url):
    run = dag.test(logical_date=CHECK_AT - timedelta(hours=1), run_conf={"dry_run": True})
    states = _states(run)
    assert run.state == "success", states
    assert states["check_drift"] == "success"
    assert {states[t] for t in ("retraining_wanted", *RETRAINING)} == {"skipped"}, states
    report = _report(database_url, model_cfg.name, run.run_id)
    assert report.verdict == "decayed" and report.action == "dry_run"
    with transaction(database_url) as connection:
        assert find_run(connection, run.run_id, model_cfg.name) is None


def test_decay_retrains_and_requests_an_ab_test(dag, concept_shift, model_cfg, database_url):
    abort_live_tests(database_url)
    # Explicit dry_run: in one process dag.test() carries an earlier run's conf over to the
    # next run's params (a worker parses the DAG per task, so production is not affected).
    run = dag.test(logical_date=CHECK_AT, run_conf={"model": model_cfg.name, "dry_run": False})
    states = _states(run)
    assert run.state == "success", states
    report = _report(database_url, model_cfg.name, run.run_id)
    assert report.verdict == "decayed" and report.action == "retrain", report.action_reason
    assert report.report_uri and report.report_uri.startswith("runs:/")
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, model_cfg.name)
    assert row.source == "decay_triggered" and row.status == "completed", row.metrics
    assert report.retraining_run_id == row.id
    assert row.params["lookback_days"] == model_cfg.drift.retrain_lookback_days
    if states["announce_challenger"] == "success":  # blessed
        with transaction(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT status, challenger_version FROM ab_tests WHERE retraining_run_id = %s",
                (str(row.id),),
            )
            assert cursor.fetchall() == [("pending", row.model_version)]
    else:
        assert not row.metrics["gate"]["blessed"]

    # An hour later the champion is still decayed, but a retraining just happened: cooldown.
    later = dag.test(logical_date=CHECK_AT + timedelta(hours=1), run_conf={"dry_run": False})
    states = _states(later)
    assert later.state == "success", states
    assert states["record_run"] == "skipped"
    assert _report(database_url, model_cfg.name, later.run_id).action == "cooldown"
    # Later modules share churn: the first of them to start the pending test would promote
    # its candidate at once (its holdout proves it against the decayed champion).
    abort_live_tests(database_url, model_cfg.name)
