"""Make a scikit-learn classifier that already lives in MLflow the champion of a Relearn model.

``relearn bootstrap --model NAME --from-mlflow URI --reference FILE``: the estimator (MLflow's
sklearn flavour) is wrapped as an ``ImportedSklearnClassifier`` over the configured schema,
scored on the reference file (rows it was validated on, with labels) for its reference
accuracy and drift profile, and registered as a version of NAME like any version Relearn
trains, so serving, drift checks, A/B tests and the gates treat it the same.

Idempotent like ``relearn.bootstrap``: the version carries the source URI as a tag, so a
second run (or one after a crash between registering and aliasing) finds it again.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.artifacts
import mlflow.data
import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from relearn.abtest.aliases import set_first_champion
from relearn.drift.reference import log_profile
from relearn.evaluation import classification_metrics, flat_metrics, label_indices
from relearn.registry import (
    CHAMPION,
    alias_version,
    find_version_by_tag,
    register_version,
    registry_client,
)
from relearn.services import experiment_name
from relearn.training.preprocessing import FeatureSchemaError, feature_frame
from relearn.training.pyfunc import log_pyfunc_model
from relearn.training.sklearn_imported import ImportedSklearnClassifier, class_positions

if TYPE_CHECKING:
    from pathlib import Path

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

IMPORTED_TAG = "relearn.imported_from"
URI_SCHEMES = ("models:/", "runs:/")
# Rows on which the estimator's own inputs and Relearn's typed inputs are compared.
_CHECK_ROWS = 1000
_LINEAGE_SAMPLE_ROWS = 1000
# A custom ``mlflow.pyfunc.PythonModel`` is served by this loader module.
_CUSTOM_PYFUNC_LOADER = "mlflow.pyfunc.model"


class ModelImportError(ValueError):
    """The model or the reference data cannot be imported; the message says what to do."""


@dataclass(frozen=True)
class ImportResult:
    model_name: str
    version: str
    created: bool
    source_uri: str
    metrics: dict[str, Any]


def import_champion(
    services: Services, model_cfg: ModelConfig, source_uri: str, reference_path: Path
) -> ImportResult:
    """Register the sklearn model at ``source_uri`` as ``model_cfg.name``'s champion.

    Nothing to do when it was imported before; a ``ModelImportError`` when the model already
    has a champion from elsewhere (bootstrap only ever sets the first one).
    """
    client = registry_client(services.tracking_uri)
    name = model_cfg.name
    champion = alias_version(client, name, CHAMPION)
    imported = find_version_by_tag(client, name, IMPORTED_TAG, source_uri)
    if champion is not None:
        if imported is None:
            raise ModelImportError(
                f"model '{name}' already has champion v{champion.version}, not imported from "
                f"{source_uri}: bootstrap only sets a first champion (import into a new model "
                "name instead)"
            )
        log.info("%s: %s was imported as v%s before; nothing to do", name, source_uri, imported)
        return ImportResult(name, str(champion.version), False, source_uri, {})
    if imported is not None:
        log.info("finishing an interrupted import: aliasing %s v%s as champion", name, imported)
        set_first_champion(
            services, name, imported, reason=f"import of {source_uri} (interrupted, finished)"
        )
        return ImportResult(name, imported, False, source_uri, {})

    reference = read_reference(reference_path, model_cfg)
    estimator = load_estimator(services.tracking_uri, source_uri)
    classifier = ImportedSklearnClassifier.wrap(model_cfg, estimator, reference)
    check_inputs(classifier, reference)
    features = feature_frame(reference, model_cfg)
    probabilities = classifier.predict_proba(features)
    metrics = classification_metrics(
        reference[model_cfg.label].tolist(), probabilities, model_cfg.classes
    )
    digest = _digest(reference)
    mlflow.set_tracking_uri(services.tracking_uri)
    mlflow.set_experiment(experiment_name(name))
    with mlflow.start_run(run_name=f"{name}-import") as run:
        mlflow.set_tags({IMPORTED_TAG: source_uri, "relearn.model": name})
        mlflow.log_params(
            {
                "source_uri": source_uri,
                "estimator": type(estimator).__name__,
                "reference_file": str(reference_path),
                "reference_rows": len(reference),
            }
        )
        mlflow.log_text(repr(estimator), "estimator.txt")
        mlflow.log_metrics(flat_metrics(metrics, prefix="reference_"))
        mlflow.log_input(
            mlflow.data.from_pandas(
                reference.head(_LINEAGE_SAMPLE_ROWS),
                name=f"{name}-reference",
                targets=model_cfg.label,
                digest=digest[:36],
            ),
            context="validation",
        )
        # Drift checks compare production with the rows the model was validated on.
        log_profile(
            model_cfg,
            features,
            probabilities,
            metrics["accuracy"],
            predict=classifier.predict_proba,
        )
        info = log_pyfunc_model(classifier, model_cfg)
    version = register_version(
        client,
        name,
        info.model_id,
        run_id=run.info.run_id,
        key_tag=IMPORTED_TAG,
        tags={
            IMPORTED_TAG: source_uri,
            "relearn.source": "import",
            "relearn.reference_accuracy": f"{metrics['accuracy']:.6f}",
            "relearn.dataset_digest": digest,
        },
    )
    set_first_champion(
        services,
        name,
        version,
        reason=f"import of {source_uri}: reference F1 {metrics['f1_macro']:.3f}",
    )
    log.info(
        "imported %s as %s v%s (run %s), champion: reference accuracy %.3f, F1 %.3f",
        source_uri,
        name,
        version,
        run.info.run_id,
        metrics["accuracy"],
        metrics["f1_macro"],
    )
    return ImportResult(name, version, True, source_uri, metrics)


def read_reference(path: Path, model_cfg: ModelConfig) -> pd.DataFrame:
    """The configured features and the label (as strings) of a CSV or Parquet file."""
    if not path.is_file():
        raise FileNotFoundError(f"reference file {path} not found")
    wanted = [*model_cfg.feature_names, model_cfg.label]
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        columns = _columns_or_fail(path, pq.read_schema(path).names, wanted)
        frame = pd.read_parquet(path, columns=columns)
    elif suffix == ".csv":
        columns = _columns_or_fail(path, list(pd.read_csv(path, nrows=0).columns), wanted)
        frame = pd.read_csv(path, usecols=columns, dtype={model_cfg.label: str})
    else:
        raise ModelImportError(
            f"reference file {path}: unsupported type '{path.suffix}' (use .csv or .parquet)"
        )
    if frame.empty:
        raise ModelImportError(f"reference file {path} has no rows")
    if frame[model_cfg.label].isna().any():
        row = int(np.flatnonzero(frame[model_cfg.label].isna().to_numpy())[0])
        raise ModelImportError(
            f"reference file {path}: row {row + 1} has no label ('{model_cfg.label}')"
        )
    frame[model_cfg.label] = frame[model_cfg.label].astype(str)
    try:
        label_indices(frame[model_cfg.label].tolist(), model_cfg.classes)
        feature_frame(frame, model_cfg)
    except (ValueError, FeatureSchemaError) as error:
        raise ModelImportError(f"reference file {path}: {error}") from None
    return frame


def _columns_or_fail(path: Path, present: list[str], wanted: list[str]) -> list[str]:
    missing = [name for name in wanted if name not in present]
    if missing:
        raise ModelImportError(
            f"reference file {path} lacks column(s) {missing} (the model's features and its "
            f"label '{wanted[-1]}' are needed)"
        )
    return wanted


def load_estimator(tracking_uri: str, source_uri: str) -> Any:
    """The scikit-learn estimator logged at ``source_uri`` on this tracking server."""
    if not source_uri.startswith(URI_SCHEMES):
        raise ModelImportError(
            f"unsupported model URI '{source_uri}': use models:/<registered name>/<version> "
            "or runs:/<run id>/<path>"
        )
    with tempfile.TemporaryDirectory(prefix="relearn-import-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=_location(registry_client(tracking_uri), source_uri),
                dst_path=tmp,
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
            flavors = Model.load(local).flavors
        except (MlflowException, OSError) as error:
            reason = str(getattr(error, "message", error)).splitlines()[0]
            raise ModelImportError(
                f"no MLflow model at {source_uri} on {tracking_uri} ({reason})"
            ) from None
        if "sklearn" not in flavors:
            raise ModelImportError(f"{source_uri}: {_unsupported_flavors(flavors)}")
        return mlflow.sklearn.load_model(local)


def _location(client: MlflowClient, source_uri: str) -> str:
    """Where the model's files are, asked of this server.

    MLflow resolves ``models:/`` URIs against the process-wide registry URI and a
    ``runs:/`` URI's logged model against the process-wide tracking URI, whatever
    ``download_artifacts`` is told.
    """
    if source_uri.startswith("runs:/"):
        run_id, _, path = source_uri.removeprefix("runs:/").partition("/")
        run = client.get_run(run_id)
        for output in run.outputs.model_outputs if run.outputs else []:
            logged = client.get_logged_model(output.model_id)
            if logged.name == path:
                return logged.artifact_location
        return f"{run.info.artifact_uri}/{path}"  # logged into the run's own artifacts
    name, _, version = source_uri.removeprefix("models:/").partition("/")
    if version:
        return client.get_model_version_download_uri(name, version)
    if "@" in name:
        name, _, alias = name.partition("@")
        version = client.get_model_version_by_alias(name, alias).version
        return client.get_model_version_download_uri(name, version)
    return client.get_logged_model(name).artifact_location


def _unsupported_flavors(flavors: dict[str, Any]) -> str:
    loader = flavors.get("python_function", {}).get("loader_module")
    if loader == _CUSTOM_PYFUNC_LOADER:
        return (
            "a custom pyfunc model has no predict_proba Relearn can call nor an estimator it "
            "can refit: log the scikit-learn classifier itself with mlflow.sklearn.log_model"
        )
    return (
        f"flavour(s) {sorted(flavors)} are not supported: Relearn imports scikit-learn "
        "classifiers and Pipelines logged with mlflow.sklearn.log_model"
    )


def check_inputs(classifier: ImportedSklearnClassifier, reference: pd.DataFrame) -> None:
    """Fail unless the estimator answers the same to Relearn's typed features as to the file's.

    Relearn serves numeric features as floats and categorical ones as strings; an estimator
    trained on, say, integer category codes would silently treat every served row as an
    unknown category.
    """
    rows = reference.head(_CHECK_ROWS)
    served = feature_frame(rows, classifier.model_cfg)
    try:
        typed = classifier.predict_proba(served)
    # The estimator is the user's code: whatever it raises, the import cannot go on.
    except Exception as error:
        raise ModelImportError(
            f"the estimator fails on the reference rows as Relearn serves them (numeric "
            f"features as floats, categorical ones as strings): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    columns = classifier.input_columns
    try:
        own = classifier.estimator.predict_proba(rows[columns])
    except Exception:  # the file's raw types need not suit it: nothing to compare
        return
    as_file = np.zeros_like(typed)
    as_file[:, class_positions(classifier.estimator, classifier.classes)] = own
    if not np.allclose(typed, classifier.calibration.apply(as_file), atol=1e-6):
        changed = [c for c in columns if rows[c].dtype != served[c].dtype]
        raise ModelImportError(
            "the estimator answers differently once features take the configured types "
            f"(numeric as floats, categorical as strings); columns whose type changes: "
            f"{changed}: configure each feature with the type the estimator was trained on"
        )


def _digest(frame: pd.DataFrame) -> str:
    """SHA-256 of the reference rows' content (the same definition as retraining datasets)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashes.tobytes()).hexdigest()
