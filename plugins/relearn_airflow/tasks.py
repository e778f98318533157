"""TaskFlow tasks several Relearn DAGs share.

Each reaches Relearn's database, MLflow and configuration through ``RelearnHook``, so the
connection ids and config path a DAG passes are the ones used (defaults: ``relearn_db``,
``mlflow_default``, ``$RELEARN_CONFIG``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, task

from relearn_airflow.hooks.relearn import RelearnHook

if TYPE_CHECKING:
    from relearn.config import RelearnConfig

# An event per blessed challenger (extra: model, version), for DAGs scheduled on new challengers.
CHALLENGER_ASSET = Asset(name="relearn_challenger", uri="relearn://models/challenger")
# An event per A/B test that passed and waits for a human (extra: model, test_id, version).
APPROVAL_ASSET = Asset(name="relearn_approval", uri="relearn://abtests/approval")

DEFAULT_CONN = RelearnHook.default_conn_name
DEFAULT_MLFLOW_CONN = "mlflow_default"


def _config(config_path: str | None) -> RelearnConfig:
    """The hook's configuration; an unreadable one fails the task at once (no retry helps)."""
    from airflow.sdk.exceptions import AirflowFailException

    from relearn.config import ConfigError

    try:
        return RelearnHook(config_path=config_path).config
    except ConfigError as error:
        raise AirflowFailException(str(error)) from error


def _chosen(config: RelearnConfig, wanted: str | None) -> list[str]:
    """``[wanted]`` if it is configured, every model if empty; an unknown one fails at once."""
    from airflow.sdk.exceptions import AirflowFailException

    from relearn.config import ConfigError

    if not wanted:
        return config.model_names
    try:
        return [config.model(wanted).name]
    except ConfigError as error:
        raise AirflowFailException(str(error)) from error


@task
def configured_models(params: dict | None = None, config_path: str | None = None) -> list[str]:
    """The models a run works on: the ``model`` Param if set, else every configured model."""
    return _chosen(_config(config_path), (params or {}).get("model"))


@task
def models_for_action(params: dict | None = None, config_path: str | None = None) -> list[str]:
    """Like ``configured_models``, but a manual ``action`` (anything but ``check``) must name
    its model: a rollback left without one would act on every model's test."""
    from airflow.sdk.exceptions import AirflowFailException

    params = params or {}
    action = params.get("action") or "check"
    if action != "check" and not params.get("model"):
        raise AirflowFailException(
            f"action '{action}' needs a model: set the 'model' Param to the one it applies to"
        )
    return _chosen(_config(config_path), params.get("model"))


@task
def retraining_wanted(check: dict) -> dict:
    """The retraining options a drift check asked for; skips what follows when it asked none."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not check.get("retrain"):
        reason = f" ({check['reason']})" if check.get("reason") else ""
        raise AirflowSkipException(f"{check['verdict']}: {check['action']}{reason}")
    return check["retrain"]


@task(outlets=[APPROVAL_ASSET])
def request_approval(outcome: dict, outlet_events: Any = None) -> None:
    """Announce a passed test that waits for a human (``ab_approval`` asks); else skip."""
    from airflow.sdk.exceptions import AirflowSkipException

    if outcome.get("action") != "await_approval":
        raise AirflowSkipException(f"{outcome.get('action')}: {outcome.get('reason')}")
    outlet_events[APPROVAL_ASSET].extra = {
        "model": outcome["model"],
        "test_id": outcome["test_id"],
        "version": outcome["version"],
    }


@task
def approval_requests(triggering_asset_events: Any = None) -> list[dict]:
    """The waiting tests announced by the events that triggered this run."""
    return [
        dict(event.extra)
        for events in (triggering_asset_events or {}).values()
        for event in events
        if {"model", "test_id", "version"} <= set(event.extra or {})
    ]


@task(outlets=[CHALLENGER_ASSET])
def announce_challenger(published: dict, outlet_events: Any = None) -> None:
    """Emit a ``relearn://models/challenger`` event (extra: model, version) when blessed."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not published.get("blessed"):
        raise AirflowSkipException("not blessed: no challenger to announce")
    outlet_events[CHALLENGER_ASSET].extra = {
        "model": published["model"],
        "version": published["version"],
    }


@task
def create_request(
    params: dict | None = None,
    relearn_conn_id: str = DEFAULT_CONN,
    config_path: str | None = None,
) -> str:
    """File a retraining request from the DAG run's Params; returns its id."""
    from airflow.sdk.exceptions import AirflowFailException

    from relearn.store.db import transaction
    from relearn.store.requests import RequestError
    from relearn.store.requests import create_request as create

    params = params or {}
    hook = RelearnHook(relearn_conn_id, config_path=config_path)
    known_models = _config(config_path).model_names
    try:
        with transaction(hook.database_url) as connection:
            request = create(
                connection,
                model_name=params["model"],
                known_models=known_models,
                reason=params.get("reason"),
                priority=params.get("priority") or "normal",
                requested_by=params.get("requested_by") or None,
            )
    except RequestError as error:
        raise AirflowFailException(f"request rejected: {error}") from error  # retrying won't help
    return str(request.id)


@task(trigger_rule="all_done")
def close_request(
    ti: Any = None,
    relearn_conn_id: str = DEFAULT_CONN,
    mlflow_conn_id: str = DEFAULT_MLFLOW_CONN,
) -> str | None:
    """After the retraining ends (however it ended): close the request the sensor claimed."""
    from airflow.sdk.exceptions import AirflowFailException

    from relearn.retraining.handover import finish_request

    request = ti.xcom_pull(task_ids="wait_for_request")
    if not request:
        return None  # nothing was claimed (the sensor timed out)
    retraining_run_id = ti.xcom_pull(task_ids="record_run")
    services = RelearnHook(relearn_conn_id, mlflow_conn_id).services()
    status = finish_request(services, request["id"], retraining_run_id)
    if status != "completed":
        # Fail this DAG run too, so the failure is visible where operators look.
        raise AirflowFailException(f"request {request['id']} is {status}: its retraining failed")
    return status
