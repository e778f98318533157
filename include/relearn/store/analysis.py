"""``error_analyses`` rows: one per (model, scope, key), rewritten by a retried analysis."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

# Scopes: a retraining run's holdout, or a day of the prediction log.
RETRAINING_RUN, DAILY = "retraining_run", "daily"


@dataclass(frozen=True)
class AnalysisRow:
    """One stored analysis; ``findings`` is ``relearn.analysis.report.Findings.to_dict()``."""

    model_name: str
    scope: str
    analysis_key: str
    retraining_run_id: uuid.UUID | None
    champion_version: str | None
    compared_role: str | None
    compared_version: str | None
    window_start: datetime | None
    window_end: datetime | None
    status: str
    rows: int
    errors: int
    error_rate: float | None
    ece: float | None
    significant_segments: int
    excluded_rows: int | None
    findings: dict[str, Any]
    artifact_uri: str | None
    analysed_at: datetime


_NAMES = [f.name for f in fields(AnalysisRow)]
_COLUMNS = ", ".join(_NAMES)


def save_analysis(connection: Connection, row: AnalysisRow) -> None:
    """Insert the analysis, or replace the one stored under the same (model, scope, key)."""
    values = {
        **row.__dict__,
        "retraining_run_id": None if row.retraining_run_id is None else str(row.retraining_run_id),
        "findings": json.dumps(row.findings),
    }
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}"
        for name in _NAMES
        if name not in ("model_name", "scope", "analysis_key")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO error_analyses ({_COLUMNS}) VALUES ("
            + ", ".join(f"%({name})s" for name in _NAMES)
            + f") ON CONFLICT (model_name, scope, analysis_key) DO UPDATE SET {updates}",
            values,
        )


def get_analysis(
    connection: Connection, model_name: str, scope: str, analysis_key: str
) -> AnalysisRow | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM error_analyses "
            "WHERE model_name = %s AND scope = %s AND analysis_key = %s",
            (model_name, scope, analysis_key),
        )
        row = cursor.fetchone()
    return None if row is None else AnalysisRow(*row)


def latest_analyses(
    connection: Connection, model_name: str, *, scope: str | None = None, limit: int = 1
) -> list[AnalysisRow]:
    """The model's most recent analyses (of one scope, or any), newest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM error_analyses WHERE model_name = %s "
            "AND (%s::text IS NULL OR scope = %s) ORDER BY analysed_at DESC, id DESC LIMIT %s",
            (model_name, scope, scope, limit),
        )
        return [AnalysisRow(*row) for row in cursor.fetchall()]
