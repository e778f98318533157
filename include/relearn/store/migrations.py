"""Versioned SQL migrations (``migrations/NNNN_name.sql``) with a version table.

Each file runs in its own transaction under an advisory lock, so concurrent starters (the
scheduler and a test, say) never apply a migration twice; re-running is a no-op.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from relearn.store.db import transaction

log = logging.getLogger(__name__)

_LOCK_KEY = 0x52454C45  # "RELE": one advisory lock id for every Relearn migration run
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("relearn.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(url: str) -> list[int]:
    """Apply pending migrations; returns the versions applied now (empty when up to date)."""
    applied_now: list[int] = []
    for migration in available_migrations():
        with transaction(url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS relearn_schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cursor.execute(
                "SELECT 1 FROM relearn_schema_version WHERE version = %s", (migration.version,)
            )
            if cursor.fetchone():
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            cursor.execute(migration.sql)
            cursor.execute(
                "INSERT INTO relearn_schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now


def current_version(url: str) -> int:
    with transaction(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.relearn_schema_version') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT coalesce(max(version), 0) FROM relearn_schema_version")
        return int(cursor.fetchone()[0])
