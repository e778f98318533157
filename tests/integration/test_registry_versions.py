"""Registered versions kept, archived and rolled back to by recorded F1 (real MLflow and
Postgres): issue 15 §2."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import TYPE_CHECKING

import pytest
import yaml
from mlflow.exceptions import MlflowException

from relearn.abtest import DeployError
from relearn.abtest.aliases import PREVIOUS_CHAMPION
from relearn.abtest.champion import set_alias
from relearn.abtest.rollback import rollback_champion
from relearn.registry import ARCHIVED_TAG, CHAMPION, aliases, registry_client
from relearn.retention.versions import VersionStatus, prune_versions
from relearn.services import Services, experiment_name
from relearn.store.aliases import history
from relearn.store.db import transaction
from tests.conftest import ROOT, run_cli
from tests.integration.traffic import register_copy

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.fixture
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


@pytest.fixture
def model(model_cfg):
    """The churn schema under a fresh name: each test has its own registered model."""
    return model_cfg.model_copy(update={"name": f"reg_{uuid.uuid4().hex[:10]}"})


def add_version(tracking_uri: str, name: str, f1: float | None, tmp_path: Path) -> str:
    """A registered version whose run recorded ``f1`` as its holdout macro-F1, with a file."""
    client = registry_client(tracking_uri)
    found = client.get_experiment_by_name(experiment_name(name))
    experiment_id = (
        found.experiment_id if found else client.create_experiment(experiment_name(name))
    )
    run_id = client.create_run(experiment_id).info.run_id
    if f1 is not None:
        client.log_metric(run_id, "holdout_f1_macro", f1)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(uuid.uuid4().bytes)
    client.log_artifact(run_id, str(weights), "model")
    client.set_terminated(run_id)
    with contextlib.suppress(MlflowException):  # registered by an earlier version
        client.create_registered_model(name)
    return str(client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id).version)


def files_of(tracking_uri: str, name: str, version: str, tmp_path: Path) -> list[str]:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = registry_client(tracking_uri)
    location = client.get_model_version_download_uri(name, version)
    return [
        f.path
        for f in get_artifact_repository(location, tracking_uri=tracking_uri).list_artifacts()
    ]


def test_old_versions_lose_their_files_unless_aliased_tested_or_retraining(
    services, model, model_cfg, champion, tmp_path
):
    name, uri = model.name, services.tracking_uri
    model = model.model_copy(
        update={"registry": model.registry.model_copy(update={"keep_versions": 2})}
    )
    # v1 a real pyfunc model (MLflow 3 logged model), v2..v8 small ones.
    real = register_copy(model_cfg, uri, name=name, source=champion.version)
    numbers = [real] + [add_version(uri, name, 0.8, tmp_path) for _ in range(7)]
    assert numbers == [str(n) for n in range(1, 9)]
    client = registry_client(uri)
    client.set_registered_model_alias(name, CHAMPION, "7")
    client.set_registered_model_alias(name, PREVIOUS_CHAMPION, "2")
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ab_tests (model_name, champion_version, challenger_version, status, "
            "stages) VALUES (%s, '7', '3', 'pending', '[]')",
            (name,),
        )
        cursor.execute(
            "INSERT INTO model_retraining_runs (id, model_name, source, status, params, "
            "model_version, trigger_key) VALUES (%s, %s, 'manual', 'running', %s, '5', %s)",
            (uuid.uuid4(), name, json.dumps({"champion_version": "7"}), f"t-{uuid.uuid4()}"),
        )

    dry = prune_versions(services, model, trigger_key="dry", dry_run=True)

    # Without an alias, newest first: 8, 6 kept; 5 (retraining), 3 (A/B test) in use.
    assert dry.of(VersionStatus.KEPT) == ["8", "6"]
    assert dry.of(VersionStatus.IN_USE) == ["5", "3"]
    assert dry.of(VersionStatus.WOULD_ARCHIVE) == ["4", "1"]
    assert files_of(uri, name, "1", tmp_path) and files_of(uri, name, "4", tmp_path)

    result = prune_versions(services, model, trigger_key="daily")

    assert result.of(VersionStatus.ARCHIVED) == ["4", "1"]
    for number in ("1", "4"):
        assert files_of(uri, name, number, tmp_path) == []
        assert (
            "by daily: older than the last 2"
            in client.get_model_version(name, number).tags[ARCHIVED_TAG]
        )
    for number in ("2", "3", "5", "6", "7", "8"):
        assert files_of(uri, name, number, tmp_path), number
        assert ARCHIVED_TAG not in client.get_model_version(name, number).tags
    with pytest.raises(DeployError, match="v4 was archived"):
        set_alias(services, name, "shadow", "4", by="t", reason="t")
    again = prune_versions(services, model, trigger_key="next-day")
    assert again.of(VersionStatus.ARCHIVED) == []


def test_rollback_to_best_picks_by_recorded_holdout_f1_and_says_why(services, model, tmp_path):
    name, uri = model.name, services.tracking_uri
    for f1 in (0.70, 0.85, 0.80, 0.60, None, 0.90):  # v5 recorded no F1
        add_version(uri, name, f1, tmp_path)
    client = registry_client(uri)
    client.set_registered_model_alias(name, CHAMPION, "6")

    best = rollback_champion(services, model, to="best", by="oncall", reason="pager")

    assert best.version == "2"
    assert aliases(client, name)[CHAMPION] == "2"
    with transaction(services.database_url) as connection:
        last = history(connection, name, CHAMPION)[-1]
    assert (last.version, last.previous_version, last.changed_by) == ("2", "6", "oncall")
    assert (
        last.reason
        == "pager; rollback to v2: the best recorded holdout F1 (0.850) of the earlier versions"
    )

    client.set_registered_model_alias(name, CHAMPION, "6")
    client.set_model_version_tag(name, "3", ARCHIVED_TAG, "gone")  # files gone: skipped
    bar = rollback_champion(services, model, to="best", min_f1=0.65, by="oncall", reason="pager")
    # The most recent earlier version meeting the bar with its files: v3 archived, v4 0.60.
    assert (
        bar.version == "2"
        and "most recent earlier version with holdout F1 0.850 >= 0.65" in bar.reason
    )

    # A lower bar: the most recent earlier one is v4 (0.60), not the best.
    client.set_registered_model_alias(name, CHAMPION, "6")
    assert (
        rollback_champion(services, model, to="best", min_f1=0.55, by="o", reason="p").version
        == "4"
    )
    with pytest.raises(DeployError, match="lower --min-f1"):
        rollback_champion(services, model, to="best", min_f1=0.95, by="oncall", reason="x")
    with pytest.raises(DeployError, match="applies to a rollback to 'best' only"):
        rollback_champion(services, model, to="previous", min_f1=0.5, by="oncall", reason="x")


def test_registry_rollback_cli_best_with_a_bar_and_one_line_failures(services, model, tmp_path):
    name, uri = model.name, services.tracking_uri
    for f1 in (0.82, 0.75, 0.90):
        add_version(uri, name, f1, tmp_path)
    registry_client(uri).set_registered_model_alias(name, CHAMPION, "3")
    data = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    data["models"][0]["name"] = name
    (tmp_path / "relearn.yaml").write_text(yaml.safe_dump(data))
    env = {"RELEARN_CONFIG": str(tmp_path / "relearn.yaml")}

    done = run_cli(
        "registry", "rollback", "--model", name, "--to", "best", "--min-f1", "0.8", env=env
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["champion"] == "1"
    for args, expected in (
        (["--to", "best", "--min-f1", "0.99"], "lower --min-f1"),
        (["--to", "best", "--min-f1", "high"], "not an F1 between 0 and 1"),
        (["--to", "newest"], "'previous', 'best' or a version number"),
    ):
        failed = run_cli("registry", "rollback", "--model", name, *args, env=env)
        assert failed.returncode == 1
        [line] = failed.stderr.strip().splitlines()  # one line, saying what to do
        assert expected in line


def test_the_first_champion_is_in_the_alias_history(services, model_cfg, champion):
    with transaction(services.database_url) as connection:
        first = history(connection, model_cfg.name, CHAMPION)[0]
    assert (first.version, first.previous_version, first.changed_by) == (
        champion.version,
        None,
        "bootstrap",
    )
    assert first.reason.startswith("bootstrap v1 from ")


def test_deploy_operator_and_the_trigger_form_roll_back_to_best(
    services, model, tmp_path, monkeypatch
):
    from types import SimpleNamespace

    from relearn_airflow.operators.abtest import ROLLBACK_CHAMPION, ABTestOperator
    from relearn_airflow.operators.retraining import MLflowDeployOperator

    name, uri = model.name, services.tracking_uri
    for f1 in (0.91, 0.70, 0.84, 0.95):
        add_version(uri, name, f1, tmp_path)
    client = registry_client(uri)
    client.set_registered_model_alias(name, CHAMPION, "4")
    data = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    data["models"][0]["name"] = name
    (tmp_path / "relearn.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("RELEARN_CONFIG", str(tmp_path / "relearn.yaml"))

    operator = MLflowDeployOperator(
        task_id="rollback", model_name=name, action="rollback", version="best", min_f1="0.8"
    )
    assert operator.execute({})["version"] == "3"  # the most recent earlier one >= 0.8

    client.set_registered_model_alias(name, CHAMPION, "4")
    form = {"action": ROLLBACK_CHAMPION, "rollback_to": "best", "min_f1": None}
    run = SimpleNamespace(dag_id="ab_promotion", run_id="manual__1")
    decided = ABTestOperator(task_id="decide", model_name=name).execute(
        {"params": form, "dag_run": run}
    )
    assert decided["version"] == "1"  # the best earlier one
    with transaction(services.database_url) as connection:
        last = history(connection, name, CHAMPION)[-1]
    assert last.changed_by == "airflow:ab_promotion"
    assert last.reason.startswith("trigger form of manual__1; rollback to v1: the best")
