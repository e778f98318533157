"""Train model v1 on reference data, register it in MLflow as ``champion``.

The reference is the user's labelled dataset file (``dataset_reference``) or, for the demo
models only, their simulated world (``simulated_reference``); a model with neither is an
error, never a champion trained on invented data.

Idempotent: a model that already has a champion is left alone, and a crash between
registering and aliasing is finished on the next run instead of registering a second v1.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.data
import pandas as pd

from relearn.abtest.aliases import set_first_champion
from relearn.drift.reference import log_profile
from relearn.evaluation import classification_metrics, flat_metrics
from relearn.gates import decide
from relearn.onboarding.dataset import read_sample
from relearn.onboarding.split import Split, stratified_split, time_ordered_split
from relearn.registry import CHAMPION, alias_version, registry_client
from relearn.services import experiment_name
from relearn.simulate.world import World
from relearn.training.factory import new_classifier
from relearn.training.pyfunc import log_pyfunc_model

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow.data.pandas_dataset import PandasDataset

    from relearn.config import ModelConfig
    from relearn.services import Services
    from relearn.training.classifier import TabularClassifier, TrainingHistory

log = logging.getLogger(__name__)

BOOTSTRAP_TAG = "relearn.bootstrap"
REFERENCE_ARTIFACT = "reference/reference.parquet"
# MLflow infers a dataset's schema cell by cell: a head of a large sample gives the same one.
_LINEAGE_SAMPLE_ROWS = 1000


class NoTrainingDataError(ValueError):
    """A model without a champion, a dataset or a simulated world: nothing to train v1 on."""

    def __init__(self, model_name: str) -> None:
        super().__init__(
            f"model '{model_name}' has no champion and no data to train one: pass "
            f"`relearn bootstrap --model {model_name} --dataset FILE` (its labelled history, "
            "CSV or Parquet) or `--from-mlflow URI` (a model you already have)"
        )


@dataclass(frozen=True)
class BootstrapResult:
    model_name: str
    version: str
    created: bool
    metrics: dict


@dataclass(frozen=True)
class Reference:
    """The rows v1 learns from, split, and where they came from (the version's lineage).

    ``digest`` names the source (a file's SHA-256); None: the rows themselves are the source.
    """

    split: Split
    source: str
    rows: int
    digest: str | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """Every sampled row: what the version's drift profile describes."""
        return pd.concat([self.split.train, self.split.validation, self.split.holdout])


@dataclass(frozen=True)
class TrainedV1:
    classifier: TabularClassifier
    history: TrainingHistory
    metrics: dict


def simulated_reference(model_cfg: ModelConfig) -> Reference:
    """A demo model's rows, drawn from its simulated world."""
    if model_cfg.simulation is None:
        raise NoTrainingDataError(model_cfg.name)
    frame = World(model_cfg).reference_frame(model_cfg.training.reference_rows)
    split = stratified_split(frame, model_cfg.label, model_cfg.training.random_seed)
    return Reference(split, source="simulation", rows=len(frame))


def dataset_reference(model_cfg: ModelConfig, path: Path) -> Reference:
    """The user's labelled file: every row checked, a bounded sample split for training.

    With a time column the split follows time (train on the past, judge on the most recent
    rows); otherwise it is stratified by class.
    """
    training = model_cfg.training
    sample = read_sample(path, model_cfg, training.max_dataset_rows, training.random_seed)
    if model_cfg.time_column is not None:
        split = time_ordered_split(sample.frame, model_cfg.time_column)
    else:
        split = stratified_split(sample.frame, model_cfg.label, training.random_seed)
    log.info(
        "%s: %d rows in %s, training on a sample of %d (%s split)",
        model_cfg.name,
        sample.rows,
        path,
        len(sample.frame),
        "time-ordered" if model_cfg.time_column else "stratified",
    )
    return Reference(split, source=str(path.resolve()), rows=sample.rows, digest=sample.digest)


def existing_champion(services: Services, model_cfg: ModelConfig) -> BootstrapResult | None:
    """The model's champion if it has one (finishing an interrupted bootstrap), else None."""
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
        set_first_champion(services, name, version, reason="bootstrap v1 (interrupted, finished)")
        return BootstrapResult(name, version, created=False, metrics={})
    return None


def bootstrap_model(
    services: Services,
    model_cfg: ModelConfig,
    reference: Callable[[], Reference] | None = None,
) -> BootstrapResult:
    """Make sure ``model_cfg.name`` has a champion; train and register v1 if it has none.

    ``reference`` supplies v1's rows (called only when v1 must be trained); by default the
    model's simulated world, and a model without one is a ``NoTrainingDataError``.
    """
    existing = existing_champion(services, model_cfg)
    if existing is not None:
        return existing
    rows = reference() if reference is not None else simulated_reference(model_cfg)
    return _register(services, model_cfg, rows, train_v1(model_cfg, rows))


def train_v1(model_cfg: ModelConfig, reference: Reference) -> TrainedV1:
    """Fit a new classifier of the model's kind; metrics on the holdout."""
    features, label = model_cfg.feature_names, model_cfg.label
    train, val, holdout = reference.split.train, reference.split.validation, reference.split.holdout
    classifier = new_classifier(model_cfg)
    log.info("training %s v1 (%s) on %d rows", model_cfg.name, model_cfg.kind, len(train))
    history = classifier.fit(
        train[features],
        train[label].tolist(),
        val_frame=val[features],
        val_labels=val[label].tolist(),
    )
    metrics = classification_metrics(
        holdout[label].tolist(), classifier.predict_proba(holdout[features]), model_cfg.classes
    )
    return TrainedV1(classifier, history, metrics)


def _register(
    services: Services, model_cfg: ModelConfig, reference: Reference, trained: TrainedV1
) -> BootstrapResult:
    name, features = model_cfg.name, model_cfg.feature_names
    metrics = trained.metrics
    frame = reference.frame
    mlflow.set_tracking_uri(services.tracking_uri)
    mlflow.set_experiment(experiment_name(name))
    with mlflow.start_run(run_name=f"{name}-bootstrap-v1") as run:
        mlflow.set_tags({BOOTSTRAP_TAG: "true", "relearn.model": name})
        mlflow.log_params(
            {
                "kind": model_cfg.kind.value,
                "source": reference.source,
                "rows": reference.rows,
                "sampled_rows": len(frame),
                "seed": model_cfg.training.random_seed,
            }
        )
        for epoch in trained.history.epochs:
            step = int(epoch["epoch"])
            mlflow.log_metrics({k: v for k, v in epoch.items() if k != "epoch"}, step=step)
        mlflow.log_metrics(flat_metrics(metrics, prefix="holdout_"))
        dataset = _lineage(model_cfg, reference, frame)
        mlflow.log_input(dataset, context="training")
        mlflow.set_tag("relearn.dataset_digest", reference.digest or dataset.digest)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.parquet"
            frame.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        # Drift checks compare production with all reference rows, as this version saw them.
        log_profile(
            model_cfg,
            frame[features],
            trained.classifier.predict_proba(frame[features]),
            metrics["accuracy"],
            predict=trained.classifier.predict_proba,
        )
        info = log_pyfunc_model(trained.classifier, model_cfg, registered_model_name=name)
    version = str(info.registered_model_version)
    client = registry_client(services.tracking_uri)
    client.set_model_version_tag(name, version, BOOTSTRAP_TAG, "true")
    client.set_model_version_tag(
        name, version, "relearn.reference_accuracy", f"{metrics['accuracy']:.6f}"
    )
    client.set_model_version_tag(
        name, version, "relearn.dataset_digest", reference.digest or dataset.digest
    )
    set_first_champion(
        services,
        name,
        version,
        reason=f"bootstrap v1 from {reference.source}: holdout F1 {metrics['f1_macro']:.3f}",
    )
    log.info(
        "registered %s v%s (run %s) as champion: accuracy %.3f, F1 %.3f",
        name,
        version,
        run.info.run_id,
        metrics["accuracy"],
        metrics["f1_macro"],
    )
    below = decide(metrics, None, model_cfg.gates).reasons
    if below:
        log.warning(
            "%s v%s is below the gates' absolute bars (%s): it is champion because the model "
            "needs one; check the data, or set the model's `gates` to what it can reach",
            name,
            version,
            ", ".join(below),
        )
    return BootstrapResult(name, version, created=True, metrics=metrics)


def _lineage(model_cfg: ModelConfig, reference: Reference, frame: pd.DataFrame) -> PandasDataset:
    """The MLflow dataset of v1's rows. For a file, a head of the rows gives the schema (MLflow
    infers it cell by cell) and the file's digest names the data, as retraining does."""
    name = f"{model_cfg.name}-reference"
    if reference.digest is None:
        return mlflow.data.from_pandas(frame, name=name, targets=model_cfg.label)
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and warns that a path "can be
        # interpreted in multiple ways" (both are the same class): noise in every bootstrap.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        return mlflow.data.from_pandas(
            frame.head(_LINEAGE_SAMPLE_ROWS),
            name=name,
            source=reference.source,
            targets=model_cfg.label,
            digest=reference.digest[:36],
        )
