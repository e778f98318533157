"""The ``health_checks`` table: one row per model and health-check run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection


def save_check(
    connection: Connection,
    *,
    model_name: str,
    checked_at: datetime,
    status: str,
    champion_version: str | None,
    details: dict[str, Any],
    trigger_key: str | None,
) -> None:
    """Insert the check, or overwrite the one of the same ``trigger_key`` (a retried task)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO health_checks
                (model_name, checked_at, status, champion_version, details, trigger_key)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (model_name, trigger_key) DO UPDATE SET
                checked_at = EXCLUDED.checked_at, status = EXCLUDED.status,
                champion_version = EXCLUDED.champion_version, details = EXCLUDED.details
            """,
            (model_name, checked_at, status, champion_version, json.dumps(details), trigger_key),
        )
