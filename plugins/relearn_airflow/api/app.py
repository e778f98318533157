"""The FastAPI app of the collection API; the core (``relearn.collect``) does the work.

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so the blocking
Postgres and MLflow calls never stall the api-server's event loop. Relearn's database, the
MLflow server and the model config come from ``RelearnHook`` (Airflow Connections), read once
per api-server process: a changed ``relearn.yaml`` takes effect when the api-server restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError

from relearn_airflow.api.configured import configured_model, relearn_hook
from relearn_airflow.api.docs import NO_PUBLIC_DOCS, add_private_docs
from relearn_airflow.api.schemas import (
    AssignmentAnswer,
    FeedbackAnswer,
    FeedbackBatch,
    ModelDetail,
    ModelSummary,
    OutcomeAnswer,
    OutcomeBatch,
    PredictionAnswer,
    PredictionBatch,
    RejectedRow,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from relearn.collect.rows import Rejected

URL_PREFIX = "/relearn/api/v1"


def _rejected(rows: Sequence[Rejected]) -> list[RejectedRow]:
    return [
        RejectedRow(index=r.position, prediction_id=r.prediction_id, reasons=r.reasons)
        for r in rows
    ]


def _no_champion(error: Exception) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(error))


def _sender(request: Request) -> str:
    """The authenticated user's name (set by the app's authentication dependency)."""
    return request.state.relearn_sender


Sender = Annotated[str, Depends(_sender)]


async def _body(request: Request) -> bytes:
    return await request.body()


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` references replaced by the definitions."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


def _prediction_body() -> dict[str, Any]:
    """The documented body of ``log_predictions``: it is decoded by ``relearn.collect.wire``
    (fast, column-wise), not by FastAPI, and its schema is still ``PredictionBatch``."""
    schema = _inline(PredictionBatch.model_json_schema())
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def log_predictions(
    name: str, body: Annotated[bytes, Depends(_body)], sender: Sender
) -> PredictionAnswer:
    """Log a batch of predictions (``PredictionBatch``): good rows are committed together,
    bad rows come back with their reasons."""
    from relearn.collect.record import record_predictions
    from relearn.collect.wire import WireError, decode_predictions
    from relearn.services import utcnow

    model_cfg = configured_model(name)
    now = utcnow()
    try:
        frame = decode_predictions(body, now=now)
    except WireError as error:
        detail = {"type": "value_error", "loc": ("body", *error.location), "msg": error.message}
        raise RequestValidationError([detail]) from None
    receipt = record_predictions(
        relearn_hook().database_url, model_cfg, frame, sender=sender, now=now
    )
    return PredictionAnswer(
        model=name,
        accepted=receipt.accepted,
        logged=receipt.logged,
        repeated=receipt.repeated,
        rejected=_rejected(receipt.rejected),
    )


def log_outcomes(name: str, batch: OutcomeBatch, sender: Sender) -> OutcomeAnswer:
    """Attach actual labels by prediction id; the first outcome of a prediction wins."""
    from relearn.collect.record import record_outcomes

    model_cfg = configured_model(name)
    given = [(o.prediction_id, o.actual_label, o.outcome_at) for o in batch.outcomes]
    receipt = record_outcomes(relearn_hook().database_url, model_cfg, given, sender=sender)
    result = receipt.result
    return OutcomeAnswer(
        model=name,
        attached=[str(pid) for pid in result.attached],
        already_labelled=[str(pid) for pid in result.already_labelled],
        unknown=[str(pid) for pid in result.unknown],
        rejected=_rejected(receipt.rejected),
    )


def log_feedback(name: str, batch: FeedbackBatch, sender: Sender) -> FeedbackAnswer:
    """Store ratings (1-5) with optional notes; the first rating of a prediction wins."""
    from relearn.collect.record import record_ratings

    configured_model(name)
    given = [(f.prediction_id, f.rating, f.notes) for f in batch.feedback]
    result, rejected = record_ratings(relearn_hook().database_url, name, given, sender=sender)
    return FeedbackAnswer(
        model=name,
        recorded=[str(pid) for pid in result.recorded],
        already_rated=[str(pid) for pid in result.already_rated],
        unknown=[str(pid) for pid in result.unknown],
        rejected=_rejected(rejected),
    )


def assignment(
    name: str, unit_id: Annotated[str, Query(min_length=1, max_length=512)], sender: Sender
) -> AssignmentAnswer:
    """The arm and model version that serve ``unit_id`` now (sticky, as ``SplitRouter``);
    recorded as an exposure of the unit to that arm."""
    from relearn.collect.models import assign
    from relearn.services import NoChampionError

    configured_model(name)
    try:
        found = assign(relearn_hook().services(), name, unit_id, sender=sender)
    except NoChampionError as error:
        raise _no_champion(error) from None
    return AssignmentAnswer(
        model=name,
        unit_id=unit_id,
        arm=found.arm,
        model_version=found.model_version,
        test_id=found.test_id,
        bucket=found.bucket,
    )


def list_models() -> list[ModelSummary]:
    """Every configured model with its champion version (``null``: not bootstrapped yet)."""
    from relearn.collect.models import champion_versions

    names = relearn_hook().config.model_names
    versions = champion_versions(relearn_hook().services(), names)
    return [ModelSummary(name=name, champion_version=versions[name]) for name in names]


def get_model(name: str) -> ModelDetail:
    """A model's schema, registry versions with their aliases, and its live A/B split."""
    from dataclasses import asdict

    from relearn.collect.models import describe_model

    state = describe_model(relearn_hook().services(), configured_model(name))
    return ModelDetail(**asdict(state))


def create_app() -> FastAPI:
    """The app, every route behind Airflow's authentication (401 without a valid token)."""
    from airflow.api_fastapi.core_api.security import get_user

    # A default, not an annotation: annotations are resolved in the module's namespace, and
    # Airflow's security module is imported here, in the api-server only.
    def authenticated(request: Request, user: Any = Depends(get_user)) -> None:  # noqa: B008
        # As ``requires_authenticated()``, and the user is kept as the sender of usage events.
        request.state.relearn_sender = user.get_name()

    app = FastAPI(
        title="Relearn collection API",
        description="Log predictions, outcomes and feedback; ask which arm serves a unit.",
        version="1",
        dependencies=[Depends(authenticated)],
        **NO_PUBLIC_DOCS,
    )
    add_private_docs(app)
    app.post("/models/{name}/predictions", openapi_extra=_prediction_body())(log_predictions)
    app.post("/models/{name}/outcomes")(log_outcomes)
    app.post("/models/{name}/feedback")(log_feedback)
    app.get("/models/{name}/assignment")(assignment)
    app.get("/models")(list_models)
    app.get("/models/{name}")(get_model)
    return app
