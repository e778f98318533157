"""``ab_tests`` rows as far as retraining needs them: request a test, see whether one is live.

A challenger from drift-triggered retraining asks for a test at the first traffic stage; the
A/B promotion workflow picks pending tests up and owns them from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid

    from psycopg2.extensions import connection as Connection

PENDING, RUNNING, PAUSED = "pending", "running", "paused"
PROMOTED, ROLLED_BACK, ABORTED = "promoted", "rolled_back", "aborted"
# A test in one of these states holds the model: no second challenger is tested meanwhile.
LIVE = (PENDING, RUNNING, PAUSED)


@dataclass(frozen=True)
class ABTestRef:
    id: uuid.UUID
    model_name: str
    champion_version: str | None
    challenger_version: str
    status: str
    traffic_percent: int


_COLUMNS = "id, model_name, champion_version, challenger_version, status, traffic_percent"


def request_test(
    connection: Connection,
    *,
    model_name: str,
    champion_version: str | None,
    challenger_version: str,
    stages: list[int],
    retraining_run_id: uuid.UUID | str | None,
    reason: str,
) -> ABTestRef:
    """A ``pending`` test of the challenger (once per version); returns the stored row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ab_tests (model_name, champion_version, challenger_version, stages, "
            "retraining_run_id, reason) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (model_name, challenger_version) DO NOTHING",
            (
                model_name,
                champion_version,
                challenger_version,
                json.dumps(stages),
                None if retraining_run_id is None else str(retraining_run_id),
                reason,
            ),
        )
        cursor.execute(
            f"SELECT {_COLUMNS} FROM ab_tests WHERE model_name = %s AND challenger_version = %s",
            (model_name, challenger_version),
        )
        return ABTestRef(*cursor.fetchone())


def live_test(connection: Connection, model_name: str) -> ABTestRef | None:
    """The model's pending, running or paused test, if any (the oldest first)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM ab_tests WHERE model_name = %s AND status = ANY(%s) "
            "ORDER BY created_at LIMIT 1",
            (model_name, list(LIVE)),
        )
        row = cursor.fetchone()
    return None if row is None else ABTestRef(*row)
