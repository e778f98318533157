"""A retraining run's log lines, kept with its MLflow run so a user can open them later.

Task logs live where Airflow keeps them (a worker's disk, a remote log store) and CLI output
scrolls away; the MLflow run is where a user already looks at a run's metrics and models. Each
step (or the CLI's whole loop) captures the log records emitted while it runs and uploads
them as ``logs/<name>.log`` when it ends, whether it succeeded or failed.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from traceback import format_exception
from typing import TYPE_CHECKING

from relearn.registry import registry_client
from relearn.retraining import artifacts
from relearn.retraining.record import load_run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

LOG_DIR = "logs"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Collector(logging.Handler):
    """Keeps formatted records in memory (a step's log is small: tens of lines)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(logging.Formatter(_FORMAT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted must not break the step
            self.handleError(record)


def log_artifact_path(name: str) -> str:
    """Where the log called ``name`` is kept in the run's MLflow artifacts."""
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
    return f"{LOG_DIR}/{safe}.log"


@contextmanager
def captured_log(
    services: Services, model_cfg: ModelConfig, retraining_run_id: str, name: str
) -> Iterator[None]:
    """Capture the log of the enclosed work and upload it to the run's MLflow run at the end.

    The error that ends the work, if any, is added with its traceback (the caller's own log
    reports it too) and raised again unchanged; a failing upload is logged and never hides the
    work's own outcome.
    """
    collector = _Collector()
    root = logging.getLogger()
    core = logging.getLogger("relearn")
    level = core.level
    # A library caller may not have configured logging: the kept log still has the steps' lines.
    if core.getEffectiveLevel() > logging.INFO:
        core.setLevel(logging.INFO)
    root.addHandler(collector)
    try:
        yield
    except BaseException as error:
        collector.lines.append(f"{name} failed:\n" + "".join(format_exception(error)).rstrip())
        raise
    finally:
        root.removeHandler(collector)
        core.setLevel(level)
        _upload(services, model_cfg, retraining_run_id, name, collector.lines)


def _upload(
    services: Services, model_cfg: ModelConfig, retraining_run_id: str, name: str, lines: list[str]
) -> None:
    try:
        run = load_run(services, retraining_run_id)
        mlflow_run_id = artifacts.ensure_mlflow_run(services, model_cfg, run)
        path = log_artifact_path(name)
        text = "\n".join(lines) + "\n"
        registry_client(services.tracking_uri).log_text(mlflow_run_id, text, path)
    except Exception as error:  # the log is a convenience; the step's outcome is what counts
        log.warning("could not upload the log of retraining run %s: %s", retraining_run_id, error)
        return
    log.info("log of retraining run %s kept as %s in MLflow run %s", run.id, path, mlflow_run_id)
