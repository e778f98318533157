"""The local stack: embedded Postgres, the MLflow server and Airflow's components."""

from __future__ import annotations


class StackError(RuntimeError):
    """The stack cannot start or be reached; the message says what to do."""
