"""Task callbacks: a retraining task that finally fails marks its run ``failed`` with why."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from relearn_airflow.hooks.relearn import RelearnHook

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


def mark_retraining_run_failed(context: Context) -> None:
    """``on_failure_callback``: record the error on the DAG run's row for the task's model.

    Runs after the last retry only, so a transient error that a retry fixes is not recorded
    as a failure; a run that already finished is left as it is.
    """
    from relearn.retraining.record import fail
    from relearn.store.db import transaction
    from relearn.store.runs import find_run

    task = context["task"]
    model_name = getattr(task, "model_name", None)
    airflow_run_id = context["dag_run"].run_id  # the trigger_key of the DAG run's runs
    error = context.get("exception") or "task failed"
    # Operators wrap Relearn's errors in AirflowFailException: record the original.
    error = getattr(error, "__cause__", None) or error
    if not model_name:
        return  # not a retraining step (e.g. the request bookkeeping): nothing to record
    hook = RelearnHook(
        getattr(task, "relearn_conn_id", RelearnHook.default_conn_name),
        getattr(task, "mlflow_conn_id", "mlflow_default"),
    )
    services = hook.services()
    with transaction(services.database_url) as connection:
        run = find_run(connection, airflow_run_id, model_name)
    if run is None:
        log.error(
            "%s failed for %s before its run was recorded: %s", task.task_id, model_name, error
        )
        return
    if fail(services, str(run.id), error if isinstance(error, BaseException) else str(error)):
        log.error("retraining run %s of %s marked failed by %s", run.id, model_name, task.task_id)
