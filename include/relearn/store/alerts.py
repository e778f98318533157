"""The ``alerts`` table: raised once per subject, at most once per cooldown per model and kind.

``raise_alert`` serialises raisers of one (model, kind) with a transaction-scoped advisory
lock, so two concurrent evaluations cannot both pass the cooldown check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class NewAlert:
    model_name: str
    kind: str
    severity: str
    subject: str
    message: str
    recommendation: str | None


@dataclass(frozen=True)
class AlertRow:
    """A stored alert: what the page lists and the notifiers send."""

    id: int
    model_name: str
    kind: str
    severity: str
    subject: str
    message: str
    recommendation: str | None
    raised_at: datetime
    trigger_key: str
    delivered_at: datetime | None
    attempts: int
    last_error: str | None


_COLUMNS = (
    "id, model_name, kind, severity, subject, message, recommendation, raised_at, trigger_key, "
    "delivered_at, attempts, last_error"
)


def raise_alert(
    connection: Connection,
    alert: NewAlert,
    *,
    raised_at: datetime,
    cooldown: timedelta,
    trigger_key: str,
) -> AlertRow | None:
    """Store the alert unless its subject alerted before or its (model, kind) alerted within
    ``cooldown`` before ``raised_at``; returns the new row, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock("
            "hashtextextended('relearn_alert:' || %s || ':' || %s, 0))",
            (alert.model_name, alert.kind),
        )
        cursor.execute(
            "SELECT 1 FROM alerts WHERE model_name = %s AND kind = %s"
            " AND raised_at > %s AND raised_at <= %s LIMIT 1",
            (alert.model_name, alert.kind, raised_at - cooldown, raised_at),
        )
        if cursor.fetchone():
            return None
        cursor.execute(
            f"""
            INSERT INTO alerts (model_name, kind, severity, subject, message, recommendation,
                                raised_at, trigger_key)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (model_name, kind, subject) DO NOTHING
            RETURNING {_COLUMNS}
            """,
            (
                alert.model_name,
                alert.kind,
                alert.severity,
                alert.subject,
                alert.message,
                alert.recommendation,
                raised_at,
                trigger_key,
            ),
        )
        values = cursor.fetchone()
    return AlertRow(*values) if values else None


def undelivered(connection: Connection, *, max_attempts: int) -> list[AlertRow]:
    """Alerts not sent yet (oldest first), locked for this transaction; others skip them."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE delivered_at IS NULL AND attempts < %s"
            " ORDER BY raised_at, id FOR UPDATE SKIP LOCKED",
            (max_attempts,),
        )
        return [AlertRow(*values) for values in cursor.fetchall()]


def record_attempt(
    connection: Connection, alert_id: int, *, error: str | None, at: datetime
) -> None:
    """One delivery attempt: delivered at ``at`` when ``error`` is None, else the error."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE alerts SET attempts = attempts + 1, last_error = %s,"
            " delivered_at = CASE WHEN %s IS NULL THEN %s ELSE NULL END WHERE id = %s",
            (error, error, at, alert_id),
        )


def recent_alerts(
    connection: Connection, *, since: datetime, model_name: str | None = None, limit: int = 200
) -> list[AlertRow]:
    """Alerts raised since ``since``, newest first (the page; one model or all)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE raised_at >= %s"
            " AND (%s::text IS NULL OR model_name = %s) ORDER BY raised_at DESC, id DESC LIMIT %s",
            (since, model_name, model_name, limit),
        )
        return [AlertRow(*values) for values in cursor.fetchall()]
