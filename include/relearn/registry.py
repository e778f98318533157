"""The MLflow model registry as Relearn uses it: aliases are the deployment truth."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow.artifacts
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
# On a version whose model files retention removed (when, why): listed, never served again.
ARCHIVED_TAG = "relearn.archived"
# The holdout macro-F1 each way of making a version records in its MLflow run: bootstrap and
# retraining measure it on their holdout, an import on the reference rows it was given.
_F1_METRICS = ("holdout_f1_macro", "reference_f1_macro")


def registry_client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def model_uri(name: str, version: str | int) -> str:
    """Pin a version (not an alias) so a process keeps serving what it loaded."""
    return f"models:/{name}/{version}"


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """``{alias: version}`` of a registered model; empty when the model is not registered."""
    try:
        return dict(client.get_registered_model(name).aliases)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    version = aliases(client, name).get(alias)
    return client.get_model_version(name, version) if version else None


def list_versions(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """Every version of a model with its aliases, oldest first."""
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases(client, name).items():
        by_version.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    return [
        {
            "name": name,
            "version": int(v.version),
            "aliases": sorted(by_version.get(str(v.version), [])),
            "run_id": v.run_id,
            "tags": dict(v.tags),
        }
        for v in sorted(versions, key=lambda v: int(v.version))
    ]


def recorded_f1(client: MlflowClient, run_id: str | None) -> float | None:
    """The holdout macro-F1 recorded for a version (by its MLflow run); None when none was."""
    if not run_id:
        return None
    try:
        metrics = client.get_run(run_id).data.metrics
    except MlflowException:
        return None
    return next((metrics[key] for key in _F1_METRICS if key in metrics), None)


@dataclass(frozen=True)
class RollbackChoice:
    version: str
    f1: float
    reason: str  # why this version, for the alias history


def rollback_choice(
    client: MlflowClient, name: str, *, before: int | None, min_f1: float | None
) -> RollbackChoice | None:
    """The version to roll back to by recorded holdout F1, among the versions before
    ``before`` (the champion; None: all) that still have their files.

    With ``min_f1``: the most recent one meeting the bar; without: the best (the most recent
    of equals). None when no version qualifies.
    """
    scored = []
    for version in list_versions(client, name):
        if (before is not None and version["version"] >= before) or ARCHIVED_TAG in version["tags"]:
            continue
        f1 = recorded_f1(client, version["run_id"])
        if f1 is not None and (min_f1 is None or f1 >= min_f1):
            scored.append((version["version"], f1))
    if not scored:
        return None
    if min_f1 is None:
        number, f1 = max(scored, key=lambda item: (item[1], item[0]))
        why = f"the best recorded holdout F1 ({f1:.3f}) of the earlier versions"
    else:
        number, f1 = max(scored)
        why = f"the most recent earlier version with holdout F1 {f1:.3f} >= {min_f1:g}"
    return RollbackChoice(str(number), f1, f"rollback to v{number}: {why}")


def tagged_run(
    client: MlflowClient, experiment: str, key_tag: str, tags: dict[str, str], run_name: str
) -> tuple[str, str, bool]:
    """The run of ``experiment`` whose ``key_tag`` equals ``tags[key_tag]``, created if none.

    Lets a retried step find the MLflow run its first attempt made instead of making another.
    Returns ``(experiment_id, run_id, created)``.
    """
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{key_tag}` = '{tags[key_tag]}'"
    )
    if runs:
        return experiment_id, runs[0].info.run_id, False
    run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
    return experiment_id, run_id, True


def find_version_by_tag(client: MlflowClient, name: str, tag: str, value: str) -> str | None:
    """The version of ``name`` carrying ``tag = value`` (how retries find their own work)."""
    found = client.search_model_versions(f"name = '{name}' and tag.`{tag}` = '{value}'")
    return str(min(int(v.version) for v in found)) if found else None


def register_version(
    client: MlflowClient,
    name: str,
    model_id: str,
    *,
    run_id: str,
    tags: dict[str, str],
    key_tag: str,
) -> str:
    """Register the logged model ``model_id`` as a new version of ``name``, once per
    ``tags[key_tag]``.

    A retry after a crash finds the version registered by the first attempt instead of
    creating a second one.
    """
    existing = find_version_by_tag(client, name, key_tag, tags[key_tag])
    if existing is not None:
        return existing
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name, f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
    )
    return str(version.version)


def load_pyfunc(tracking_uri: str, uri: str) -> Any:
    """Load ``models:/<name>/<version>`` or ``models:/<model_id>`` from this tracking server.

    ``mlflow.pyfunc.load_model`` resolves ``models:/`` URIs against the process-wide
    tracking URI (a local ``mlflow.db`` unless someone set it), so resolve and download
    explicitly. Relearn's pyfunc model reads its files in ``load_context``, so the download
    can go once the model is loaded.
    """
    client = registry_client(tracking_uri)
    parts = uri.removeprefix("models:/").split("/")
    if len(parts) == 2:
        source = client.get_model_version_download_uri(parts[0], parts[1])
    else:
        source = client.get_logged_model(parts[0]).artifact_location
    with tempfile.TemporaryDirectory(prefix="relearn-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri
        )
        return mlflow.pyfunc.load_model(local)
