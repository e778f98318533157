"""``alias_moves`` (intended alias writes, recorded first) and ``alias_history`` (what happened)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class AliasMove:
    id: uuid.UUID
    model_name: str
    moves: list[dict[str, Any]]  # {"alias", "version" (None: remove), "previous"}
    reason: str
    changed_by: str
    ab_test_id: uuid.UUID | None
    test_status: str | None
    created_at: datetime


_MOVE_COLUMNS = "id, model_name, moves, reason, changed_by, ab_test_id, test_status, created_at"


def record_move(
    connection: Connection,
    *,
    model_name: str,
    moves: list[dict[str, Any]],
    reason: str,
    changed_by: str,
    ab_test_id: uuid.UUID | str | None = None,
    test_status: str | None = None,
) -> AliasMove:
    """The intended writes, as ``pending`` (one pending move per model at a time)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO alias_moves (model_name, moves, reason, changed_by, ab_test_id, "
            f"test_status) VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_MOVE_COLUMNS}",
            (
                model_name,
                json.dumps(moves),
                reason,
                changed_by,
                None if ab_test_id is None else str(ab_test_id),
                test_status,
            ),
        )
        return AliasMove(*cursor.fetchone())


def pending_move(connection: Connection, model_name: str) -> AliasMove | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_MOVE_COLUMNS} FROM alias_moves WHERE model_name = %s "
            "AND status = 'pending' FOR UPDATE",
            (model_name,),
        )
        row = cursor.fetchone()
    return None if row is None else AliasMove(*row)


def finish_move(connection: Connection, move: AliasMove, *, at: datetime) -> None:
    """Mark the move done and write one history row per alias it changed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE alias_moves SET status = 'done', done_at = %s WHERE id = %s "
            "AND status = 'pending'",
            (at, str(move.id)),
        )
        if cursor.rowcount != 1:
            return  # finished by someone else meanwhile
        for item in move.moves:
            cursor.execute(
                "INSERT INTO alias_history (model_name, alias, version, previous_version, "
                "changed_at, changed_by, reason, move_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    move.model_name,
                    item["alias"],
                    item["version"],
                    item.get("previous"),
                    at,
                    move.changed_by,
                    move.reason,
                    str(move.id),
                ),
            )


def abandon_move(connection: Connection, move: AliasMove, *, reason: str) -> None:
    """Give up a pending move that cannot be applied (its history is not written)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE alias_moves SET status = 'abandoned', done_at = now(), "
            "reason = reason || ' [abandoned: ' || %s || ']' WHERE id = %s",
            (reason[:500], str(move.id)),
        )


@dataclass(frozen=True)
class AliasChange:
    model_name: str
    alias: str
    version: str | None
    previous_version: str | None
    changed_at: datetime
    changed_by: str
    reason: str


def history(connection: Connection, model_name: str, alias: str | None = None) -> list[AliasChange]:
    """The model's alias changes, oldest first (optionally of one alias)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, alias, version, previous_version, changed_at, changed_by, reason "
            "FROM alias_history WHERE model_name = %(model)s "
            "AND (%(alias)s IS NULL OR alias = %(alias)s) ORDER BY changed_at, id",
            {"model": model_name, "alias": alias},
        )
        return [AliasChange(*row) for row in cursor.fetchall()]
