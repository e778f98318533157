"""``drift_reports`` rows: one per check, keyed by (model, run key) so a retried check reuses it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

# Verdicts of a whole check (the drift statistics' own verdicts plus performance decay, seen
# in outcomes or, while they are late, estimated from confidences).
STABLE, DRIFTED, DECAYED, INSUFFICIENT_DATA = "stable", "drifted", "decayed", "insufficient_data"
ESTIMATED_DECAY = "estimated_decay"
# What the check did about it.
NONE, RETRAIN, COOLDOWN, DRY_RUN = "none", "retrain", "cooldown", "dry_run"
COMEBACK = "comeback"  # a previous champion is champion again (relearn.drift.comeback)

_NAMESPACE = uuid.UUID("6f0d7c1e-2b54-4f55-9a51-5d0c0e7f4a10")
_COLUMNS = (
    "id, model_name, model_version, checked_at, window_start, rows, labelled_rows, score, "
    "threshold, verdict, drifted_features, features, prediction, performance, action, "
    "action_reason, report_uri, retraining_run_id, trigger_key, estimate"
)


@dataclass(frozen=True)
class DriftReportRow:
    id: uuid.UUID
    model_name: str
    model_version: str | None
    checked_at: datetime
    window_start: datetime
    rows: int
    labelled_rows: int
    score: float | None
    threshold: float
    verdict: str
    drifted_features: list[str]
    features: list[dict[str, Any]]
    prediction: dict[str, Any] | None
    performance: dict[str, Any] | None
    action: str
    action_reason: str | None
    report_uri: str | None
    retraining_run_id: uuid.UUID | None
    trigger_key: str
    # Per checked version: CBPE estimate, realised accuracy and ECE (relearn.drift.estimate).
    estimate: list[dict[str, Any]] | None = None

    @property
    def wants_retraining(self) -> bool:
        return self.action == RETRAIN


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def report_id(model_name: str, trigger_key: str) -> uuid.UUID:
    """The id a check's report gets, known before anything is written (retries agree on it)."""
    return uuid.uuid5(_NAMESPACE, f"{model_name}\x00{trigger_key}")


def get_report(connection: Connection, model_name: str, trigger_key: str) -> DriftReportRow | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM drift_reports WHERE model_name = %s AND trigger_key = %s",
            (model_name, trigger_key),
        )
        row = cursor.fetchone()
    return None if row is None else DriftReportRow(*row)


def save_report(connection: Connection, report: DriftReportRow) -> DriftReportRow:
    """Insert the report unless this (model, run key) already has one; return the stored row."""
    values = {
        **report.__dict__,
        "id": str(report.id),
        "drifted_features": json.dumps(report.drifted_features),
        "features": json.dumps(report.features),
        "prediction": None if report.prediction is None else json.dumps(report.prediction),
        "performance": None if report.performance is None else json.dumps(report.performance),
        "estimate": None if report.estimate is None else json.dumps(report.estimate),
        "retraining_run_id": _text(report.retraining_run_id),
    }
    names = [name.strip() for name in _COLUMNS.split(",")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO drift_reports ({_COLUMNS}) VALUES ("
            + ", ".join(f"%({name})s" for name in names)
            + ") ON CONFLICT (model_name, trigger_key) DO NOTHING",
            values,
        )
    stored = get_report(connection, report.model_name, report.trigger_key)
    if stored is None:  # cannot happen inside one transaction; say so loudly if it does
        raise RuntimeError(f"drift report {report.id} vanished right after being written")
    return stored


def link_run(connection: Connection, report: uuid.UUID | str, run_id: uuid.UUID | str) -> None:
    """Point the report at the retraining run it triggered."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE drift_reports SET retraining_run_id = %s WHERE id = %s",
            (str(run_id), str(report)),
        )


def recent_reports(
    connection: Connection, model_name: str, limit: int = 48
) -> list[DriftReportRow]:
    """The model's latest reports, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM drift_reports WHERE model_name = %s "
            "ORDER BY checked_at DESC, created_at DESC LIMIT %s",
            (model_name, limit),
        )
        return [DriftReportRow(*row) for row in cursor.fetchall()]


def last_action_at(
    connection: Connection, model_name: str, action: str, until: datetime
) -> datetime | None:
    """When the model's latest check before ``until`` that took ``action`` ran, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(checked_at) FROM drift_reports "
            "WHERE model_name = %s AND action = %s AND checked_at < %s",
            (model_name, action, until),
        )
        return cursor.fetchone()[0]
