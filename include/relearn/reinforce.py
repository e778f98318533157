"""Auto-reinforcement: learn from a window's high-confidence errors, gate, register.

The loop is five steps, each safe to run again (Airflow runs tasks at least once) and each
handing over only the run id; what a step needs lives in the ``model_retraining_runs`` row
(options, champion version, window end), its MLflow run (validation result, dataset
snapshot, candidate model) and the registry:

``start`` -> ``prepare`` -> ``train`` -> ``evaluate`` -> ``publish``; ``fail`` on any error.

The champion is never touched: a blessed candidate only gets the ``challenger`` alias, and
only after its run row is ``completed``.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relearn.registry import CHALLENGER, CHAMPION, alias_version, registry_client, tagged_run
from relearn.services import Services, experiment_name
from relearn.store import abtests, drift_reports, requests, runs
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.config import ModelConfig
    from relearn.data.dataset import RetrainingDataset
    from relearn.training.classifier import TabularClassifier

log = logging.getLogger(__name__)

RUN_TAG = "relearn.retraining_run_id"
CANDIDATE_TAG = "relearn.candidate_model_id"
DATASET_ARTIFACT = "dataset/snapshot.parquet"
VALIDATION_ARTIFACT = "validation/gx_result.json"
INSUFFICIENT_DATA = "insufficient data"
# Blessed challengers of these sources ask for an A/B test right away (drift hands over).
AB_TEST_SOURCES = ("drift_triggered", "decay_triggered")
ALIASED_KEY = "aliased"  # run-metrics key: publish moved the alias; a rerun must not again
_LINEAGE_SAMPLE_ROWS = 1000


class RetrainingError(RuntimeError):
    """A run cannot go on for a reason retrying will not fix (bad data, no champion)."""


@dataclass(frozen=True)
class ReinforceOptions:
    """Per-run options (DAG Params / CLI flags); unset ones come from the model's config."""

    lookback_days: int
    confidence_threshold: float
    min_error_samples: int
    fine_tune: bool
    epochs: int
    learning_rate: float
    replay_ratio: float
    dry_run: bool = False
    source: str = "auto_daily"
    request_id: str | None = None
    triggered_by: str | None = None
    drift_report_id: str | None = None

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, **overrides: Any) -> ReinforceOptions:
        """The model's configured defaults, with every non-None override applied."""
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}")
        rf, training = model_cfg.reinforcement, model_cfg.training
        values: dict[str, Any] = {
            "lookback_days": rf.lookback_days,
            "confidence_threshold": rf.confidence_threshold,
            "min_error_samples": rf.min_error_samples,
            "fine_tune": True,
            "epochs": training.epochs,
            "learning_rate": training.learning_rate,
            "replay_ratio": rf.replay_ratio,
        }
        values.update({k: v for k, v in overrides.items() if v is not None and v != ""})
        options = cls(**values)
        options.check()
        return options

    def check(self) -> None:
        if self.lookback_days < 1:
            raise ValueError("lookback_days must be at least 1")
        if not 0 <= self.confidence_threshold <= 1:
            raise ValueError("confidence_threshold must be within [0, 1]")
        if self.min_error_samples < 1 or self.epochs < 1:
            raise ValueError("min_error_samples and epochs must be at least 1")
        if not 0 < self.learning_rate <= 1:
            raise ValueError("learning_rate must be within (0, 1]")
        if self.replay_ratio < 0:
            raise ValueError("replay_ratio must not be negative")
        if self.source not in runs.SOURCES:
            raise ValueError(f"source must be one of {', '.join(runs.SOURCES)}")


def _now() -> datetime:
    return datetime.now(UTC)


def _options(run: runs.RetrainingRun) -> ReinforceOptions:
    known = {f.name for f in fields(ReinforceOptions)}
    return ReinforceOptions(**{k: v for k, v in run.params.items() if k in known})


def _get_run(services: Services, run_id: str) -> runs.RetrainingRun:
    with transaction(services.database_url) as connection:
        return runs.get_run(connection, run_id)


@contextmanager
def _mlflow_run(services: Services, mlflow_run_id: str) -> Iterator[None]:
    """Resume the retraining run's MLflow run for fluent logging (metrics, models, inputs)."""
    import mlflow

    mlflow.set_tracking_uri(services.tracking_uri)
    # The process may have another model's experiment active (bootstrap sets it), and
    # resuming a run of a different experiment would fail.
    run = registry_client(services.tracking_uri).get_run(mlflow_run_id)
    mlflow.set_experiment(experiment_id=run.info.experiment_id)
    with mlflow.start_run(run_id=mlflow_run_id):
        yield


def start(
    services: Services,
    model_cfg: ModelConfig,
    options: ReinforceOptions,
    *,
    run_key: str,
    now: datetime,
    dag_id: str | None = None,
) -> str:
    """Record the run as ``running`` (once per ``run_key``) and pin what it will work on."""
    champion = alias_version(registry_client(services.tracking_uri), model_cfg.name, CHAMPION)
    params = {
        **asdict(options),
        "champion_version": str(champion.version) if champion else None,
        "window_end": now.isoformat(),
    }
    with transaction(services.database_url) as connection:
        run = runs.start_run(
            connection,
            model_name=model_cfg.name,
            run_key=run_key,
            source=options.source,
            params=params,
            started_at=_now(),
            dag_id=dag_id,
            triggered_by=options.triggered_by,
            request_id=options.request_id,
        )
        if options.request_id:
            requests.link_run(connection, options.request_id, run.id)
        if options.drift_report_id:
            drift_reports.link_run(connection, options.drift_report_id, run.id)
    log.info(
        "%s retraining run %s is %s (source %s, champion v%s)",
        model_cfg.name,
        run.id,
        run.status,
        run.source,
        run.params.get("champion_version"),
    )
    return str(run.id)


def _ensure_mlflow_run(services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun) -> str:
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


def prepare(services: Services, model_cfg: ModelConfig, run_id: str) -> dict[str, Any]:
    """Load and validate the window, select the errors and snapshot the dataset.

    Returns ``{"status": "ready" | "insufficient" | "finished", ...}``; an unusable batch
    raises ``RetrainingError`` naming the problems and the stored GX result (the caller
    fails the run with that message).
    """
    from relearn.data.dataset import build_dataset, high_confidence_errors
    from relearn.data.window import load_window
    from relearn.validation import validate_window

    run = _get_run(services, run_id)
    if run.finished:
        return {"status": "finished", "run_status": run.status}
    if run.dataset_digest:
        return {"status": "ready", "dataset_digest": run.dataset_digest}
    options = _options(run)
    window_end = datetime.fromisoformat(run.params["window_end"])
    rf = model_cfg.reinforcement
    with transaction(services.database_url) as connection:
        window = load_window(
            connection,
            model_cfg,
            since=window_end - timedelta(days=options.lookback_days),
            until=window_end,
            confidence_threshold=options.confidence_threshold,
            replay_ratio=options.replay_ratio,
            holdout_fraction=rf.holdout_fraction,
            max_holdout_rows=rf.max_holdout_rows,
            seed=model_cfg.training.random_seed,
        )
    log.info("%s: loaded %d rows of the window ending %s", model_cfg.name, len(window), window_end)
    if window.empty:
        return _insufficient(services, model_cfg, run, errors=0, options=options)
    report = validate_window(window, model_cfg, now=_now(), raise_on_unusable=False)
    mlflow_run_id = _ensure_mlflow_run(services, model_cfg, run)
    client = registry_client(services.tracking_uri)
    client.log_dict(mlflow_run_id, report.result, VALIDATION_ARTIFACT)
    summary = report.summary()
    with transaction(services.database_url) as connection:
        runs.quarantine_rows(connection, run.id, _quarantined(report.quarantined))
        runs.merge_metrics(connection, run.id, {"data_validation": summary})
    if not report.usable:
        raise RetrainingError(
            "the window is unusable: "
            + "; ".join(report.problems)
            + f" (Great Expectations result: {VALIDATION_ARTIFACT} of MLflow run {mlflow_run_id})"
        )
    errors = len(high_confidence_errors(report.valid, options.confidence_threshold))
    if errors < options.min_error_samples:
        return _insufficient(services, model_cfg, run, errors=errors, options=options)
    dataset = build_dataset(
        report.valid,
        model_cfg,
        confidence_threshold=options.confidence_threshold,
        seed=model_cfg.training.random_seed,
    )
    _log_dataset(services, mlflow_run_id, dataset)
    sizes = dataset.sizes
    with transaction(services.database_url) as connection:
        runs.merge_metrics(connection, run.id, {"errors": errors, "dataset": sizes})
        runs.update_run(
            connection,
            run.id,
            dataset_digest=dataset.digest,
            dataset_size=sizes["train"] + sizes["validation"],
        )
    return {"status": "ready", "dataset_digest": dataset.digest, "errors": errors}


def _insufficient(
    services: Services,
    model_cfg: ModelConfig,
    run: runs.RetrainingRun,
    *,
    errors: int,
    options: ReinforceOptions,
) -> dict[str, Any]:
    """Too few lessons is not a failure: complete the run and leave everything else alone."""
    metrics = {
        "outcome": INSUFFICIENT_DATA,
        "errors": errors,
        "min_error_samples": options.min_error_samples,
    }
    with transaction(services.database_url) as connection:
        runs.complete_run(connection, run.id, completed_at=_now(), metrics=metrics)
    log.info(
        "%s: %d high-confidence errors < %d: insufficient data, nothing to learn",
        model_cfg.name,
        errors,
        options.min_error_samples,
    )
    return {"status": "insufficient", "errors": errors}


def _quarantined(frame: Any) -> list[tuple[str, list[str], dict]]:
    rows = frame.drop(columns=["reasons"]).to_dict(orient="records")
    return [
        (str(row["prediction_id"]), list(reasons), row)
        for row, reasons in zip(rows, frame["reasons"], strict=True)
    ]


def _log_dataset(services: Services, mlflow_run_id: str, dataset: RetrainingDataset) -> None:
    import mlflow
    import mlflow.data

    with tempfile.TemporaryDirectory() as tmp:
        path = dataset.save(Path(tmp) / Path(DATASET_ARTIFACT).name)
        registry_client(services.tracking_uri).log_artifact(
            mlflow_run_id, str(path), str(Path(DATASET_ARTIFACT).parent)
        )
    name = dataset.model_cfg.name
    with _mlflow_run(services, mlflow_run_id):
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


def _load_dataset(services: Services, model_cfg: ModelConfig, mlflow_run_id: str, tmp: str):
    from relearn.data.dataset import RetrainingDataset

    client = registry_client(services.tracking_uri)
    path = client.download_artifacts(mlflow_run_id, DATASET_ARTIFACT, tmp)
    return RetrainingDataset.load(Path(path), model_cfg)


def load_registered_classifier(tracking_uri: str, model_uri: str) -> TabularClassifier:
    """The ``TabularClassifier`` inside a logged Relearn pyfunc model."""
    from relearn.registry import load_pyfunc

    return load_pyfunc(tracking_uri, model_uri).unwrap_python_model().classifier


def train(services: Services, model_cfg: ModelConfig, run_id: str) -> dict[str, Any]:
    """Fine-tune the pinned champion (or train from scratch) and log the candidate model."""
    import mlflow

    from relearn.evaluation import confusion
    from relearn.registry import model_uri
    from relearn.training.factory import new_classifier
    from relearn.training.pyfunc import log_pyfunc_model
    from relearn.training.reports import confusion_matrix_png, training_curve_png

    run = _get_run(services, run_id)
    if run.finished:
        return {"status": "finished", "run_status": run.status}
    client = registry_client(services.tracking_uri)
    tags = client.get_run(run.mlflow_run_id).data.tags
    if CANDIDATE_TAG in tags:
        log.info("%s: candidate %s already trained", model_cfg.name, tags[CANDIDATE_TAG])
        return {"status": "trained", "candidate_model_id": tags[CANDIDATE_TAG]}
    options = _options(run)
    champion_version = run.params.get("champion_version")
    if options.fine_tune and champion_version is None:
        raise RetrainingError(
            f"'{model_cfg.name}' has no champion to fine-tune: run `relearn bootstrap` "
            "or set fine_tune=false to train from scratch"
        )
    with tempfile.TemporaryDirectory() as tmp:
        dataset = _load_dataset(services, model_cfg, run.mlflow_run_id, tmp)
        if options.fine_tune:
            uri = model_uri(model_cfg.name, champion_version)
            classifier = load_registered_classifier(services.tracking_uri, uri)
            learning_rate = options.learning_rate * model_cfg.training.fine_tune_lr_factor
        else:
            classifier = new_classifier(model_cfg)
            learning_rate = options.learning_rate
        history = classifier.fit(
            dataset.features("train"),
            dataset.labels("train"),
            val_frame=dataset.features("validation"),
            val_labels=dataset.labels("validation"),
            epochs=options.epochs,
            learning_rate=learning_rate,
        )
        val_pred = classifier.predict_proba(dataset.features("validation")).argmax(axis=1)
        matrix = confusion(
            dataset.labels("validation"),
            [model_cfg.classes[i] for i in val_pred],
            model_cfg.classes,
        )
        with _mlflow_run(services, run.mlflow_run_id):
            mlflow.log_params(
                {
                    "fine_tune": options.fine_tune,
                    "learning_rate": learning_rate,
                    "epochs": options.epochs,
                }
            )
            for epoch in history.epochs:
                metrics = {k: v for k, v in epoch.items() if k != "epoch"}
                mlflow.log_metrics(metrics, step=int(epoch["epoch"]))
            mlflow.log_artifact(str(training_curve_png(history, Path(tmp) / "training_curve.png")))
            mlflow.log_artifact(
                str(
                    confusion_matrix_png(
                        matrix, model_cfg.classes, Path(tmp) / "confusion_validation.png"
                    )
                )
            )
            info = log_pyfunc_model(classifier, model_cfg)
            mlflow.set_tag(CANDIDATE_TAG, info.model_id)
    training = {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch}
    with transaction(services.database_url) as connection:
        runs.merge_metrics(
            connection, run.id, {"training": {**training, "history": history.epochs}}
        )
    log.info("%s: candidate %s trained (%s)", model_cfg.name, info.model_id, training)
    return {"status": "trained", "candidate_model_id": info.model_id}


def evaluate(services: Services, model_cfg: ModelConfig, run_id: str) -> dict[str, Any]:
    """Gate the candidate against absolute bars and the champion on the same holdout."""
    import mlflow

    from relearn.drift.reference import log_profile
    from relearn.evaluation import classification_metrics, flat_metrics
    from relearn.gates import decide
    from relearn.registry import model_uri

    run = _get_run(services, run_id)
    if run.finished:
        return {"status": "finished", "run_status": run.status}
    options = _options(run)
    client = registry_client(services.tracking_uri)
    candidate_id = client.get_run(run.mlflow_run_id).data.tags[CANDIDATE_TAG]
    with tempfile.TemporaryDirectory() as tmp:
        dataset = _load_dataset(services, model_cfg, run.mlflow_run_id, tmp)
    holdout, truth = dataset.features("holdout"), dataset.labels("holdout")
    if not truth:
        raise RetrainingError("the holdout is empty: the window has too few labelled rows")
    candidate = load_registered_classifier(services.tracking_uri, f"models:/{candidate_id}")
    probabilities = candidate.predict_proba(holdout)
    metrics = classification_metrics(truth, probabilities, model_cfg.classes)
    champion_metrics = None
    if run.params.get("champion_version"):
        champion = load_registered_classifier(
            services.tracking_uri, model_uri(model_cfg.name, run.params["champion_version"])
        )
        champion_metrics = classification_metrics(
            truth, champion.predict_proba(holdout), model_cfg.classes
        )
    decision = decide(metrics, champion_metrics, model_cfg.gates)
    with _mlflow_run(services, run.mlflow_run_id):
        mlflow.log_metrics(flat_metrics(metrics, prefix="holdout_"))
        if champion_metrics:
            mlflow.log_metrics(flat_metrics(champion_metrics, prefix="champion_holdout_"))
        mlflow.log_dict(decision.as_dict(), "gate.json")
        # The holdout is recent traffic the candidate never trained on: its drift reference.
        log_profile(model_cfg, holdout, probabilities, metrics["accuracy"])
        mlflow.set_tag("relearn.gate", "blessed" if decision.blessed else "rejected")
    results = {"holdout": metrics, "champion_holdout": champion_metrics, "gate": decision.as_dict()}
    with transaction(services.database_url) as connection:
        runs.merge_metrics(connection, run.id, results)
        if options.dry_run:
            runs.complete_run(connection, run.id, completed_at=_now(), metrics={"dry_run": True})
    log.info(
        "%s: candidate %s: %s",
        model_cfg.name,
        "blessed" if decision.blessed else "rejected",
        "; ".join(decision.reasons) or "every gate passed",
    )
    return {"status": "evaluated", "blessed": decision.blessed, "dry_run": options.dry_run}


def publish(
    services: Services, model_cfg: ModelConfig, run_id: str, *, dag_run_id: str | None = None
) -> dict[str, Any]:
    """Register the candidate, complete the run, then (if blessed) alias it ``challenger``.

    In that order, so an alias never points at a version whose run is not ``completed``; a
    retry after a crash finds the version it registered and sets the alias it missed.
    """
    from relearn.registry import register_version

    run = _get_run(services, run_id)
    if run.status == runs.FAILED:
        raise RetrainingError(f"run {run_id} failed: {run.error_message}")
    if run.status == runs.COMPLETED and run.model_version is None:
        return {"status": "finished", "run_status": run.status, "blessed": False}
    gate = (run.metrics or {}).get("gate") or {}
    blessed = bool(gate.get("blessed"))
    if run.status == runs.COMPLETED and (not blessed or (run.metrics or {}).get(ALIASED_KEY)):
        # Fully published before: the alias may have moved on since, so leave it alone.
        return {
            "status": "finished",
            "model": model_cfg.name,
            "version": run.model_version,
            "blessed": blessed,
        }
    client = registry_client(services.tracking_uri)
    tags = client.get_run(run.mlflow_run_id).data.tags
    version = register_version(
        client,
        model_cfg.name,
        tags[CANDIDATE_TAG],
        run_id=run.mlflow_run_id,
        key_tag=RUN_TAG,
        tags={
            RUN_TAG: str(run.id),
            "relearn.source": run.source,
            "relearn.dag_run_id": dag_run_id or run.dag_run_id or "",
            "relearn.dataset_digest": run.dataset_digest or "",
            "relearn.gate": "blessed" if blessed else "rejected",
            "relearn.parent_version": run.params.get("champion_version") or "",
            "relearn.reference_accuracy": f"{run.metrics['holdout']['accuracy']:.6f}",
        },
    )
    with transaction(services.database_url) as connection:
        runs.complete_run(
            connection, run.id, completed_at=_now(), metrics={}, model_version=version
        )
    aliased = _alias_challenger(services, model_cfg, run, version) if blessed else None
    log.info(
        "%s v%s registered%s",
        model_cfg.name,
        version,
        f" ({aliased})" if blessed else " (not blessed: no alias)",
    )
    return {"status": "published", "model": model_cfg.name, "version": version, "blessed": blessed}


def _alias_challenger(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, version: str
) -> str:
    """Alias a blessed version ``challenger`` unless an A/B test is serving the current one.

    Drift- and decay-triggered versions also get a pending A/B test. Under the model's
    deployment lock (no test starts meanwhile); recorded in the run's metrics, so a rerun of a
    published run never moves the alias again.
    """
    from relearn.abtest.aliases import move_aliases
    from relearn.store.locks import model_lock

    name = model_cfg.name
    with model_lock(services.database_url, name):
        with transaction(services.database_url) as connection:
            serving = abtests.live_test(connection, name, abtests.ACTIVE)
        if serving is not None:
            outcome = f"not aliased: A/B test {serving.id} of v{serving.challenger_version} is live"
        else:
            move_aliases(
                services,
                name,
                [(CHALLENGER, version)],
                reason=f"blessed by {run.source} retraining run {run.id}",
                changed_by="retraining",
            )
            outcome = "aliased challenger"
        with transaction(services.database_url) as connection:
            if run.source in AB_TEST_SOURCES:
                test = abtests.request_test(
                    connection,
                    model_name=name,
                    champion_version=run.params.get("champion_version"),
                    challenger_version=version,
                    stages=model_cfg.abtest.stages,
                    retraining_run_id=run.id,
                    reason=f"{run.source} retraining run {run.id}",
                )
                outcome += f", A/B test {test.id} requested"
            runs.merge_metrics(connection, run.id, {ALIASED_KEY: outcome})
    return outcome


def fail(services: Services, run_id: str, error: BaseException | str) -> bool:
    """Mark a running run failed with a readable reason; False if it had already finished."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with transaction(services.database_url) as connection:
        failed = runs.fail_run(connection, run_id, completed_at=_now(), error=message)
    if failed:
        log.error("retraining run %s failed: %s", run_id, message)
    return failed


def finish_request(services: Services, request_id: str, run_id: str | None) -> str:
    """Close a manual request after its run: ``completed`` or ``failed`` as the run ended.

    A run that never started (its first task failed) fails the request too; returns the
    request's final status.
    """
    with transaction(services.database_url) as connection:
        run = runs.get_run(connection, run_id) if run_id else None
        if run is not None and run.status == runs.COMPLETED:
            requests.finish_request(connection, request_id, status="completed")
        else:
            reason = run.error_message if run is not None else "the retraining run did not start"
            requests.finish_request(
                connection, request_id, status="failed", error_message=reason or run.status
            )
        final = requests.get_request(connection, request_id)
    log.info("request %s is %s (run %s)", request_id, final.status, run_id)
    return final.status


def reinforce(
    services: Services,
    model_cfg: ModelConfig,
    options: ReinforceOptions,
    *,
    run_key: str,
    now: datetime | None = None,
) -> runs.RetrainingRun:
    """The whole loop in one process (the CLI, the bench); returns the finished run row."""
    run_id = start(services, model_cfg, options, run_key=run_key, now=now or _now())
    try:
        for step in (prepare, train, evaluate):
            if step(services, model_cfg, run_id)["status"] in ("insufficient", "finished"):
                break
        else:
            if not options.dry_run:
                publish(services, model_cfg, run_id)
    except Exception as error:
        fail(services, run_id, error)
        raise
    return _get_run(services, run_id)
