"""How long Relearn's tasks and DAG runs may take before Airflow stops them.

A hung training or MLflow call must not hold a worker slot forever, and a stuck run must not
block the next one (every DAG runs one at a time). The defaults suit the bundled models; a
deployment changes any of them with an environment variable in minutes, read when the DAG
files are parsed, e.g. ``RELEARN_TIMEOUT_TRAINING_MINUTES=360``.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from enum import StrEnum


class Limit(StrEnum):
    """What is being bounded; the value names its variable (``RELEARN_TIMEOUT_<VALUE>_MINUTES``)."""

    # One task.
    BOOKKEEPING = "bookkeeping"  # a few rows or an asset event: record_run, close_request, ...
    CHECK = "check"  # a health, drift or A/B check: queries plus an MLflow lookup or two
    TRAINING = "training"  # prepare_data, train, validate_model, register
    RETENTION = "retention"  # archive and expire one model's old rows
    # A human's answer to an approval request, and the wait for a retraining request.
    APPROVAL_WAIT = "approval_wait"
    REQUEST_WAIT = "request_wait"
    # One DAG run.
    CHECK_RUN = "check_run"  # model_health, ab_promotion, request_retraining
    RETRAINING_RUN = "retraining_run"  # auto_reinforcement, drift_monitor, volume_retraining
    RETENTION_RUN = "retention_run"  # retention (a first run over a long backlog: many days)


DEFAULT_MINUTES: dict[Limit, int] = {
    Limit.BOOKKEEPING: 10,
    Limit.CHECK: 30,
    Limit.TRAINING: 3 * 60,
    Limit.RETENTION: 6 * 60,
    Limit.APPROVAL_WAIT: 7 * 24 * 60,
    Limit.REQUEST_WAIT: 7 * 24 * 60,
    Limit.CHECK_RUN: 60,
    Limit.RETRAINING_RUN: 12 * 60,
    Limit.RETENTION_RUN: 12 * 60,
}


def variable(limit: Limit) -> str:
    return f"RELEARN_TIMEOUT_{limit.value.upper()}_MINUTES"


def timeout(limit: Limit) -> timedelta:
    """The configured limit; a value that is not a positive number of minutes is refused."""
    name = variable(limit)
    raw = os.environ.get(name)
    if raw is None:
        return timedelta(minutes=DEFAULT_MINUTES[limit])
    try:
        minutes = float(raw)
    except ValueError:
        minutes = 0
    if not minutes > 0:
        raise ValueError(f"{name} must be a positive number of minutes, got {raw!r}")
    return timedelta(minutes=minutes)


def waiting_run_timeout(wait: Limit, then: Limit) -> timedelta:
    """A run that waits (for a request, for a human), then runs what ``then`` bounds."""
    return timeout(wait) + timeout(then)


RETRY_DELAY_VARIABLE = "RELEARN_RETRY_DELAY_SECONDS"


def retry_delay(default: timedelta) -> timedelta:
    """The DAG's own ``default`` wait before a retry, or every DAG's from the environment.

    One value for all DAGs: a deployment with fast-recovering services (or a test that kills a
    worker on purpose) retries sooner without editing DAG files.
    """
    raw = os.environ.get(RETRY_DELAY_VARIABLE)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1
    if not 0 <= seconds < math.inf:
        raise ValueError(f"{RETRY_DELAY_VARIABLE} must be a number of seconds >= 0, got {raw!r}")
    return timedelta(seconds=seconds)
