"""The retraining run's MLflow side: its run, the dataset snapshot and the logged models.

A retraining run owns one MLflow run, found again by the ``RUN_TAG`` tag (the retraining run
id), so every step and retry logs to the same place; the dataset is snapshot there once and
downloaded by the steps that need it.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.data

from relearn.data.dataset import RetrainingDataset
from relearn.registry import load_pyfunc, registry_client, tagged_run
from relearn.retraining import RetrainingError
from relearn.services import experiment_name
from relearn.store import runs
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from relearn.config import ModelConfig
    from relearn.services import Services
    from relearn.training.classifier import TabularClassifier

RUN_TAG = "relearn.retraining_run_id"
CANDIDATE_TAG = "relearn.candidate_model_id"
DATASET_ARTIFACT = "dataset/snapshot.parquet"
VALIDATION_ARTIFACT = "validation/gx_result.json"
_LINEAGE_SAMPLE_ROWS = 1000


@contextmanager
def mlflow_run(services: Services, mlflow_run_id: str) -> Iterator[None]:
    """Resume the retraining run's MLflow run for fluent logging (metrics, models, inputs)."""
    mlflow.set_tracking_uri(services.tracking_uri)
    # The process may have another model's experiment active (bootstrap sets it), and
    # resuming a run of a different experiment would fail.
    run = registry_client(services.tracking_uri).get_run(mlflow_run_id)
    mlflow.set_experiment(experiment_id=run.info.experiment_id)
    with mlflow.start_run(run_id=mlflow_run_id):
        yield


def ensure_mlflow_run(services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun) -> str:
    """The MLflow run of this retraining run, created on first use (found again by tag)."""
    if run.mlflow_run_id:
        return run.mlflow_run_id
    client = registry_client(services.tracking_uri)
    experiment_id, mlflow_run_id, created = tagged_run(
        client,
        experiment_name(model_cfg.name),
        RUN_TAG,
        {RUN_TAG: str(run.id), "relearn.model": model_cfg.name, "relearn.source": run.source},
        run_name=f"{model_cfg.name}-{run.source}-{str(run.id)[:8]}",
    )
    if created:
        client.log_dict(mlflow_run_id, run.params, "params.json")
    with transaction(services.database_url) as connection:
        runs.update_run(
            connection,
            run.id,
            mlflow_run_id=mlflow_run_id,
            log_url=f"{services.tracking_uri}/#/experiments/{experiment_id}/runs/{mlflow_run_id}",
        )
    return mlflow_run_id


def log_dataset(services: Services, mlflow_run_id: str, dataset: RetrainingDataset) -> None:
    """Snapshot the dataset as an artifact and record it as the run's training input."""
    with tempfile.TemporaryDirectory() as tmp:
        path = dataset.save(Path(tmp) / Path(DATASET_ARTIFACT).name)
        registry_client(services.tracking_uri).log_artifact(
            mlflow_run_id, str(path), str(Path(DATASET_ARTIFACT).parent)
        )
    name = dataset.model_cfg.name
    with mlflow_run(services, mlflow_run_id):
        # MLflow infers the schema cell by cell in Python (seconds for 200k rows): a sample
        # gives the same schema; the digest names the full snapshot logged in this run.
        source = mlflow.data.from_pandas(
            dataset.frame.head(_LINEAGE_SAMPLE_ROWS),
            name=f"{name}-retraining",
            targets=dataset.model_cfg.label,
            digest=dataset.digest[:36],
        )
        mlflow.log_input(source, context="training")
        mlflow.set_tag("relearn.dataset_digest", dataset.digest)


def load_dataset(
    services: Services,
    model_cfg: ModelConfig,
    mlflow_run_id: str,
    tmp: str,
    *,
    splits: Sequence[str] | None = None,
) -> RetrainingDataset:
    """The dataset snapshot of the run, downloaded into ``tmp`` (only ``splits``' rows and the
    model's columns when given: see ``RetrainingDataset.load``)."""
    client = registry_client(services.tracking_uri)
    path = client.download_artifacts(mlflow_run_id, DATASET_ARTIFACT, tmp)
    return RetrainingDataset.load(Path(path), model_cfg, splits=splits)


def candidate_model_id(services: Services, run: runs.RetrainingRun) -> str | None:
    """The logged model ``train`` made for the run (a tag of its MLflow run), if any."""
    tags = registry_client(services.tracking_uri).get_run(run.mlflow_run_id).data.tags
    return tags.get(CANDIDATE_TAG)


def required_candidate(services: Services, run: runs.RetrainingRun) -> str:
    """The candidate of a run that must have one (evaluate, publish come after train)."""
    candidate_id = candidate_model_id(services, run)
    if candidate_id is None:
        raise RetrainingError(f"retraining run {run.id} has no candidate: train must run first")
    return candidate_id


def load_registered_classifier(tracking_uri: str, model_uri: str) -> TabularClassifier:
    """The ``TabularClassifier`` inside a logged Relearn pyfunc model."""
    return load_pyfunc(tracking_uri, model_uri).unwrap_python_model().classifier
