"""Import a scikit-learn Pipeline from MLflow as a champion, serve it, and retrain it.

Against the real MLflow server and Postgres: the team's model is logged and registered with
MLflow's own sklearn flavour under another name, imported with the ``relearn`` command, then
learns from its logged mistakes like any Relearn model.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from relearn.config import FeatureType, ModelKind
from relearn.drift.reference import load_profile
from relearn.onboarding.imported import IMPORTED_TAG
from relearn.registry import CHAMPION, aliases, list_versions, model_uri, registry_client
from relearn.retraining.artifacts import load_registered_classifier
from relearn.retraining.loop import reinforce
from relearn.retraining.options import ReinforceOptions
from relearn.services import Services
from relearn.simulate.world import World
from tests.conftest import run_cli
from tests.integration.traffic import log_traffic

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

NAME = "churn_imported"
# Configured like NAME but never imported: the failing imports target it.
FRESH = "churn_fresh"
TEAM_MODEL = "team_churn_pipeline"
# This module's own traffic period: three days right after a concept shift.
DRIFT_END = datetime(2026, 10, 10, tzinfo=UTC)
DRIFT_DAYS = 3


@pytest.fixture(scope="module")
def imported_cfg(model_cfg):
    """The churn schema under another name (its configured kind stays torch_mlp)."""
    return model_cfg.model_copy(update={"name": NAME})


@pytest.fixture(scope="module")
def config_file(imported_cfg, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("import") / "relearn.yaml"
    models = [imported_cfg.model_copy(update={"name": name}) for name in (NAME, FRESH)]
    path.write_text(yaml.safe_dump({"models": [m.model_dump(mode="json") for m in models]}))
    return path


@pytest.fixture(scope="module")
def frames(imported_cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The team's training rows and the rows they validated the model on."""
    rows = World(imported_cfg).reference_frame(3000)
    return rows.iloc[:2000], rows.iloc[2000:]


def _pipeline(model_cfg) -> Pipeline:
    numeric = [f.name for f in model_cfg.features if f.type is FeatureType.NUMERIC]
    categorical = [f.name for f in model_cfg.features if f.type is FeatureType.CATEGORICAL]
    return Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("scale", StandardScaler(), numeric),
                        ("onehot", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("classify", LogisticRegression(C=0.5, max_iter=500)),
        ]
    )


def _log(estimator, *, tracking_uri: str, registered_model_name: str | None = None):
    """Log (and register) ``estimator`` as the team would: MLflow's sklearn flavour."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("team-models")
    with mlflow.start_run():
        return mlflow.sklearn.log_model(
            estimator,
            name="model",
            registered_model_name=registered_model_name,
            pip_requirements=["scikit-learn"],
        )


@pytest.fixture(scope="module")
def team_pipeline(imported_cfg, frames, tracking_uri) -> Pipeline:
    train, _ = frames
    pipeline = _pipeline(imported_cfg).fit(
        train[imported_cfg.feature_names], train[imported_cfg.label]
    )
    _log(pipeline, tracking_uri=tracking_uri, registered_model_name=TEAM_MODEL)
    return pipeline


@pytest.fixture(scope="module")
def reference_file(frames, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "validated.parquet"
    frames[1].to_parquet(path, index=False)
    return path


def _import(config_file: Path, uri: str, reference: Path | str, model: str = NAME):
    return run_cli(
        "--config",
        str(config_file),
        "bootstrap",
        "--model",
        model,
        "--from-mlflow",
        uri,
        "--reference",
        str(reference),
    )


@pytest.fixture(scope="module")
def imported(config_file, team_pipeline, reference_file, stack):
    result = _import(config_file, f"models:/{TEAM_MODEL}/1", reference_file)
    assert result.returncode == 0, result.stderr
    return result


def _scalar_params(estimator) -> dict:
    """Hyperparameters that are plain values (nested estimators compare by identity)."""
    return {
        key: value
        for key, value in estimator.get_params(deep=True).items()
        if value is None or isinstance(value, str | int | float | bool)
    }


def test_import_makes_the_pipeline_champion_with_profile_and_reference_accuracy(
    imported, imported_cfg, team_pipeline, frames, tracking_uri, config_file, reference_file
):
    assert f"{NAME}: v1 is champion (imported" in imported.stdout
    client = registry_client(tracking_uri)
    assert aliases(client, NAME) == {CHAMPION: "1"}
    version = client.get_model_version(NAME, "1")
    assert version.tags[IMPORTED_TAG] == f"models:/{TEAM_MODEL}/1"
    validated = frames[1]
    accuracy = team_pipeline.score(
        validated[imported_cfg.feature_names], validated[imported_cfg.label]
    )
    assert float(version.tags["relearn.reference_accuracy"]) == pytest.approx(accuracy, abs=1e-6)
    profile = load_profile(tracking_uri, NAME, "1")
    assert profile.reference_accuracy == pytest.approx(accuracy, abs=1e-6)
    assert profile.rows == len(validated)

    served = load_registered_classifier(tracking_uri, model_uri(NAME, "1"))
    assert served.kind is ModelKind.SKLEARN_IMPORTED
    features = validated[imported_cfg.feature_names]
    # Served calibrated: the team's probabilities under the temperature fitted at import.
    assert served.calibration.rows > 0
    expected = served.calibration.apply(team_pipeline.predict_proba(features))
    assert served.predict_proba(features) == pytest.approx(expected)

    again = _import(config_file, f"models:/{TEAM_MODEL}/1", reference_file)
    assert again.returncode == 0, again.stderr
    assert "imported before" in again.stdout
    assert len(list_versions(client, NAME)) == 1


def test_retraining_refits_a_clone_gated_against_the_imported_champion(
    imported, imported_cfg, team_pipeline, database_url, tracking_uri
):
    log_traffic(
        imported_cfg,
        database_url,
        tracking_uri,
        start=DRIFT_END - timedelta(days=DRIFT_DAYS),
        end=DRIFT_END,
        concept_shift=1.0,
    )
    # The configured kind is torch_mlp, and even "from scratch" the imported champion's
    # estimator is what gets refitted.
    options = ReinforceOptions.from_config(imported_cfg, lookback_days=DRIFT_DAYS, fine_tune=False)
    run = reinforce(
        Services(database_url, tracking_uri),
        imported_cfg,
        options,
        trigger_key=f"test-import-{uuid.uuid4()}",
        now=DRIFT_END,
    )
    assert run.status == "completed", run.error_message
    assert run.model_version is not None
    metrics = run.metrics
    assert metrics["errors"] >= imported_cfg.reinforcement.min_error_samples
    assert {"holdout", "champion_holdout", "gate"} <= set(metrics)
    # After a concept shift the refit on the window's lessons beats the imported champion.
    assert metrics["holdout"]["accuracy"] > metrics["champion_holdout"]["accuracy"]

    candidate = load_registered_classifier(tracking_uri, model_uri(NAME, run.model_version))
    assert candidate.kind is ModelKind.SKLEARN_IMPORTED
    assert type(candidate.estimator) is Pipeline
    assert _scalar_params(candidate.estimator) == _scalar_params(team_pipeline)
    refitted, original = candidate.estimator[-1].coef_, team_pipeline[-1].coef_
    assert refitted.shape == original.shape
    assert refitted != pytest.approx(original, abs=0.001)
    # The reference sample travels on, so the next refit learns from it too.
    assert candidate.reference_sample is not None
    assert len(candidate.reference_sample) == 1000
    version = registry_client(tracking_uri).get_model_version(NAME, run.model_version)
    assert version.tags["relearn.parent_version"] == "1"


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.Series(["no"] * len(model_input))


def _last_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def _attempt(case: str, model_cfg, frames, tracking_uri, config_file, reference_file, tmp_path):
    """Run the import the way ``case`` gets it wrong; the finished command."""
    train, validated = frames
    features, label = model_cfg.feature_names, model_cfg.label
    uri, reference, model = "models:/no_such_team_model/1", reference_file, FRESH
    if case == "custom_pyfunc":
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment("team-models")
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model", python_model=_Constant(), pip_requirements=["mlflow"]
            )
        uri = info.model_uri
    elif case == "no_predict_proba":
        numeric = [f.name for f in model_cfg.features if f.type is FeatureType.NUMERIC]
        uri = _log(LinearSVC().fit(train[numeric], train[label]), tracking_uri=tracking_uri)
        uri = uri.model_uri
    elif case == "other_classes":
        pipeline = _pipeline(model_cfg).fit(train[features], (train[label] == "yes") * 1)
        # A runs:/ URI: resolved and loaded before the classes are checked.
        uri = f"runs:/{_log(pipeline, tracking_uri=tracking_uri).run_id}/model"
    elif case == "missing_feature":
        reference = tmp_path / "validated.csv"
        validated.drop(columns=["region"]).to_csv(reference, index=False)
        uri = f"models:/{TEAM_MODEL}/1"
    elif case == "bad_scheme":
        uri = "s3://bucket/model"
    elif case == "taken":
        pipeline = _pipeline(model_cfg).fit(train[features], train[label])
        _log(pipeline, tracking_uri=tracking_uri, registered_model_name=TEAM_MODEL)
        uri, model = f"models:/{TEAM_MODEL}/2", NAME
    elif case == "no_reference":
        return run_cli(
            "--config", str(config_file), "bootstrap", "--model", model, "--from-mlflow", uri
        )
    return _import(config_file, uri, reference, model=model)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_model", "no MLflow model at models:/no_such_team_model/1"),
        ("custom_pyfunc", "a custom pyfunc model has no predict_proba"),
        ("no_predict_proba", "LinearSVC has no predict_proba"),
        ("other_classes", "predicts classes ['0', '1'] but model 'churn_fresh'"),
        ("missing_feature", "lacks column(s) ['region']"),
        ("no_reference", "--from-mlflow needs --reference FILE"),
        ("bad_scheme", "unsupported model URI 's3://bucket/model'"),
        ("taken", "already has champion v1, not imported from models:/team_churn_pipeline/2"),
    ],
)
def test_unsupported_imports_fail_with_one_line(
    case, expected, imported, imported_cfg, frames, tracking_uri, config_file, reference_file,
    tmp_path
):  # fmt: skip
    result = _attempt(
        case, imported_cfg, frames, tracking_uri, config_file, reference_file, tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert expected in _last_line(result), result.stderr
    assert "Traceback" not in result.stderr
    assert aliases(registry_client(tracking_uri), FRESH) == {}
