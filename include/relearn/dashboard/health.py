"""Health: the latest ``model_health`` check (score, its three parts, the figures they came
from, the issues with their recommendations) and the recent history of scores.

Rows come from the health store's own reader (``relearn.store.health``), so the page shows
exactly what ``/metrics`` and the alerts read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from relearn.store.health import HealthCheckRow, check_history, latest_checks

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

HISTORY = timedelta(days=3)
HISTORY_LIMIT = 72  # three days of hourly checks


@dataclass(frozen=True)
class HealthIssue:
    part: str
    issue: str
    recommendation: str


@dataclass(frozen=True)
class HealthCheckView:
    checked_at: datetime
    status: str
    champion_version: str | None
    score: float | None
    availability: float | None
    error_score: float | None
    latency_score: float | None
    # The figures behind the parts: traffic (availability), outcomes (error), latency.
    predictions: int | None
    usual_predictions: float | None
    labelled: int | None
    accuracy: float | None
    reference_accuracy: float | None
    latency_p95_ms: float | None
    latency_budget_ms: float | None
    issues: list[HealthIssue]


@dataclass(frozen=True)
class Health:
    latest: HealthCheckView | None
    history: list[HealthCheckView]  # oldest first, for the score chart


def _issues(found: object) -> list[HealthIssue]:
    if not isinstance(found, list):
        return []
    return [
        HealthIssue(
            str(i.get("part", "")), str(i.get("issue", "")), str(i.get("recommendation", ""))
        )
        for i in found
        if isinstance(i, dict)
    ]


def _check(row: HealthCheckRow) -> HealthCheckView:
    return HealthCheckView(
        checked_at=row.checked_at,
        status=row.status,
        champion_version=row.champion_version,
        score=row.score,
        availability=row.availability,
        error_score=row.error_score,
        latency_score=row.latency_score,
        predictions=row.predictions,
        usual_predictions=row.usual_predictions,
        labelled=row.labelled,
        accuracy=row.accuracy,
        reference_accuracy=row.reference_accuracy,
        latency_p95_ms=row.latency_p95_ms,
        latency_budget_ms=row.latency_budget_ms,
        issues=_issues(row.issues),
    )


def read_health(connection: Connection, model: str, *, now: datetime) -> Health:
    """The latest check however old it is; the history of the last ``HISTORY`` only."""
    latest = latest_checks(connection, [model]).get(model)
    rows = check_history(connection, model, since=now - HISTORY, limit=HISTORY_LIMIT)
    return Health(
        latest=None if latest is None else _check(latest), history=[_check(r) for r in rows]
    )
