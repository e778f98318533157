"""A model without a champion (a fresh deployment) in every DAG: skipped with the reason, not
failed, except in ``model_health``, whose job is to report it. ``dag.test()`` for real, with a
configuration whose model was never bootstrapped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import ROOT
from tests.plugins.conftest import fresh_config  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

AT = datetime(2026, 9, 1, 12, tzinfo=UTC)


@pytest.fixture
def dags(stack, fresh_config, monkeypatch):  # noqa: F811
    """The DAGs parsed and run with the fresh configuration (its Params list its model)."""
    from airflow.dag_processing.dagbag import DagBag

    path, _ = fresh_config
    monkeypatch.setenv("RELEARN_CONFIG", path)
    return DagBag(dag_folder=str(ROOT / "dags")).dags


def _states(run) -> dict[str, str]:
    return {ti.task_id.split(".")[-1]: ti.state for ti in run.get_task_instances()}


def _skipped_with_reason(run, task_id: str, model: str) -> None:
    states = _states(run)
    assert run.state == "success", states
    assert states[task_id] == "skipped", states
    assert set(states.values()) <= {"success", "skipped"}, states


def test_model_health_fails_and_says_so(dags, fresh_config, database_url):  # noqa: F811
    _, model = fresh_config
    run = dags["model_health"].test(logical_date=AT, run_conf={"model": model})
    assert run.state == "failed"
    [check] = [ti for ti in run.get_task_instances() if ti.task_id == "check_health"]
    assert (check.state, check.try_number) == ("failed", 1)


def test_drift_monitor_skips(dags, fresh_config):  # noqa: F811
    _, model = fresh_config
    run = dags["drift_monitor"].test(logical_date=AT, run_conf={"model": model})
    _skipped_with_reason(run, "check_drift", model)


def test_ab_promotion_skips_starting_a_test_without_a_champion(
    dags,
    fresh_config,  # noqa: F811
    champion,
    model_cfg,
    tracking_uri,
):
    """A challenger but no champion to test it against: ``decide`` is skipped with why."""
    from relearn.registry import CHALLENGER, registry_client
    from tests.integration.traffic import register_copy

    _, model = fresh_config
    version = register_copy(model_cfg, tracking_uri, name=model, source=champion.version)
    registry_client(tracking_uri).set_registered_model_alias(model, CHALLENGER, version)
    run = dags["ab_promotion"].test(logical_date=AT, run_conf={"model": model, "action": "check"})
    _skipped_with_reason(run, "decide", model)


def test_auto_reinforcement_does_not_fail(dags, fresh_config):  # noqa: F811
    """Nothing to learn from and no champion: the run succeeds, nothing is red."""
    _, model = fresh_config
    run = dags["auto_reinforcement"].test(logical_date=AT, run_conf={"model": model})
    states = _states(run)
    assert run.state == "success", states
    assert set(states.values()) <= {"success", "skipped"}, states
