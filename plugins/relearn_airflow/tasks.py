"""TaskFlow tasks several Relearn DAGs share."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, task

# An event per blessed challenger (extra: model, version), for DAGs scheduled on new challengers.
CHALLENGER_ASSET = Asset(name="relearn_challenger", uri="relearn://models/challenger")
# An event per A/B test that passed and waits for a human (extra: model, test_id, version).
APPROVAL_ASSET = Asset(name="relearn_approval", uri="relearn://abtests/approval")


@task
def configured_models(params: dict | None = None) -> list[str]:
    """The models a run works on: the ``model`` Param if set, else every configured model."""
    from relearn.config import load_config

    config = load_config()
    wanted = (params or {}).get("model")
    return [config.model(wanted).name] if wanted else config.model_names


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
def create_request(params: dict | None = None) -> str:
    """File a retraining request from the DAG run's Params; returns its id."""
    from airflow.sdk.exceptions import AirflowFailException

    from relearn.config import load_config
    from relearn.store.db import transaction
    from relearn.store.requests import RequestError
    from relearn.store.requests import create_request as create
    from relearn_airflow.hooks.relearn import RelearnHook

    params = params or {}
    try:
        with transaction(RelearnHook().database_url) as connection:
            request = create(
                connection,
                model_name=params["model"],
                known_models=load_config().model_names,
                reason=params.get("reason"),
                priority=params.get("priority") or "normal",
                requested_by=params.get("requested_by") or None,
            )
    except RequestError as error:
        raise AirflowFailException(f"request rejected: {error}") from error  # retrying won't help
    return str(request.id)


@task(trigger_rule="all_done")
def close_request(ti: Any = None) -> str | None:
    """After the retraining ends (however it ended): close the request the sensor claimed."""
    from airflow.sdk.exceptions import AirflowFailException

    from relearn.retraining.handover import finish_request
    from relearn_airflow.hooks.relearn import RelearnHook

    request = ti.xcom_pull(task_ids="wait_for_request")
    if not request:
        return None  # nothing was claimed (the sensor timed out)
    hook = RelearnHook()
    retraining_run_id = ti.xcom_pull(task_ids="record_run")
    status = finish_request(hook.services(), request["id"], retraining_run_id)
    if status != "completed":
        # Fail this DAG run too, so the failure is visible where operators look.
        raise AirflowFailException(f"request {request['id']} is {status}: its retraining failed")
    return status
