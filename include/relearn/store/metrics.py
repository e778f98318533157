"""The bounded, indexed reads behind ``/metrics`` (``relearn.monitoring.metrics``).

The prediction log is read over the last 24 hours only (index ``prediction_log_window``);
every other read is the latest row per model (an index step) or an aggregate of a small
table (retraining runs, live requests, live A/B tests, the day's alerts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from relearn.store.monitoring import LatestDrift

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class ArmTraffic:
    """One model arm's predictions of the last hour and day, ending at the scrape."""

    model_name: str
    arm: str
    predictions_1h: int
    predictions_24h: int
    labelled_1h: int
    correct_1h: int
    labelled_24h: int
    correct_24h: int
    latency_p95_1h_ms: float | None


def arm_traffic(
    connection: Connection, model_names: list[str], *, now: datetime
) -> list[ArmTraffic]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT model_name, served_by,
                   count(*) FILTER (WHERE predicted_at >= %(hour)s),
                   count(*),
                   count(actual_label) FILTER (WHERE predicted_at >= %(hour)s),
                   count(*) FILTER (WHERE predicted_at >= %(hour)s
                                    AND predicted_label = actual_label),
                   count(actual_label),
                   count(*) FILTER (WHERE predicted_label = actual_label),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (
                       WHERE predicted_at >= %(hour)s
                       AND latency_ms >= 0 AND latency_ms < 'Infinity'::real)
            FROM prediction_log
            WHERE model_name = ANY(%(models)s)
              AND predicted_at >= %(day)s AND predicted_at < %(now)s
            GROUP BY model_name, served_by
            ORDER BY model_name, served_by
            """,
            {
                "models": model_names,
                "now": now,
                "hour": now - timedelta(hours=1),
                "day": now - timedelta(hours=24),
            },
        )
        return [ArmTraffic(*values) for values in cursor.fetchall()]


def latest_drifts(connection: Connection, model_names: list[str]) -> dict[str, LatestDrift]:
    """Each model's latest drift report (index ``drift_reports_model_time``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.name, d.* FROM unnest(%s::text[]) AS m(name) CROSS JOIN LATERAL ("
            " SELECT id::text, verdict, checked_at, score, '{}'::text[], action"
            " FROM drift_reports WHERE model_name = m.name"
            " ORDER BY checked_at DESC, created_at DESC LIMIT 1) AS d",
            (model_names,),
        )
        return {name: LatestDrift(*rest) for name, *rest in cursor.fetchall()}


@dataclass(frozen=True)
class RunCount:
    model_name: str
    source: str
    status: str
    runs: int


def run_counts(connection: Connection, model_names: list[str]) -> list[RunCount]:
    """Retraining runs by model, source and status (all time: one row per run, a small table)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, coalesce(source, 'unknown'), coalesce(status, 'unknown'), count(*)"
            " FROM model_retraining_runs WHERE model_name = ANY(%s)"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (model_names,),
        )
        return [RunCount(*values) for values in cursor.fetchall()]


def last_blessed(connection: Connection, model_names: list[str]) -> dict[str, datetime]:
    """When each model's latest blessed candidate's run completed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, max(completed_at) FROM model_retraining_runs"
            " WHERE model_name = ANY(%s) AND status = 'completed'"
            " AND metrics -> 'gate' ->> 'blessed' = 'true' GROUP BY model_name",
            (model_names,),
        )
        return {name: at for name, at in cursor.fetchall() if at is not None}


@dataclass(frozen=True)
class QueueState:
    model_name: str
    pending: int
    processing: int
    oldest_pending_at: datetime | None


def queue_states(connection: Connection, model_names: list[str]) -> list[QueueState]:
    """Pending and processing requests per model (the queue's partial indexes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE status = 'processing'),"
            " min(created_at) FILTER (WHERE status = 'pending')"
            " FROM model_retraining_requests"
            " WHERE model_name = ANY(%s) AND status IN ('pending', 'processing')"
            " GROUP BY model_name",
            (model_names,),
        )
        return [QueueState(*values) for values in cursor.fetchall()]


@dataclass(frozen=True)
class LiveSplit:
    model_name: str
    challenger_version: str
    status: str
    traffic_percent: int


def live_splits(connection: Connection, model_names: list[str]) -> list[LiveSplit]:
    """The running or paused A/B test of each model (at most one: ``ab_tests_one_live``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, challenger_version, status, traffic_percent FROM ab_tests"
            " WHERE model_name = ANY(%s) AND status IN ('running', 'paused')",
            (model_names,),
        )
        return [LiveSplit(*values) for values in cursor.fetchall()]


def alert_counts(
    connection: Connection, model_names: list[str], *, since: datetime
) -> list[tuple[str, str, int]]:
    """(model, kind, alerts raised since ``since``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, kind, count(*) FROM alerts"
            " WHERE model_name = ANY(%s) AND raised_at >= %s GROUP BY 1, 2 ORDER BY 1, 2",
            (model_names, since),
        )
        return [(name, kind, count) for name, kind, count in cursor.fetchall()]
