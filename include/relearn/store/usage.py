"""Usage events (the ``usage_events`` table): who used a model through Relearn, and how.

One row per request, never per logged row: an A/B exposure (the arm and version a unit was
assigned), or a batch of predictions, outcomes or feedback with its counts. ``payload`` holds
``sender`` (the Airflow user, or ``ingest:<file>``), ``rows`` given, ``accepted`` and
``rejected``, plus the event's own fields (an exposure's ``arm``/``model_version``/``test_id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection


class UsageKind(StrEnum):
    """``event_type`` values."""

    EXPOSURE = "exposure"  # GET /assignment: a unit was told which arm serves it
    PREDICTIONS = "predictions"
    OUTCOMES = "outcomes"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class UsageEvent:
    kind: UsageKind
    sender: str
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    unit_id: str | None = None
    details: dict[str, Any] | None = None

    def payload(self) -> str:
        counts = {"rows": self.rows, "accepted": self.accepted, "rejected": self.rejected}
        return json.dumps({"sender": self.sender, **counts, **(self.details or {})}, default=str)


def record_usage(connection: Connection, model_name: str, event: UsageEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO usage_events (model_name, event_type, unit_id, payload)"
            " VALUES (%s, %s, %s, %s::jsonb)",
            (model_name, str(event.kind), event.unit_id, event.payload()),
        )


@dataclass(frozen=True)
class UsageCount:
    """Events of one kind since a moment: requests, rows given, accepted and rejected."""

    kind: str
    events: int
    rows: int
    accepted: int
    rejected: int
    senders: int
    last_at: datetime


@dataclass(frozen=True)
class UsageSummary:
    counts: list[UsageCount]
    # Exposures per (arm, model version): what a client service was told to serve.
    exposures: dict[str, dict[str, int]]


_COUNTS = """
SELECT event_type, count(*),
       coalesce(sum((payload->>'rows')::bigint), 0),
       coalesce(sum((payload->>'accepted')::bigint), 0),
       coalesce(sum((payload->>'rejected')::bigint), 0),
       count(DISTINCT payload->>'sender'),
       max(occurred_at)
FROM usage_events
WHERE model_name = %(m)s AND occurred_at >= %(since)s
GROUP BY event_type ORDER BY event_type
"""
_EXPOSURES = """
SELECT payload->>'arm', payload->>'model_version', count(*)
FROM usage_events
WHERE model_name = %(m)s AND occurred_at >= %(since)s AND event_type = 'exposure'
GROUP BY 1, 2 ORDER BY 1, 2
"""


def usage_since(connection: Connection, model_name: str, since: datetime) -> UsageSummary:
    """What ``model_name``'s clients did since ``since``: per kind, and exposures per arm."""
    parameters = {"m": model_name, "since": since}
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS, parameters)
        counts = [UsageCount(*row) for row in cursor.fetchall()]
        cursor.execute(_EXPOSURES, parameters)
        exposures: dict[str, dict[str, int]] = {}
        for arm, version, n in cursor.fetchall():
            exposures.setdefault(str(arm), {})[str(version)] = int(n)
    return UsageSummary(counts, exposures)
