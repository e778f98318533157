"""``model_retraining_runs`` rows: one per (trigger, model), written so retries are harmless.

A run (its id: the retraining run id) is keyed by its ``trigger_key`` -- the Airflow run id of
the DAG run that started it, or a key the CLI makes (``cli__<uuid>``) -- and the model, so
recording the start twice returns the same row; finishing only moves a ``running`` row, so
a late retry can never turn a ``completed`` run into ``failed`` or the other way round.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg2.extras import execute_values

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

# Retrainings the drift monitor asked for: the inputs moved, or the accuracy measurably fell.
DRIFT_TRIGGERED, DECAY_TRIGGERED = "drift_triggered", "decay_triggered"
SOURCES = ("auto_daily", "manual", DECAY_TRIGGERED, DRIFT_TRIGGERED, "auto_volume")
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"


@dataclass(frozen=True)
class RetrainingRun:
    id: uuid.UUID
    model_name: str
    source: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    model_version: str | None
    mlflow_run_id: str | None
    dataset_digest: str | None
    error_message: str | None
    trigger_key: str | None
    airflow_url: str | None = None  # the DAG run's page (its task instances and their logs)

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, FAILED)


_COLUMNS = (
    "id, model_name, source, status, params, metrics, model_version, mlflow_run_id, "
    "dataset_digest, error_message, trigger_key, airflow_url"
)


def _row(values: tuple) -> RetrainingRun:
    return RetrainingRun(*values)


def start_run(
    connection: Connection,
    *,
    model_name: str,
    trigger_key: str,
    source: str,
    params: dict[str, Any],
    started_at: datetime,
    dag_id: str | None = None,
    triggered_by: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
    airflow_url: str | None = None,
) -> RetrainingRun:
    """The run of ``(trigger_key, model_name)``, created as ``running`` the first time only."""
    if source not in SOURCES:
        raise ValueError(f"unknown source '{source}' (choose from {', '.join(SOURCES)})")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO model_retraining_runs (id, model_name, source, status, params,
                fine_tune_flag, started_at, dag_id, trigger_key, triggered_by, request_id,
                airflow_url)
            VALUES (%s, %s, %s, 'running', %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (trigger_key, model_name) DO NOTHING
            """,
            (
                uuid.uuid4(),
                model_name,
                source,
                json.dumps(params),
                bool(params.get("fine_tune", True)),
                started_at,
                dag_id,
                trigger_key,
                triggered_by,
                request_id,
                airflow_url,
            ),
        )
    run = find_run(connection, trigger_key, model_name)
    if run is None:  # inserted or found above: only a concurrent DELETE gets here
        raise LookupError(f"the {model_name} run of {trigger_key} vanished while being recorded")
    return run


def get_run(connection: Connection, retraining_run_id: uuid.UUID | str) -> RetrainingRun:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM model_retraining_runs WHERE id = %s", (str(retraining_run_id),)
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no retraining run with id {retraining_run_id}")
    return _row(row)


def find_run(connection: Connection, trigger_key: str, model_name: str) -> RetrainingRun | None:
    """The model's run started by ``trigger_key`` (e.g. an Airflow run id), if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM model_retraining_runs "
            "WHERE trigger_key = %s AND model_name = %s",
            (trigger_key, model_name),
        )
        row = cursor.fetchone()
    return _row(row) if row else None


def update_run(connection: Connection, retraining_run_id: uuid.UUID | str, **fields: Any) -> None:
    """Set progress fields of a running run (dataset digest, MLflow run, dataset size, ...)."""
    allowed = {"dataset_digest", "mlflow_run_id", "dataset_size", "log_url", "model_version"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)} on a retraining run")
    assignments = ", ".join(f"{name} = %({name})s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE model_retraining_runs SET {assignments}, updated_at = now() "
            "WHERE id = %(id)s AND status = 'running'",
            {**fields, "id": str(retraining_run_id)},
        )


def merge_metrics(
    connection: Connection, retraining_run_id: uuid.UUID | str, metrics: dict
) -> None:
    """Add keys to the run's metrics (each step contributes its part)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE model_retraining_runs SET metrics = coalesce(metrics, '{}'::jsonb) || %s, "
            "updated_at = now() WHERE id = %s",
            (json.dumps(metrics), str(retraining_run_id)),
        )


def complete_run(
    connection: Connection,
    retraining_run_id: uuid.UUID | str,
    *,
    completed_at: datetime,
    metrics: dict[str, Any],
    model_version: str | None = None,
) -> bool:
    """``running`` -> ``completed``; False when the run had already finished."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE model_retraining_runs
            SET status = 'completed', completed_at = %s, model_version = %s,
                metrics = coalesce(metrics, '{}'::jsonb) || %s, updated_at = now()
            WHERE id = %s AND status = 'running'
            """,
            (completed_at, model_version, json.dumps(metrics), str(retraining_run_id)),
        )
        return cursor.rowcount == 1


def fail_run(
    connection: Connection,
    retraining_run_id: uuid.UUID | str,
    *,
    completed_at: datetime,
    error: str,
) -> bool:
    """``running`` -> ``failed`` with the reason; False when the run had already finished."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE model_retraining_runs
            SET status = 'failed', completed_at = %s, error_message = %s, updated_at = now()
            WHERE id = %s AND status = 'running'
            """,
            (completed_at, error[:4000], str(retraining_run_id)),
        )
        return cursor.rowcount == 1


def running_run(connection: Connection, model_name: str) -> tuple[uuid.UUID, str] | None:
    """(id, source) of a retraining run of the model that is still running, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, source FROM model_retraining_runs WHERE model_name = %s "
            "AND status = 'running' ORDER BY created_at LIMIT 1",
            (model_name,),
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def last_window_end(
    connection: Connection, model_name: str, sources: tuple[str, ...], *, until: datetime
) -> datetime | None:
    """The latest ``window_end`` (the "now" a run was started at) of the model's runs from
    ``sources`` that is not after ``until``: replays of older periods see their own past."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max((params->>'window_end')::timestamptz) FROM model_retraining_runs "
            "WHERE model_name = %s AND source = ANY(%s) "
            "AND (params->>'window_end')::timestamptz <= %s",
            (model_name, list(sources), until),
        )
        return cursor.fetchone()[0]


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity; keep such values readable as strings ("nan", "inf")."""
    return {
        key: str(value) if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in row.items()
    }


def quarantine_rows(
    connection: Connection,
    retraining_run_id: uuid.UUID | str,
    rows: list[tuple[str, list[str], dict]],
) -> int:
    """Keep rows that failed validation with their reasons: (prediction_id, reasons, row)."""
    values = [
        (
            str(retraining_run_id),
            str(pid),
            json.dumps(reasons),
            json.dumps(_json_safe(row), default=str),
        )
        for pid, reasons, row in rows
    ]
    if not values:
        return 0
    with connection.cursor() as cursor:
        execute_values(
            cursor,
            "INSERT INTO prediction_quarantine "
            "(retraining_run_id, prediction_id, reasons, row_data) "
            "VALUES %s ON CONFLICT (retraining_run_id, prediction_id) "
            "DO UPDATE SET reasons = EXCLUDED.reasons",
            values,
        )
        return len(values)
