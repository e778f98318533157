"""A/B tests against the real Postgres and MLflow: routing, decisions, alias moves, crashes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml

from relearn.abtest import DeployError
from relearn.abtest.aliases import PREVIOUS_CHAMPION
from relearn.abtest.arms import arm_stats
from relearn.abtest.champion import set_alias
from relearn.abtest.deploy import check_test, start_test
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.services import NoChampionError, Services
from relearn.serving.predictor import Predictor
from relearn.serving.router import CHALLENGER_ARM, Split, SplitRouter, choose_arm
from relearn.simulate.world import World
from relearn.store import abtests
from relearn.store.aliases import history
from relearn.store.db import transaction
from tests.conftest import ROOT, run_cli
from tests.integration.traffic import register_copy, serve_by_split

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

NAME = "ab_churn"
T0 = datetime(2026, 7, 1, tzinfo=UTC)
UNITS = [f"customer-{i:04d}" for i in range(2000)]


@pytest.fixture(scope="module")
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


@pytest.fixture(scope="module")
def ab_cfg(model_cfg):
    return model_cfg.model_copy(update={"name": NAME})


@pytest.fixture(scope="module")
def register(model_cfg, champion, tracking_uri):
    """Register another copy of churn's v1 under ``ab_churn``; returns its version."""
    return lambda: register_copy(model_cfg, tracking_uri, name=NAME, source=champion.version)


@pytest.fixture(scope="module")
def versions(register, tracking_uri):
    v1, v2 = register(), register()
    client = registry_client(tracking_uri)
    client.set_registered_model_alias(NAME, CHAMPION, v1)
    client.set_registered_model_alias(NAME, CHALLENGER, v2)
    return v1, v2


def _traffic(ab_cfg, services, start: datetime, hours: int) -> None:
    serve_by_split(ab_cfg, services, World(ab_cfg), units=UNITS, start=start, hours=hours)


def _arms_by_unit(database_url) -> dict[str, set[str]]:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT unit_id, array_agg(DISTINCT served_by) FROM prediction_log "
            "WHERE model_name = %s GROUP BY unit_id",
            (NAME,),
        )
        return {unit: set(arms) for unit, arms in cursor.fetchall()}


def test_a_test_routes_sticky_shares_and_decides_with_numbers(versions, ab_cfg, services):
    v1, v2 = versions
    started = start_test(services, ab_cfg, now=T0, trigger_key="start-1", by="tester")
    assert (started.action, started.traffic, started.version) == ("start", 10, v2)
    _traffic(ab_cfg, services, T0, 2)
    with transaction(services.database_url) as connection:
        test = abtests.live_test(connection, NAME, abtests.ACTIVE)
        window = abtests.ArmWindow(NAME, v1, v2, T0, T0 + timedelta(hours=2))
        arms = arm_stats(connection, window, list(ab_cfg.classes))
    assert test.status == "running" and test.champion_version == v1
    # Exactly the units hashed below 10 % get the challenger (two predictions each); the
    # hash of a random test id puts about 10 % of them there.
    at10 = {u for u in UNITS if choose_arm(Split(str(test.id), 10), u) == CHALLENGER_ARM}
    assert arms["challenger"].predictions == 2 * len(at10)
    assert len(at10) / len(UNITS) == pytest.approx(0.10, abs=0.04)
    assert arms["challenger"].labelled == arms["challenger"].predictions
    assert 0.6 < arms["champion"].accuracy < 0.95 and arms["champion"].latency_p95_ms > 0

    # Too early: hold, never fail; the numbers are stored with the decision.
    held = check_test(services, ab_cfg, now=T0 + timedelta(hours=2), trigger_key="check-1")
    assert held.action == "hold" and "since start" in held.reason
    again = check_test(services, ab_cfg, now=T0 + timedelta(hours=2), trigger_key="check-1")
    assert again.action == "hold"  # the same run key decides once
    with transaction(services.database_url) as connection:
        recorded = abtests.decisions(connection, test.id)
    assert [d.action for d in recorded] == ["start", "hold"]
    assert recorded[1].numbers["challenger"]["labelled"] == arms["challenger"].labelled

    # Expanding keeps every challenger unit on the challenger.
    check_test(
        services, ab_cfg, now=T0 + timedelta(hours=2), trigger_key="expand-1", action="expand"
    )
    _traffic(ab_cfg, services, T0 + timedelta(hours=2), 1)
    seen = _arms_by_unit(services.database_url)
    assert at10 and all(seen[u] == {"challenger"} for u in at10)
    at25 = {u for u in UNITS if choose_arm(Split(str(test.id), 25), u) == CHALLENGER_ARM}
    moved = {u for u in UNITS if seen[u] == {"champion", "challenger"}}
    assert at10 < at25 and moved == at25 - at10  # exactly the units hashed in [10 %, 25 %)
    assert len(moved) / len(UNITS) == pytest.approx(0.15, abs=0.05)


def test_promotion_moves_aliases_and_writes_history(versions, ab_cfg, services, tracking_uri):
    v1, v2 = versions
    outcome = check_test(
        services,
        ab_cfg,
        now=T0 + timedelta(hours=3),
        trigger_key="promote-1",
        action="promote",
        by="tester",
    )
    assert outcome.action == "promote"
    current = aliases(registry_client(tracking_uri), NAME)
    assert current[CHAMPION] == v2 and current[PREVIOUS_CHAMPION] == v1
    assert CHALLENGER not in current
    with transaction(services.database_url) as connection:
        test = abtests.find_test(connection, NAME, v2)
        changes = history(connection, NAME)
    assert (test.status, test.traffic_percent) == ("promoted", 100) and test.ended_at
    promoted = [(c.alias, c.version, c.previous_version) for c in changes[-3:]]
    assert promoted == [(CHAMPION, v2, v1), (PREVIOUS_CHAMPION, v1, None), (CHALLENGER, None, v2)]
    assert {c.changed_by for c in changes[-3:]} == {"tester"}
    # Nothing left to test: a check does nothing; a promoted version cannot be tested again.
    assert (
        check_test(services, ab_cfg, now=T0 + timedelta(hours=4), trigger_key="c2").action == "none"
    )
    with pytest.raises(DeployError, match="champion already"):
        start_test(services, ab_cfg, now=T0, trigger_key="start-again", version=v2)


_CRASHING_PROMOTION = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime, UTC
    from mlflow import MlflowClient
    from relearn.abtest.deploy import check_test
    from relearn.config import load_config
    from relearn.services import NoChampionError, Services

    original = MlflowClient.set_registered_model_alias
    def set_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # between the first and the second alias write
    MlflowClient.set_registered_model_alias = set_then_die
    cfg = load_config().model("churn").model_copy(update={"name": sys.argv[3]})
    check_test(Services(sys.argv[1], sys.argv[2]), cfg, now=datetime.now(UTC),
               trigger_key="crash", action="promote", by="crash-test")
    """
)


def test_a_promotion_killed_between_alias_writes_is_completed_by_the_next_run(
    versions, register, ab_cfg, services, tracking_uri
):
    v1, v2 = versions  # v2 is champion now
    v3 = register()
    start_test(services, ab_cfg, now=T0 + timedelta(hours=5), trigger_key="start-3", version=v3)
    killed = subprocess.run(
        [sys.executable, "-c", _CRASHING_PROMOTION, services.database_url, tracking_uri, NAME],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    half = aliases(registry_client(tracking_uri), NAME)
    assert half[CHAMPION] == v3 and half[PREVIOUS_CHAMPION] == v1  # only the first write landed
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM alias_moves WHERE model_name = %s AND status = 'pending'", (NAME,)
        )
        assert cursor.fetchone()[0] == 1

    # Any next call finishes the move first.
    check_test(services, ab_cfg, now=T0 + timedelta(hours=6), trigger_key="after-crash")
    current = aliases(registry_client(tracking_uri), NAME)
    assert current[CHAMPION] == v3 and current[PREVIOUS_CHAMPION] == v2
    assert CHALLENGER not in current
    with transaction(services.database_url) as connection:
        test = abtests.find_test(connection, NAME, v3)
        changes = [c for c in history(connection, NAME) if c.changed_by == "crash-test"]
    assert test.status == "promoted"
    assert [(c.alias, c.version) for c in changes] == [
        (CHAMPION, v3),
        (PREVIOUS_CHAMPION, v2),
        (CHALLENGER, None),
    ]


@pytest.fixture(scope="module")
def ab_config_env(tmp_path_factory) -> dict[str, str]:
    """A configuration file in which churn is called ab_churn, for the CLI."""
    return _renamed_config_env(tmp_path_factory.mktemp("config"), NAME)


def test_emergency_rollback_to_the_last_known_good_version(
    versions, ab_cfg, services, tracking_uri, ab_config_env
):
    result = run_cli(
        "registry",
        "rollback",
        "--model",
        NAME,
        "--to",
        "previous",
        "--by",
        "oncall",
        "--reason",
        "pager: conversions fell",
        env=ab_config_env,
    )
    assert result.returncode == 0, result.stderr
    target = json.loads(result.stdout)["champion"]
    current = aliases(registry_client(tracking_uri), NAME)
    assert current[CHAMPION] == target
    with transaction(services.database_url) as connection:
        last = history(connection, NAME)[-2:]
    assert last[0].alias == CHAMPION and last[0].reason == "pager: conversions fell"
    # The version rolled away from is not "known good": a second rollback cannot bring it back.
    assert PREVIOUS_CHAMPION not in current
    again = run_cli("registry", "rollback", "--model", NAME, "--to", "previous", env=ab_config_env)
    assert again.returncode == 1 and "no last known good version" in again.stderr
    unknown = run_cli(
        "registry", "rollback", "--model", NAME, "--to-version", "999", env=ab_config_env
    )
    assert unknown.returncode == 1 and "no version '999'" in unknown.stderr


def test_champion_cannot_be_removed_and_cli_lists_history(
    ab_cfg, services, versions, ab_config_env
):
    with pytest.raises(DeployError, match="never removed"):
        set_alias(services, NAME, CHAMPION, None, by="x", reason="y")
    listed = run_cli("registry", "history", "--model", NAME, env=ab_config_env)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.strip().splitlines()) >= 6


@pytest.mark.parametrize(("answer", "status"), [("Reject", "rolled_back"), ("Approve", "promoted")])
def test_a_humans_answer_is_carried_out_for_the_test_that_asked(
    answer, status, register, ab_cfg, services, ab_config_env, monkeypatch
):
    from types import SimpleNamespace

    from relearn_airflow.operators.approval import PromotionApprovalOperator

    monkeypatch.setenv("RELEARN_CONFIG", ab_config_env["RELEARN_CONFIG"])
    version = register()
    started = start_test(
        services, ab_cfg, now=T0 + timedelta(hours=9), trigger_key=f"hitl-{answer}", version=version
    )

    def answer_as_alice(run_id: str) -> None:
        request = {"model": NAME, "test_id": started.test_id, "version": version}
        operator = PromotionApprovalOperator(task_id="approve", request=request)
        operator.execute_complete(
            context={"dag_run": SimpleNamespace(run_id=run_id)},
            event={
                "chosen_options": [answer],
                "params_input": {},
                "responded_at": datetime.now(UTC),
                "responded_by_user": {"id": "7", "name": "alice"},
            },
        )

    answer_as_alice(f"too-early-{answer}")  # nobody asked yet: ignored
    with transaction(services.database_url) as connection:
        assert abtests.get_test(connection, started.test_id).status == "running"
        abtests.update_test(connection, started.test_id, approval="requested")
    answer_as_alice(f"hitl-{answer}")
    with transaction(services.database_url) as connection:
        test = abtests.get_test(connection, started.test_id)
        [*_, last] = abtests.decisions(connection, test.id)
    assert test.status == status
    assert last.decided_by == "human:alice"


def test_ab_cli_start_pause_resume_rollback_status(register, services, ab_config_env):
    version = register()

    def ab(*args: str) -> dict:
        result = run_cli("ab", *args, "--model", NAME, "--by", "cli-user", env=ab_config_env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert ab("start", "--version", version, "--traffic", "20")["traffic"] == 20
    assert ab("pause")["action"] == "pause"
    with transaction(services.database_url) as connection:
        assert abtests.find_test(connection, NAME, version).status == "paused"
    assert ab("resume")["action"] == "resume"
    assert ab("rollback")["action"] == "rollback"
    status = run_cli("ab", "status", "--model", NAME, env=ab_config_env)
    tests = [json.loads(line) for line in status.stdout.strip().splitlines()]
    mine = next(t for t in tests if t["challenger_version"] == version)
    assert mine["status"] == "rolled_back"
    assert [d["action"] for d in mine["decisions"]] == ["start", "pause", "resume", "rollback"]
    busy = run_cli("ab", "rollback", "--model", NAME, env=ab_config_env)
    assert busy.returncode == 0 and json.loads(busy.stdout)["action"] == "none"


def test_routing_to_a_challenger_that_is_gone_serves_the_champion(ab_cfg, services, versions):
    """Between a test's end (alias removed) and the router's next read, units routed to the
    challenger are served by the champion instead of failing."""
    import contextlib

    from mlflow.exceptions import MlflowException

    client = registry_client(services.tracking_uri)
    with contextlib.suppress(MlflowException):
        client.delete_registered_model_alias(NAME, CHALLENGER)
    router = SplitRouter(lambda: Split("ended-test", 100), ttl=60)
    frame, _ = World(ab_cfg).sample(5, T0, np.random.default_rng(1))
    with Predictor(services, ab_cfg, router=router) as p:
        served = p.predict(frame, unit_ids=[f"late-{i}" for i in range(5)], at=T0)
    champion = aliases(client, NAME)[CHAMPION]
    assert {(s.served_by, s.model_version) for s in served} == {("champion", champion)}


ORPHAN = "ab_orphan"


def _renamed_config_env(tmp_path: Path, name: str) -> dict[str, str]:
    """A configuration file in which churn is called ``name``, for the CLI."""
    data = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    data["models"][0]["name"] = name
    path = tmp_path / "relearn.yaml"
    path.write_text(yaml.safe_dump(data))
    return {"RELEARN_CONFIG": str(path)}


def test_a_model_without_champion_cannot_start_a_test(
    model_cfg, champion, services, tracking_uri, tmp_path
):
    """No champion is NoChampionError (a skip in Airflow), not a DeployError; one CLI line."""
    version = register_copy(model_cfg, tracking_uri, name=ORPHAN, source=champion.version)
    cfg = model_cfg.model_copy(update={"name": ORPHAN})
    with pytest.raises(NoChampionError, match=f"'{ORPHAN}' has no champion"):
        start_test(services, cfg, now=T0, trigger_key="orphan", version=version)
    env = _renamed_config_env(tmp_path, ORPHAN)
    result = run_cli("ab", "start", "--model", ORPHAN, "--version", version, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"relearn: '{ORPHAN}' has no champion yet: run `relearn bootstrap --model {ORPHAN}`"
    ]


def test_only_lifecycle_columns_of_a_test_can_be_updated(services):
    with transaction(services.database_url) as connection:
        test = abtests.request_test(
            connection,
            model_name="ab_columns",
            champion_version="1",
            challenger_version="2",
            stages=[10, 100],
            retraining_run_id=None,
            reason="column allow-list",
        )
        with pytest.raises(ValueError, match=r"cannot update \['model_name'\]"):
            abtests.update_test(connection, test.id, status="aborted", model_name="other")
        abtests.update_test(connection, test.id, status="aborted", ended_at=T0)
    with transaction(services.database_url) as connection:
        stored = abtests.get_test(connection, test.id)
    assert (stored.model_name, stored.status) == ("ab_columns", "aborted")
