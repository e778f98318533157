"""Train model v1 on reference data, register it in MLflow as ``champion``.

Idempotent: a model that already has a champion is left alone, and a crash between
registering and aliasing is finished on the next run instead of registering a second v1.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.data
from sklearn.model_selection import train_test_split

from relearn.drift.reference import log_profile
from relearn.evaluation import classification_metrics, flat_metrics
from relearn.registry import CHAMPION, alias_version, registry_client
from relearn.services import experiment_name
from relearn.simulate.world import World
from relearn.training.factory import new_classifier
from relearn.training.pyfunc import log_pyfunc_model

if TYPE_CHECKING:
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

BOOTSTRAP_TAG = "relearn.bootstrap"
REFERENCE_ARTIFACT = "reference/reference.parquet"


@dataclass(frozen=True)
class BootstrapResult:
    model_name: str
    version: str
    created: bool
    metrics: dict


def _split(frame: pd.DataFrame, label: str, seed: int) -> tuple[pd.DataFrame, ...]:
    train, rest = train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame[label])
    val, holdout = train_test_split(rest, test_size=0.5, random_state=seed, stratify=rest[label])
    return train, val, holdout


def bootstrap_model(services: Services, model_cfg: ModelConfig) -> BootstrapResult:
    """Make sure ``model_cfg.name`` has a champion; train and register v1 if it has none."""
    client = registry_client(services.tracking_uri)
    name = model_cfg.name
    champion = alias_version(client, name, CHAMPION)
    if champion is not None:
        log.info("%s already has champion v%s; nothing to do", name, champion.version)
        return BootstrapResult(name, str(champion.version), created=False, metrics={})
    orphan = client.search_model_versions(f"name = '{name}' and tag.`{BOOTSTRAP_TAG}` = 'true'")
    if orphan:
        version = str(min(int(v.version) for v in orphan))
        log.info("finishing an interrupted bootstrap: aliasing %s v%s as champion", name, version)
        client.set_registered_model_alias(name, CHAMPION, version)
        return BootstrapResult(name, version, created=False, metrics={})

    seed = model_cfg.training.random_seed
    reference = World(model_cfg).reference_frame(model_cfg.training.reference_rows)
    train, val, holdout = _split(reference, model_cfg.label, seed)
    features = model_cfg.feature_names
    classifier = new_classifier(model_cfg)
    log.info("training %s v1 (%s) on %d reference rows", name, model_cfg.kind, len(train))
    history = classifier.fit(
        train[features],
        train[model_cfg.label].tolist(),
        val_frame=val[features],
        val_labels=val[model_cfg.label].tolist(),
    )
    metrics = classification_metrics(
        holdout[model_cfg.label].tolist(),
        classifier.predict_proba(holdout[features]),
        model_cfg.classes,
    )

    mlflow.set_tracking_uri(services.tracking_uri)
    mlflow.set_experiment(experiment_name(name))
    with mlflow.start_run(run_name=f"{name}-bootstrap-v1") as run:
        mlflow.set_tags({BOOTSTRAP_TAG: "true", "relearn.model": name})
        mlflow.log_params({"kind": model_cfg.kind.value, "rows": len(reference), "seed": seed})
        for epoch in history.epochs:
            step = int(epoch["epoch"])
            mlflow.log_metrics({k: v for k, v in epoch.items() if k != "epoch"}, step=step)
        mlflow.log_metrics(flat_metrics(metrics, prefix="holdout_"))
        dataset = mlflow.data.from_pandas(
            reference, name=f"{name}-reference", targets=model_cfg.label
        )
        mlflow.log_input(dataset, context="training")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.parquet"
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        # Drift checks compare production with all reference rows, as this version saw them.
        log_profile(
            model_cfg,
            reference[features],
            classifier.predict_proba(reference[features]),
            metrics["accuracy"],
        )
        info = log_pyfunc_model(classifier, model_cfg, registered_model_name=name)
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, BOOTSTRAP_TAG, "true")
    client.set_model_version_tag(
        name, version, "relearn.reference_accuracy", f"{metrics['accuracy']:.6f}"
    )
    client.set_model_version_tag(name, version, "relearn.dataset_digest", dataset.digest)
    client.set_registered_model_alias(name, CHAMPION, version)
    log.info(
        "registered %s v%s (run %s) as champion: accuracy %.3f, F1 %.3f",
        name,
        version,
        run.info.run_id,
        metrics["accuracy"],
        metrics["f1_macro"],
    )
    return BootstrapResult(name, version, created=True, metrics=metrics)
