"""Bootstrap registers v1 as champion; the Predictor logs to Postgres; outcomes attach."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml

from relearn.registry import CHAMPION, aliases, list_versions, registry_client
from relearn.services import Services
from relearn.serving.predictor import Predictor
from relearn.simulate.world import World
from relearn.store.db import transaction
from relearn.training.preprocessing import FeatureSchemaError
from tests.conftest import run_cli

if TYPE_CHECKING:
    import uuid

pytestmark = pytest.mark.integration


@pytest.fixture
def predictor(model_cfg, database_url, tracking_uri, champion):
    return Predictor(Services(database_url, tracking_uri), model_cfg, batch_size=50)


def _rows(database_url: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT prediction_id, model_version, predicted_label, confidence, features,"
            " actual_label, outcome_at, unit_id FROM prediction_log WHERE prediction_id = ANY(%s)",
            (ids,),
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_bootstrap_registers_v1_as_champion_with_lineage(
    champion, model_cfg, database_url, tracking_uri
):
    from relearn.bootstrap import bootstrap_model

    client = registry_client(tracking_uri)
    assert champion.created
    assert aliases(client, model_cfg.name)[CHAMPION] == champion.version
    assert champion.metrics["accuracy"] >= 0.7, champion.metrics
    version = client.get_model_version(model_cfg.name, champion.version)
    assert float(version.tags["relearn.reference_accuracy"]) == pytest.approx(
        champion.metrics["accuracy"], abs=1e-6
    )
    run = client.get_run(version.run_id)
    assert [i.dataset.name for i in run.inputs.dataset_inputs] == [f"{model_cfg.name}-reference"]
    assert "reference" in [a.path for a in client.list_artifacts(version.run_id)]
    versions = len(list_versions(client, model_cfg.name))  # retraining tests may add some
    again = bootstrap_model(Services(database_url, tracking_uri), model_cfg)
    assert not again.created and again.version == champion.version
    assert len(list_versions(client, model_cfg.name)) == versions


def test_predictions_are_logged_and_read_back_by_sql(predictor, model_cfg, database_url):
    frame, _ = World(model_cfg).sample(120, datetime.now(UTC), np.random.default_rng(1))
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with predictor:
        logged = predictor.predict(frame, unit_ids=[f"u{i}" for i in range(120)], at=at)
    rows = _rows(database_url, [p.prediction_id for p in logged])
    assert len(rows) == 120
    for prediction in logged:
        version, label, confidence, features, actual, _, unit = rows[prediction.prediction_id]
        assert version == predictor.serving_version() == "1"
        assert label == prediction.predicted_label and label in model_cfg.classes
        assert confidence == pytest.approx(prediction.confidence) and 0.5 <= confidence <= 1
        assert set(features) == set(model_cfg.feature_names)
        assert actual is None and unit.startswith("u")


def test_outcomes_attach_once(predictor, model_cfg, database_url):
    frame, labels = World(model_cfg).sample(10, datetime.now(UTC), np.random.default_rng(2))
    logged = predictor.predict(frame)
    arrived = datetime.now(UTC) + timedelta(hours=1)
    outcomes = [(p.prediction_id, y, arrived) for p, y in zip(logged, labels, strict=True)]
    assert predictor.record_outcomes(outcomes) == 10
    assert predictor.record_outcomes(outcomes) == 0  # replayed feed changes nothing
    rows = _rows(database_url, [p.prediction_id for p in logged])
    assert [rows[p.prediction_id][4] for p in logged] == list(labels)


def test_unknown_outcome_label_is_rejected(predictor, model_cfg):
    frame, _ = World(model_cfg).sample(1, datetime.now(UTC), np.random.default_rng(3))
    [logged] = predictor.predict(frame)
    with pytest.raises(ValueError, match="unknown label"):
        predictor.record_outcome(logged.prediction_id, "maybe")
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['1'\]"):  # an int is its text
        predictor.record_outcome(logged.prediction_id, 1)


def test_wrong_feature_type_is_a_clear_error_and_logs_nothing(predictor, model_cfg, database_url):
    frame, _ = World(model_cfg).sample(5, datetime.now(UTC), np.random.default_rng(4))
    predictor.flush()
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM prediction_log")
        before = cursor.fetchone()[0]
    frame = frame.astype({"tenure_months": object})
    frame.loc[frame.index[2], "tenure_months"] = "ten"
    with pytest.raises(FeatureSchemaError, match="tenure_months"):
        predictor.predict(frame)
    predictor.flush()
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM prediction_log")
        assert cursor.fetchone()[0] == before


@pytest.fixture(scope="module")
def noise_model(model_cfg, tmp_path_factory):
    """``noise_v1``, bootstrapped from churn's rows with shuffled labels (no signal at all):
    the configuration file and the CLI's answer."""
    folder = tmp_path_factory.mktemp("noise")
    frame = World(model_cfg).reference_frame(800)
    frame[model_cfg.label] = np.random.default_rng(5).permutation(frame[model_cfg.label].to_numpy())
    frame.to_csv(folder / "history.csv", index=False)
    entry = {**model_cfg.model_dump(mode="json", exclude={"simulation"}), "name": "noise_v1"}
    config = folder / "relearn.yaml"
    config.write_text(yaml.safe_dump({"models": [model_cfg.model_dump(mode="json"), entry]}))
    answer = run_cli(
        "--config",
        str(config),
        "bootstrap",
        "--model",
        "noise_v1",
        "--dataset",
        str(folder / "history.csv"),
    )
    return config, answer


def test_a_v1_below_the_gates_is_champion_with_a_note(noise_model):
    """v1 still becomes champion, and the user is told why candidates will be judged against
    it rather than against the gates."""
    _, result = noise_model
    assert result.returncode == 0, result.stderr
    assert result.stdout == "noise_v1: v1 is champion (registered)\n"
    [note] = [line for line in result.stderr.splitlines() if "below the gates'" in line]
    assert "noise_v1 v1 is below the gates' absolute bars (" in note and "f1_macro" in note, note
    for mlflow_noise in ("interpreted in multiple ways", "Passing a Python object"):
        assert mlflow_noise not in result.stderr  # repeated in every run's log otherwise


def test_summary_of_one_model(noise_model, model_cfg, predictor):
    config, _ = noise_model
    predictor.predict(World(model_cfg).sample(3, datetime.now(UTC), np.random.default_rng(6))[0])
    predictor.flush()

    def summary(*args: str) -> dict:
        result = run_cli("--config", str(config), "summary", "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    everything, noise = summary(), summary("--model", "noise_v1")
    assert everything["predictions_logged"] > 0 and noise["predictions_logged"] == 0
    assert {row["model_name"] for row in everything["alias_history"]} >= {"churn", "noise_v1"}
    assert {row["model_name"] for row in noise["alias_history"]} == {"noise_v1"}
    assert {row["name"] for row in noise["model_versions"]} == {"noise_v1"}
