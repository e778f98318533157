"""Health: the latest ``model_health`` check (status, reasons) and the history of statuses.

The check's ``details`` pass through as recorded, so whatever the health check adds to them
reaches the page without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relearn.store import dashboard

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

HISTORY_LIMIT = 72  # three days of hourly checks


@dataclass(frozen=True)
class HealthCheckView:
    checked_at: datetime
    status: str
    champion_version: str | None
    reasons: list[str]
    details: dict[str, Any]


@dataclass(frozen=True)
class Health:
    latest: HealthCheckView | None
    history: list[HealthCheckView]  # oldest first, for the timeline


def _check(row: dict[str, Any]) -> HealthCheckView:
    details = row["details"] if isinstance(row["details"], dict) else {}
    reasons = details.get("reasons")
    return HealthCheckView(
        checked_at=row["checked_at"],
        status=row["status"],
        champion_version=row["champion_version"],
        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
        details=details,
    )


def read_health(connection: Connection, model: str) -> Health:
    checks = [_check(row) for row in dashboard.health_history(connection, model, HISTORY_LIMIT)]
    return Health(latest=checks[0] if checks else None, history=checks[::-1])
