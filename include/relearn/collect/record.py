"""Collected rows written to the log: predictions (screened), outcomes and feedback.

Each call is one transaction: the accepted rows of a batch are committed together or not at
all, with one usage event saying who sent the batch and what became of it
(``relearn.store.usage``). Every call can be repeated safely (known prediction ids, outcomes
and ratings are kept as first written).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from relearn.collect.arms import ArmVersions
from relearn.collect.rows import Rejected, Screened, parse_uuid, screen_predictions
from relearn.services import utcnow
from relearn.store.abtests import ACTIVE, live_test
from relearn.store.db import transaction
from relearn.store.feedback import FeedbackResult, record_feedback
from relearn.store.predictions import OutcomeResult, attach_model_outcomes, copy_predictions
from relearn.store.usage import UsageEvent, UsageKind, record_usage

if TYPE_CHECKING:
    import uuid

    import pandas as pd

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionReceipt:
    """``accepted``: ids now in the log (``logged`` new, ``repeated`` already there)."""

    accepted: list[str]
    logged: int
    repeated: int
    rejected: list[Rejected]


def record_predictions(
    database_url: str,
    model_cfg: ModelConfig,
    batch: pd.DataFrame,
    *,
    sender: str,
    now: datetime | None = None,
) -> PredictionReceipt:
    """Screen a batch and log its good rows in one transaction; bad rows are only reported.

    ``sender`` (the user or file) is recorded with the batch's counts as one usage event.
    A row's arm is the one the model's live A/B test serves its version from (``live_arms``).
    """
    screened = screen_predictions(
        batch, model_cfg, now=now or utcnow(), arms=live_arms(database_url, model_cfg.name)
    )
    return log_screened(database_url, model_cfg, screened, rows=len(batch), sender=sender)


def live_arms(database_url: str, model_name: str) -> ArmVersions | None:
    """The versions behind the arms of the model's test serving traffic (running or paused)."""
    with transaction(database_url) as connection:
        test = live_test(connection, model_name, ACTIVE)
    return None if test is None else ArmVersions(test.champion_version, test.challenger_version)


def log_screened(
    database_url: str, model_cfg: ModelConfig, screened: Screened, *, rows: int, sender: str
) -> PredictionReceipt:
    """Log the accepted rows of a screened batch of ``rows`` rows in one transaction, with
    its usage event (a backfill screens the next chunk while this one is written)."""
    accepted = screened.accepted.prediction_id
    with transaction(database_url) as connection:
        new = copy_predictions(connection, screened.accepted)
        receipt = PredictionReceipt(accepted, len(new), len(accepted) - len(new), screened.rejected)
        event = UsageEvent(
            UsageKind.PREDICTIONS,
            sender,
            rows=rows,
            accepted=len(accepted),
            rejected=len(screened.rejected),
            details={"logged": receipt.logged, "repeated": receipt.repeated},
        )
        record_usage(connection, model_cfg.name, event)
    log.info(
        "model %s: %s predictions logged, %s repeated, %s rejected",
        model_cfg.name,
        receipt.logged,
        receipt.repeated,
        len(receipt.rejected),
    )
    return receipt


@dataclass(frozen=True)
class OutcomeReceipt:
    """What became of each outcome; ``rejected`` includes outcomes dated before their prediction."""

    result: OutcomeResult
    rejected: list[Rejected]


_TIME = TypeAdapter(datetime)
# The longest note a rating keeps.
MAX_NOTES = 4000


def _moment(value: Any, default: datetime) -> datetime | None:
    """A time as pydantic reads one (ISO 8601 text, or Unix seconds or milliseconds, as the
    API always took them), ``default`` for none; without a zone it is UTC (as for
    predictions); ``None`` for anything else (rejected with its row)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    try:
        moment = _TIME.validate_python(value)
    except ValidationError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def record_outcomes(
    database_url: str,
    model_cfg: ModelConfig,
    outcomes: list[tuple[Any, Any, Any]],
    *,
    sender: str,
    now: datetime | None = None,
) -> OutcomeReceipt:
    """Attach ``(prediction id, actual label, outcome time or None = now)`` to the log.

    An id, label or time of any JSON type is judged here, per row: a label that is missing or
    not one of the model's classes (as text), a time that is not one or in the future, a
    malformed id or the
    same id twice in one call is rejected; the first outcome of a prediction wins.
    """
    moment = now or utcnow()
    classes = set(model_cfg.classes)
    seen: dict[uuid.UUID, int] = {}
    good: list[tuple[uuid.UUID, str, datetime]] = []
    rejected: list[Rejected] = []
    for position, (raw_id, label, at) in enumerate(outcomes):
        reasons = []
        prediction_id = parse_uuid(raw_id)
        if prediction_id is None:
            reasons.append("prediction_id is not a UUID")
        elif prediction_id in seen:
            reasons.append("prediction_id is duplicated in the batch")
        if label is None:
            reasons.append("actual_label is missing")
        elif not isinstance(label, str) or label not in classes:
            reasons.append(f"actual_label not in classes {sorted(classes)}")
        outcome_at = _moment(at, moment)
        if outcome_at is None:
            reasons.append("outcome_at is not a time (ISO 8601 text or Unix seconds)")
        elif outcome_at > moment:
            reasons.append("outcome_at is in the future")
        if reasons:
            rejected.append(Rejected(position, None if raw_id is None else str(raw_id), reasons))
            continue
        seen[prediction_id] = position
        good.append((prediction_id, label, outcome_at))
    with transaction(database_url) as connection:
        result = attach_model_outcomes(connection, model_cfg.name, good)
        rejected += [
            Rejected(seen[pid], str(pid), ["outcome_at is before predicted_at"])
            for pid in result.before_prediction
        ]
        rejected.sort(key=lambda r: r.position)
        event = UsageEvent(
            UsageKind.OUTCOMES,
            sender,
            rows=len(outcomes),
            accepted=len(result.attached),
            rejected=len(rejected),
            details={
                "already_labelled": len(result.already_labelled),
                "unknown": len(result.unknown),
            },
        )
        record_usage(connection, model_cfg.name, event)
    log.info(
        "model %s: %s outcomes attached, %s already labelled, %s unknown, %s rejected",
        model_cfg.name,
        len(result.attached),
        len(result.already_labelled),
        len(result.unknown),
        len(rejected),
    )
    return OutcomeReceipt(result, rejected)


def record_ratings(
    database_url: str,
    model_name: str,
    ratings: list[tuple[Any, Any, Any]],
    *,
    sender: str,
) -> tuple[FeedbackResult, list[Rejected]]:
    """Store ratings 1-5 with optional notes; the first rating of a prediction wins."""
    seen: set[uuid.UUID] = set()
    good: list[tuple[uuid.UUID, int, str | None]] = []
    rejected: list[Rejected] = []
    for position, (raw_id, rating, notes) in enumerate(ratings):
        prediction_id = parse_uuid(raw_id)
        reasons = []
        if prediction_id is None:
            reasons.append("prediction_id is not a UUID")
        elif prediction_id in seen:
            reasons.append("prediction_id is duplicated in the batch")
        if type(rating) is not int or not 1 <= rating <= 5:
            reasons.append("rating must be an integer between 1 and 5")
        if notes is not None and not (
            isinstance(notes, str) and len(notes) <= MAX_NOTES and "\x00" not in notes
        ):
            # A NUL would make Postgres refuse the whole batch's insert.
            reasons.append(f"notes must be text of at most {MAX_NOTES} characters, without NUL")
        if reasons:
            rejected.append(Rejected(position, None if raw_id is None else str(raw_id), reasons))
            continue
        seen.add(prediction_id)
        good.append((prediction_id, rating, notes))
    with transaction(database_url) as connection:
        result = record_feedback(connection, model_name, good)
        event = UsageEvent(
            UsageKind.FEEDBACK,
            sender,
            rows=len(ratings),
            accepted=len(result.recorded),
            rejected=len(rejected),
            details={"already_rated": len(result.already_rated), "unknown": len(result.unknown)},
        )
        record_usage(connection, model_name, event)
    return result, rejected
