"""The ab_promotion DAG runs for real: ``dag.test()`` on the Postgres metadata DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.store import abtests
from relearn.store.db import transaction
from tests.conftest import ROOT, abort_live_tests
from tests.integration.traffic import register_copy

pytestmark = pytest.mark.integration

T0 = datetime(2026, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dag(stack):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "ab_promotion.py")).dags["ab_promotion"]


@pytest.fixture(scope="module", autouse=True)
def no_live_ab_tests(database_url):
    """A test left pending by an earlier module (a decay candidate) would be started first."""
    abort_live_tests(database_url)


def _states(run) -> dict[str, str]:
    # Unmapped tasks and churn's (the first configured model; credit_risk runs alongside).
    return {
        ti.task_id.split(".")[-1]: ti.state
        for ti in run.get_task_instances()
        if ti.map_index in (-1, 0)
    }


def test_a_new_challenger_is_started_then_rolled_back_by_the_action_param(
    dag, champion, model_cfg, database_url, tracking_uri
):
    client = registry_client(tracking_uri)
    copy = register_copy(model_cfg, tracking_uri, name=model_cfg.name, source=champion.version)
    client.set_registered_model_alias(model_cfg.name, CHALLENGER, copy)

    run = dag.test(logical_date=T0, run_conf={"action": "check"})
    states = _states(run)
    assert run.state == "success", states
    assert states["decide"] == "success"
    assert states["request_approval"] == "skipped"
    with transaction(database_url) as connection:
        test = abtests.find_test(connection, model_cfg.name, copy)
    assert (test.status, test.traffic_percent, test.started_at) == ("running", 10, T0)

    # The next hour, too few samples: the policy holds.
    held = dag.test(logical_date=T0 + timedelta(hours=1), run_conf={"action": "check"})
    assert held.state == "success", _states(held)

    # An operator rolls it back from the trigger form.
    rolled = dag.test(
        logical_date=T0 + timedelta(hours=2),
        run_conf={"model": model_cfg.name, "action": "rollback"},
    )
    assert rolled.state == "success", _states(rolled)
    with transaction(database_url) as connection:
        test = abtests.find_test(connection, model_cfg.name, copy)
        actions = [d.action for d in abtests.decisions(connection, test.id)]
    assert (test.status, test.traffic_percent) == ("rolled_back", 0)
    assert actions == ["start", "hold", "rollback"]
    current = aliases(client, model_cfg.name)
    assert CHALLENGER not in current and current[CHAMPION] == champion.version


def test_a_manual_action_without_a_model_fails_at_once_and_moves_nothing(
    dag, champion, model_cfg, database_url, tracking_uri
):
    """Before: ``rollback`` with an empty ``model`` rolled back every model's running test."""
    client = registry_client(tracking_uri)
    copy = register_copy(model_cfg, tracking_uri, name=model_cfg.name, source=champion.version)
    client.set_registered_model_alias(model_cfg.name, CHALLENGER, copy)
    start = T0 + timedelta(days=1)
    started = dag.test(logical_date=start, run_conf={"model": None, "action": "check"})
    assert started.state == "success", _states(started)
    before = aliases(client, model_cfg.name)

    run = dag.test(
        logical_date=start + timedelta(hours=1), run_conf={"model": None, "action": "rollback"}
    )
    assert run.state == "failed"
    [first] = [ti for ti in run.get_task_instances() if ti.task_id == "models_for_action"]
    assert (first.state, first.try_number) == ("failed", 1), "a refused action is not retried"
    assert "decide" not in {k for k, v in _states(run).items() if v == "success"}
    with transaction(database_url) as connection:
        test = abtests.find_test(connection, model_cfg.name, copy)
    assert (test.status, test.traffic_percent) == ("running", 10)
    assert aliases(client, model_cfg.name) == before

    # Named, the same action applies to that model only.
    named = dag.test(
        logical_date=start + timedelta(hours=2),
        run_conf={"model": model_cfg.name, "action": "rollback"},
    )
    assert named.state == "success", _states(named)
    with transaction(database_url) as connection:
        assert abtests.find_test(connection, model_cfg.name, copy).status == "rolled_back"
