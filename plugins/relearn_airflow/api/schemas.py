"""Request and response bodies of the collection API.

The types below document what a good row holds. Only the shape of a body is refused as a
whole (a 422 naming the place, e.g. ``rows.3``: not a list of objects, an unknown field, too
many rows); every value, even one of the wrong JSON type, is judged per row by
``relearn.collect``, so a batch with bad rows keeps the good ones (predictions are decoded by
``relearn.collect.wire``, outcomes and feedback read their values as ``Any`` here).
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 (pydantic reads the annotations at runtime)
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from relearn.collect import MAX_BATCH

# Integer labels, versions and unit ids are common in other languages' JSON (classes [0, 1],
# MLflow's version numbers, user ids): accepted and kept as their text. A boolean is refused.
TextOrInteger = Annotated[str | StrictInt, AfterValidator(str)]


def _integer_as_text(value: Any) -> Any:
    return str(value) if type(value) is int else value


# A value judged per row (``relearn.collect.record``): integers as their text, as above.
Judged = Annotated[Any, AfterValidator(_integer_as_text)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictionIn(_Body):
    prediction_id: str = Field(description="UUID chosen by the client; a repeat is a no-op")
    features: Any = Field(description="the model's features as one JSON object")
    predicted_label: TextOrInteger
    model_version: TextOrInteger = Field(description="the registry version that predicted")
    confidence: float | None = Field(None, description="default: the highest probability")
    probabilities: dict[str, float] | None = Field(None, description="class -> probability")
    unit_id: TextOrInteger | None = Field(None, description="the unit (user, account...) routed")
    latency_ms: float | None = None
    predicted_at: datetime | None = Field(None, description="default: when received")
    served_by: Literal["champion", "challenger"] | None = Field(
        None,
        description="the arm that served; default: the arm of model_version in the live A/B "
        "test, else champion (a contradiction rejects the row)",
    )


class PredictionBatch(_Body):
    rows: Annotated[list[PredictionIn], Field(min_length=1, max_length=MAX_BATCH)]


class RejectedRow(BaseModel):
    index: int = Field(description="position of the row in the request, from 0")
    prediction_id: str | None
    reasons: list[str]


class PredictionAnswer(BaseModel):
    model: str
    accepted: list[str] = Field(description="ids in the log now (new or repeated)")
    logged: int
    repeated: int
    rejected: list[RejectedRow]


class OutcomeIn(_Body):
    prediction_id: Judged = Field(None, description="a UUID")
    actual_label: Judged = Field(None, description="one of the model's classes (text or integer)")
    outcome_at: Any = Field(None, description="ISO 8601 timestamp; default: when received")


class OutcomeBatch(_Body):
    outcomes: Annotated[list[OutcomeIn], Field(min_length=1, max_length=MAX_BATCH)]


class OutcomeAnswer(BaseModel):
    model: str
    attached: list[str]
    already_labelled: list[str] = Field(description="the first outcome won; this one was ignored")
    unknown: list[str] = Field(description="no prediction of this model has this id")
    rejected: list[RejectedRow]


class FeedbackIn(_Body):
    prediction_id: Judged = Field(None, description="a UUID")
    rating: Any = Field(None, description="an integer from 1 to 5")
    notes: Any = Field(None, description="text of at most 4,000 characters")


class FeedbackBatch(_Body):
    feedback: Annotated[list[FeedbackIn], Field(min_length=1, max_length=MAX_BATCH)]


class FeedbackAnswer(BaseModel):
    model: str
    recorded: list[str]
    already_rated: list[str] = Field(description="the first rating won; this one was ignored")
    unknown: list[str]
    rejected: list[RejectedRow]


class AssignmentAnswer(BaseModel):
    model: str
    unit_id: str
    arm: str
    model_version: str
    test_id: str | None
    bucket: int | None


class LiveSplitOut(BaseModel):
    test_id: str
    status: str
    champion_version: str | None
    challenger_version: str
    traffic_percent: int


class ModelSummary(BaseModel):
    name: str
    champion_version: str | None


class UsageCountOut(BaseModel):
    kind: str = Field(description="exposure, predictions, outcomes or feedback")
    events: int = Field(description="requests (or ingested file chunks)")
    rows: int
    accepted: int
    rejected: int
    senders: int = Field(description="distinct users or files")
    last_at: datetime


class UsageOut(BaseModel):
    """What the model's clients did over the last 24 hours."""

    counts: list[UsageCountOut]
    exposures: dict[str, dict[str, int]] = Field(description="arm -> model version -> units told")


class ModelDetail(BaseModel):
    name: str
    kind: str
    classes: list[str]
    features: list[dict[str, Any]]
    aliases: dict[str, str]
    versions: list[dict[str, Any]]
    live_split: LiveSplitOut | None
    usage: UsageOut
