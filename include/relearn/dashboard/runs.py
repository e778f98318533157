"""Retraining runs (newest first) and the request queue, as the page shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from relearn.dashboard.links import airflow_run_path, mlflow_run_url
from relearn.retraining.options import recorded_window
from relearn.store import dashboard

if TYPE_CHECKING:
    import uuid

    from psycopg2.extensions import connection as Connection

RUNS_LIMIT = 20
REQUESTS_LIMIT = 20
# The candidate's scores on the holdout, as ``relearn.evaluation`` names them.
HOLDOUT_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


@dataclass(frozen=True)
class RunAnalysis:
    """The champion's errors on the run's holdout (its error analysis, headline only)."""

    status: str
    rows: int
    error_rate: float | None
    significant_segments: int
    first_suggestion: str | None


@dataclass(frozen=True)
class RunView:
    id: uuid.UUID
    source: str | None
    status: str | None
    model_version: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    dataset_size: int | None
    window_start: datetime | None
    window_end: datetime | None
    holdout: dict[str, float]
    champion_holdout: dict[str, float]
    blessed: bool | None
    gate_reasons: list[str]
    outcome: str | None
    error_message: str | None
    mlflow_run_url: str | None
    airflow_url: str | None  # the DAG run's page, as the run recorded it
    airflow_run_path: str | None  # older rows without ``airflow_url``: the path computed here
    request_id: uuid.UUID | None
    analysis: RunAnalysis | None


@dataclass(frozen=True)
class RequestView:
    id: uuid.UUID
    reason: str | None
    priority: str
    status: str
    attempts: int
    retraining_run_id: uuid.UUID | None
    processed_at: datetime | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime


def _scores(found: Any) -> dict[str, float]:
    if not isinstance(found, dict):
        return {}
    return {k: found[k] for k in HOLDOUT_METRICS if isinstance(found.get(k), int | float)}


def _window(params: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The run's data window (``recorded_window``), or as much of it as is recorded."""
    try:
        return recorded_window(params)
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    try:
        return None, datetime.fromisoformat(params["window_end"])
    except (KeyError, TypeError, ValueError):
        return None, None


def _reasons(gate: dict[str, Any]) -> list[str]:
    reasons = gate.get("reasons") or []
    return [str(r) for r in reasons] if isinstance(reasons, list) else [str(reasons)]


def _run(
    row: dict[str, Any],
    mlflow_ui: str,
    experiment_id: str | None,
    analysis: dict[str, Any] | None = None,
) -> RunView:
    metrics = row["metrics"] or {}
    gate = metrics.get("gate") if isinstance(metrics.get("gate"), dict) else {}
    start, end = _window(row["params"] or {})
    # A run started by a DAG records its DAG run's page; older rows are keyed by the Airflow
    # run id, so their path is computed. CLI runs have no DAG run.
    recorded = row["airflow_url"]
    dag_run = (
        airflow_run_path(row["dag_id"], row["trigger_key"])
        if row["dag_id"] and not recorded
        else None
    )
    return RunView(
        id=row["id"],
        source=row["source"],
        status=row["status"],
        model_version=row["model_version"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        dataset_size=row["dataset_size"],
        window_start=start,
        window_end=end,
        holdout=_scores(metrics.get("holdout")),
        champion_holdout=_scores(metrics.get("champion_holdout")),
        blessed=gate.get("blessed"),
        gate_reasons=_reasons(gate),
        outcome=metrics.get("outcome"),
        error_message=row["error_message"],
        mlflow_run_url=(
            mlflow_run_url(mlflow_ui, experiment_id, row["mlflow_run_id"])
            if row["mlflow_run_id"]
            else None
        ),
        airflow_url=recorded,
        airflow_run_path=dag_run,
        request_id=row["request_id"],
        analysis=None if analysis is None else RunAnalysis(**analysis),
    )


def read_runs(
    connection: Connection, model: str, mlflow_ui: str, experiment_id: str | None
) -> list[RunView]:
    rows = dashboard.recent_runs(connection, model, RUNS_LIMIT)
    analyses = dashboard.run_analyses(connection, model, [row["id"] for row in rows])
    return [_run(row, mlflow_ui, experiment_id, analyses.get(row["id"])) for row in rows]


def read_requests(connection: Connection, model: str) -> list[RequestView]:
    return [
        RequestView(**row) for row in dashboard.recent_requests(connection, model, REQUESTS_LIMIT)
    ]
