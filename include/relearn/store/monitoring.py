"""Read-only queries of the health check and the alerts over other features' tables.

Traffic and latency of the prediction log (index ``prediction_log_window``), and the model's
recent story: its latest drift report, retraining run and live A/B test, and the events that
raise alerts (drift verdicts, failed runs, rollbacks, stuck requests) of one interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

# Latencies a p95 can use: NaN sorts above Infinity in Postgres, so this leaves out NaN, the
# infinities and negatives a producer may have logged.
SOUND_LATENCY = "latency_ms >= 0 AND latency_ms < 'Infinity'::real"


def traffic_by_day(
    connection: Connection, model_name: str, *, since: datetime, until: datetime, days: int
) -> list[int]:
    """Predictions of every arm in ``[since, until)`` shifted back 0, 1, ..., ``days`` days
    (index 0: the window itself); one index-only range count each."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM prediction_log
                    WHERE model_name = %(model)s
                      AND predicted_at >= %(since)s - d * interval '1 day'
                      AND predicted_at < %(until)s - d * interval '1 day')
            FROM generate_series(0, %(days)s) AS d ORDER BY d
            """,
            {"model": model_name, "since": since, "until": until, "days": days},
        )
        return [count for (count,) in cursor.fetchall()]


def latency_p95(
    connection: Connection,
    model_name: str,
    version: str,
    *,
    since: datetime,
    until: datetime,
) -> float | None:
    """The champion version's p95 latency (ms) on its own arm in ``[since, until)``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
            FROM prediction_log
            WHERE model_name = %s AND served_by = 'champion' AND model_version = %s
              AND predicted_at >= %s AND predicted_at < %s AND {SOUND_LATENCY}
            """,
            (model_name, version, since, until),
        )
        (value,) = cursor.fetchone()
    return float(value) if value is not None else None


@dataclass(frozen=True)
class LatestDrift:
    id: str
    verdict: str
    checked_at: datetime
    score: float | None
    drifted_features: list[str]
    action: str


@dataclass(frozen=True)
class LatestRun:
    id: str
    source: str
    status: str
    created_at: datetime
    completed_at: datetime | None
    model_version: str | None
    blessed: bool | None
    error_message: str | None


@dataclass(frozen=True)
class LiveTest:
    id: str
    status: str
    challenger_version: str
    traffic_percent: int
    approval: str | None


def latest_drift(connection: Connection, model_name: str) -> LatestDrift | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, verdict, checked_at, score,"
            " CASE WHEN jsonb_typeof(drifted_features) = 'array' THEN ARRAY("
            "  SELECT jsonb_array_elements_text(drifted_features)) ELSE '{}' END, action"
            " FROM drift_reports WHERE model_name = %s"
            " ORDER BY checked_at DESC, created_at DESC LIMIT 1",
            (model_name,),
        )
        values = cursor.fetchone()
    return LatestDrift(*values) if values else None


_RUN_COLUMNS = (
    "id::text, source, status, created_at, completed_at, model_version,"
    " (metrics -> 'gate' ->> 'blessed') = 'true', error_message"
)


def latest_run(connection: Connection, model_name: str) -> LatestRun | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_RUN_COLUMNS} FROM model_retraining_runs WHERE model_name = %s"
            " ORDER BY created_at DESC LIMIT 1",
            (model_name,),
        )
        values = cursor.fetchone()
    return LatestRun(*values) if values else None


def live_test(connection: Connection, model_name: str) -> LiveTest | None:
    """The model's pending, running or paused A/B test, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, status, challenger_version, traffic_percent, approval"
            " FROM ab_tests WHERE model_name = %s AND status IN ('pending', 'running', 'paused')"
            " ORDER BY created_at DESC LIMIT 1",
            (model_name,),
        )
        values = cursor.fetchone()
    return LiveTest(*values) if values else None


@dataclass(frozen=True)
class Event:
    """Something that happened to a model and may deserve an alert."""

    subject: str  # what it is about: a report, run, decision, alias change or request id
    at: datetime
    text: str


def drift_events(
    connection: Connection, model_name: str, *, since: datetime, until: datetime
) -> list[Event]:
    """Drift checks of ``[since, until)`` that found drift or decay (realised or estimated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'drift_report:' || id, checked_at, verdict, score, action FROM drift_reports"
            " WHERE model_name = %s AND checked_at >= %s AND checked_at < %s"
            " AND verdict IN ('drifted', 'decayed', 'estimated_decay') ORDER BY checked_at",
            (model_name, since, until),
        )
        return [
            Event(
                subject,
                at,
                f"drift check found {verdict}"
                + (f" (score {score:.2f})" if score is not None else "")
                + f", action {action}",
            )
            for subject, at, verdict, score, action in cursor.fetchall()
        ]


def failed_runs(
    connection: Connection, model_name: str, *, since: datetime, until: datetime
) -> list[Event]:
    """Retraining runs that failed in ``[since, until)``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'retraining_run:' || id, completed_at, source, error_message"
            " FROM model_retraining_runs WHERE model_name = %s AND status = 'failed'"
            " AND completed_at >= %s AND completed_at < %s ORDER BY completed_at",
            (model_name, since, until),
        )
        return [
            Event(subject, at, f"{source} retraining run failed: {error or 'no message'}")
            for subject, at, source, error in cursor.fetchall()
        ]


def rollbacks(
    connection: Connection, model_name: str, *, since: datetime, until: datetime
) -> list[Event]:
    """A/B rollbacks, and champion moves back to an older version, in ``[since, until)``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT 'ab_decision:' || d.id, d.decided_at,
                   'A/B test of version ' || t.challenger_version || ' rolled back: ' || d.reason
            FROM ab_decisions d JOIN ab_tests t ON t.id = d.test_id
            WHERE t.model_name = %(model)s AND d.action = 'rollback'
              AND d.decided_at >= %(since)s AND d.decided_at < %(until)s
            UNION ALL
            SELECT 'alias_history:' || id, changed_at,
                   'champion moved back from version ' || previous_version || ' to '
                   || version || ' by ' || changed_by || ': ' || reason
            FROM alias_history
            WHERE model_name = %(model)s AND alias = 'champion'
              AND changed_at >= %(since)s AND changed_at < %(until)s
              AND version ~ '^[0-9]{1,9}$' AND previous_version ~ '^[0-9]{1,9}$'
              AND version::int < previous_version::int
            ORDER BY 2
            """,
            {"model": model_name, "since": since, "until": until},
        )
        return [Event(*values) for values in cursor.fetchall()]


def stuck_requests(connection: Connection, model_name: str, *, now: datetime) -> list[Event]:
    """Requests still ``processing`` after their lease ran out (or without one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'request:' || id || '#' || attempts, coalesce(lease_expires_at, updated_at),"
            " 'retraining request ' || id || ' claimed by ' || coalesce(claimed_by, '?')"
            " || ' is stuck: its lease ' || coalesce('expired at ' || lease_expires_at::text,"
            " 'is missing')"
            " FROM model_retraining_requests WHERE model_name = %s AND status = 'processing'"
            " AND (lease_expires_at IS NULL OR lease_expires_at < %s) ORDER BY created_at",
            (model_name, now),
        )
        return [Event(*values) for values in cursor.fetchall()]
