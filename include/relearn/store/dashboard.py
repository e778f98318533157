"""Read-only, bounded queries behind the Relearn page: one model's recent state tables.

Every query is limited (a row count or a time window over an indexed ``(model_name, time)``
column), so the page costs the same on a day-old and a year-old database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relearn.store.monitoring import SOUND_LATENCY

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

BUCKETS = ("hour", "day")


def _dicts(connection: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def alias_history(connection: Connection, model: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: each alias change with when, who and why."""
    return _dicts(
        connection,
        "SELECT alias, version, previous_version, changed_at, changed_by, reason "
        "FROM alias_history WHERE model_name = %(model)s "
        "ORDER BY changed_at DESC, id DESC LIMIT %(limit)s",
        {"model": model, "limit": limit},
    )


def recent_runs(connection: Connection, model: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: retraining runs with their metrics, parameters and lineage."""
    return _dicts(
        connection,
        "SELECT id, source, status, dataset_size, metrics, params, model_version, started_at, "
        "completed_at, error_message, log_url, airflow_url, dag_id, trigger_key, mlflow_run_id, "
        "request_id, created_at FROM model_retraining_runs WHERE model_name = %(model)s "
        "ORDER BY created_at DESC LIMIT %(limit)s",
        {"model": model, "limit": limit},
    )


def run_analyses(
    connection: Connection, model: str, run_ids: list[Any]
) -> dict[Any, dict[str, Any]]:
    """The error analyses of these retraining runs' holdouts (headline figures), by run id."""
    rows = _dicts(
        connection,
        "SELECT retraining_run_id, status, rows, error_rate, significant_segments, "
        "findings -> 'suggestions' -> 0 ->> 'text' AS first_suggestion FROM error_analyses "
        "WHERE model_name = %(model)s AND scope = 'retraining_run' "
        "AND retraining_run_id = ANY(%(ids)s::uuid[])",
        {"model": model, "ids": [str(i) for i in run_ids]},
    )
    return {row.pop("retraining_run_id"): row for row in rows}


def recent_requests(connection: Connection, model: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: the model's retraining requests and the run that served each."""
    return _dicts(
        connection,
        "SELECT id, reason, priority, status, attempts, retraining_run_id, processed_at, "
        "error_message, created_at, updated_at FROM model_retraining_requests "
        "WHERE model_name = %(model)s ORDER BY created_at DESC LIMIT %(limit)s",
        {"model": model, "limit": limit},
    )


def drift_history(connection: Connection, model: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: drift checks with score, verdict and the drifted features' names."""
    return _dicts(
        connection,
        "SELECT id, checked_at, model_version, score, threshold, verdict, rows, labelled_rows, "
        "drifted_features, action, action_reason FROM drift_reports "
        "WHERE model_name = %(model)s ORDER BY checked_at DESC LIMIT %(limit)s",
        {"model": model, "limit": limit},
    )


def drift_features(connection: Connection, report_id: Any) -> dict[str, Any]:
    """The per-feature results of one drift report (``features`` JSON, may be large)."""
    rows = _dicts(
        connection, "SELECT features FROM drift_reports WHERE id = %(id)s", {"id": report_id}
    )
    return rows[0]["features"] if rows else {}


@dataclass(frozen=True)
class TrafficBucket:
    """One arm's predictions in one hour or day (labelled by when they were predicted)."""

    start: datetime
    arm: str
    predictions: int
    labelled: int
    correct: int
    latency_p95_ms: float | None


def traffic(
    connection: Connection, model: str, *, since: datetime, until: datetime, bucket: str
) -> list[TrafficBucket]:
    """Predictions, outcomes and latency p95 per bucket and arm in ``[since, until)``.

    Reads the ``(model_name, predicted_at)`` index range only; outcomes count once arrived.
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT date_trunc(%(bucket)s, predicted_at, 'UTC') AS start, served_by, count(*), "
            "count(actual_label), count(*) FILTER (WHERE actual_label = predicted_label), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            f"FILTER (WHERE {SOUND_LATENCY}) "
            "FROM prediction_log WHERE model_name = %(model)s "
            "AND predicted_at >= %(since)s AND predicted_at < %(until)s "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            {"bucket": bucket, "model": model, "since": since, "until": until},
        )
        return [
            TrafficBucket(start, arm, n, labelled, correct, None if p95 is None else float(p95))
            for start, arm, n, labelled, correct, p95 in cursor.fetchall()
        ]


LIVE_TEST_STATUSES = ("pending", "running", "paused")


def latest_test(connection: Connection, model: str) -> dict[str, Any] | None:
    """The model's newest live A/B test (pending, running, paused), else its newest test."""
    rows = _dicts(
        connection,
        "SELECT id, champion_version, challenger_version, status, traffic_percent, stages, "
        "policy, stage_index, approval, reason, created_at, started_at, ended_at "
        "FROM ab_tests WHERE model_name = %(model)s "
        "ORDER BY status = ANY(%(live)s) DESC, created_at DESC LIMIT 1",
        {"model": model, "live": list(LIVE_TEST_STATUSES)},
    )
    return rows[0] if rows else None


def test_decisions(connection: Connection, test_id: Any, limit: int) -> list[dict[str, Any]]:
    """Oldest first: the decisions of one test (the timeline), the newest ``limit`` of them."""
    rows = _dicts(
        connection,
        "SELECT decided_at, action, traffic_before, traffic_after, reason, numbers, decided_by "
        "FROM ab_decisions WHERE test_id = %(test)s "
        "ORDER BY decided_at DESC, id DESC LIMIT %(limit)s",
        {"test": test_id, "limit": limit},
    )
    return rows[::-1]
