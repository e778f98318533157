"""The FastAPI app of the Relearn page: the page itself, its static modules and its JSON API.

Mounted in the api-server under ``URL_PREFIX`` and shown in Airflow's navigation as an external
view (an iframe of the same origin), so the UI's session cookie (``_token``) authenticates
every request: no second login. Every route requires an authenticated Airflow user; filing a
retraining request also requires the right to trigger ``request_retraining``, the DAG that
files it (so the request is recorded, retried and audited like any triggered run).

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so the blocking
Postgres and MLflow reads never stall the api-server's event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from relearn_airflow.api.configured import configured_model, relearn_hook
from relearn_airflow.api.docs import NO_PUBLIC_DOCS, add_private_docs

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser


URL_PREFIX = "/relearn/ui"
REQUEST_DAG = "request_retraining"
STATIC = Path(__file__).parent / "static"
_MEDIA_TYPES = {".js": "application/javascript", ".css": "text/css", ".html": "text/html"}
MAX_REASON_LENGTH = 2000  # as model_retraining_requests and the DAG's Param accept


class RetrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=MAX_REASON_LENGTH)
    priority: Literal["high", "normal", "low"] = "normal"


def _static(name: str) -> Response:
    path = STATIC / name
    if path.parent != STATIC or not path.is_file() or path.suffix not in _MEDIA_TYPES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file '{name}'")
    return Response(
        path.read_bytes(),
        media_type=_MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "no-cache"},
    )


def index() -> Response:
    """The page (the api-server redirects ``/relearn/ui`` here: its links are relative)."""
    return _static("index.html")


def static_file(name: str) -> Response:
    return _static(name)


def _can_request(user: BaseUser) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )

    return get_auth_manager().is_authorized_dag(
        method="POST",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=REQUEST_DAG),
        user=user,
    )


def get_session(request: Request) -> dict[str, Any]:
    """Who is looking, and whether the Retrain now button works for them."""
    user = request.state.relearn_user
    return {"user": user.get_name(), "can_request_retraining": _can_request(user)}


def list_models() -> list[dict[str, str]]:
    """The configured models, in configuration order (the page's model selector)."""
    return [{"name": name} for name in relearn_hook().config.model_names]


def model_page(
    name: str, bucket: Annotated[Literal["hour", "day"], Query()] = "hour"
) -> dict[str, Any]:
    """Every section of one model's page, read now."""
    from relearn.dashboard.page import read_page
    from relearn.services import utcnow

    hook = relearn_hook()
    page = read_page(
        hook.services(),
        configured_model(name),
        now=utcnow(),
        bucket=bucket,
        mlflow_ui=hook.tracking_uri,
    )
    return jsonable_encoder(page)


def retrain(name: str, body: RetrainBody, request: Request) -> dict[str, Any]:
    """Retrain now: trigger ``request_retraining`` for the model, as the logged-in user."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    configured_model(name)
    user = request.state.relearn_user
    conf = {"model": name, "reason": body.reason, "priority": body.priority}
    try:
        run = trigger_dag(
            REQUEST_DAG,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user.get_name(),
            conf=conf,
        )
    except DagNotFound:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"the DAG {REQUEST_DAG} is not loaded in this Airflow"
        ) from None
    if run is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{REQUEST_DAG} was not triggered")
    return {"dag_id": REQUEST_DAG, "dag_run_id": run.run_id, "state": str(run.state)}


def create_app() -> FastAPI:
    """The app, every route behind Airflow's authentication (401 without a valid session)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag

    # A default, not an ``Annotated`` type: FastAPI resolves annotations in this module's
    # globals, where the lazy imports above do not put them.
    def remember_user(request: Request, user: Any = Depends(get_user)) -> None:  # noqa: B008
        request.state.relearn_user = user

    may_trigger = Depends(
        requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=REQUEST_DAG)
    )
    app = FastAPI(
        title="Relearn page",
        description="The Relearn page in Airflow's UI and the JSON API it reads.",
        version="1",
        dependencies=[Depends(remember_user)],
        **NO_PUBLIC_DOCS,
    )
    add_private_docs(app)
    app.get("/", include_in_schema=False)(index)
    app.get("/static/{name}", include_in_schema=False)(static_file)
    app.get("/api/session")(get_session)
    app.get("/api/models")(list_models)
    app.get("/api/models/{name}")(model_page)
    app.post("/api/models/{name}/retrain", dependencies=[may_trigger])(retrain)
    return app


def external_view() -> dict[str, Any]:
    """The navigation entry: Airflow renders the page in an iframe at ``/plugin/relearn``."""
    return {
        "name": "Relearn",
        "href": f"{URL_PREFIX}/",
        "url_route": "relearn",
        "destination": "nav",
        "nav_top_level": True,
    }
