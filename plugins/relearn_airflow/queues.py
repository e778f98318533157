"""Which Celery queue a Relearn task goes to: heavy steps on their own workers.

Fine-tuning, data validation and candidate evaluation hold a CPU core and the training window in
memory for minutes; drift checks, A/B decisions and bookkeeping take seconds. On the
CeleryExecutor the heavy ones go to the ``training`` queue, served by workers sized for them,
and everything else to Airflow's default queue, so a long training never delays a check.
The names come from the environment of the process that parses the DAGs (the dag-processor):
``RELEARN_QUEUE_TRAINING`` and ``RELEARN_QUEUE_DEFAULT`` (which also sets Airflow's
``[operators] default_queue`` in the local stack and docker-compose.yaml). Other executors
ignore queues.
"""

from __future__ import annotations

import os

DEFAULT_QUEUE_VARIABLE = "RELEARN_QUEUE_DEFAULT"
TRAINING_QUEUE_VARIABLE = "RELEARN_QUEUE_TRAINING"
DEFAULT_QUEUE = "default"
TRAINING_QUEUE = "training"


def _queue(variable: str, fallback: str) -> str:
    name = os.environ.get(variable, "").strip() or fallback
    if "," in name or any(char.isspace() for char in name):
        raise ValueError(f"{variable}={name!r} must be one queue name (no comma, no space)")
    return name


def default_queue() -> str:
    """The queue of every light task (Airflow's ``[operators] default_queue``)."""
    return _queue(DEFAULT_QUEUE_VARIABLE, DEFAULT_QUEUE)


def training_queue() -> str:
    """The queue of the heavy steps: prepare, train, validate."""
    return _queue(TRAINING_QUEUE_VARIABLE, TRAINING_QUEUE)
