"""Retention's SQL: what is old enough to go, its archive records, and small-batch deletes.

A prediction is deleted only by ``delete_archived``: by primary key, and only while its
content digest (``ROW_DIGEST``: the whole row plus its feedback) still equals the digest
stored in the verified archive, so a row that changed after it was archived stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from psycopg2 import sql

if TYPE_CHECKING:
    import uuid
    from datetime import date, datetime

    from psycopg2.extensions import connection as Connection

ARCHIVED, DELETED = "archived", "deleted"

# The row as Postgres prints it plus its feedback: any change to either changes the digest.
# ``p::text`` covers every column, including ones a later migration adds.
_FEEDBACK_TEXT = "string_agg(f::text, ',' ORDER BY f.id)"
ROW_DIGEST = (
    f"md5(p::text || coalesce((SELECT {_FEEDBACK_TEXT} "
    "FROM feedback f WHERE f.prediction_id = p.prediction_id), ''))"
)
# The export reads a row's feedback once: as JSON for the file and as text for the digest
# (the same digest as ``ROW_DIGEST``).
_EXPORT_FEEDBACK = (
    f"LEFT JOIN LATERAL (SELECT json_agg(f ORDER BY f.id)::text AS json, {_FEEDBACK_TEXT} "
    "AS text FROM feedback f WHERE f.prediction_id = p.prediction_id) fb ON true"
)
# Numbers and booleans keep their type in the Parquet file; everything else (ids, JSON,
# timestamps, text) is exported as Postgres prints it, which no value can fail.
_KINDS = {16: "bool", 20: "int", 21: "int", 23: "int", 700: "float", 701: "float"}
TEXT = "text"
_DAY = "p.predicted_at >= %(day)s::date AND p.predicted_at < %(day)s::date + 1"
# The instants a UTC day (a Python date, years 1 to 9999) can hold. Other services write the
# log and Postgres accepts more: '-infinity', 'infinity', BC, up to year 294276. Rows outside
# are the model's "unplaceable" bucket, archived apart (an archive with no day).
_PLACEABLE = (
    "p.predicted_at >= '0001-01-01 00:00:00+00'::timestamptz "
    "AND p.predicted_at < '10000-01-01 00:00:00+00'::timestamptz"
)
_UNPLACEABLE = f"NOT ({_PLACEABLE})"


def _bucket(day: date | None) -> str:
    """The rows of a UTC day, or (``None``) of the unplaceable bucket."""
    return _UNPLACEABLE if day is None else _DAY


@dataclass(frozen=True)
class Archive:
    """A ``prediction_archives`` row: one verified Parquet file of one model's day (or, with
    ``day`` None, of its unplaceable bucket)."""

    id: uuid.UUID
    model_name: str
    day: date | None
    part: int
    row_count: int
    digest: str
    file_sha256: str
    artifact_uri: str
    mlflow_run_id: str
    status: str
    rows_deleted: int


_ARCHIVE_COLUMNS = (
    "id, model_name, day, part, row_count, digest, file_sha256, artifact_uri, mlflow_run_id, "
    "status, rows_deleted"
)


def canonical_session(connection: Connection) -> None:
    """Days are UTC days, and a row prints (so digests) the same in every transaction,
    whatever the server's or the client's (``PGTZ``) defaults."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL TIME ZONE 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
            "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1"
        )


def running_windows(connection: Connection, model_name: str, *, lock: bool) -> list[dict]:
    """The ``params`` of the model's running retraining runs (their windows are pinned).

    With ``lock``, a SHARE lock on the runs table until the transaction ends: no run can
    start between this read and a delete in the same transaction.
    """
    with connection.cursor() as cursor:
        if lock:
            cursor.execute("LOCK TABLE model_retraining_runs IN SHARE MODE")
        cursor.execute(
            "SELECT params FROM model_retraining_runs WHERE model_name = %s AND status = 'running'",
            (model_name,),
        )
        return [row[0] or {} for row in cursor.fetchall()]


def oldest_day(
    connection: Connection, model_name: str, *, from_day: date, before: date
) -> date | None:
    """The earliest UTC day from ``from_day`` on and before ``before`` with rows of the model.

    Never earlier than ``from_day`` (so a caller stepping past each answer ends) and never a
    day Python cannot hold (``from_day`` is a date, so year 1 or later).
    """
    canonical_session(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (min(predicted_at) AT TIME ZONE 'UTC')::date FROM prediction_log "
            "WHERE model_name = %(model)s AND predicted_at >= %(from)s::date "
            "AND predicted_at < %(before)s::date",
            {"model": model_name, "before": before, "from": from_day},
        )
        return cursor.fetchone()[0]


def day_rows(connection: Connection, model_name: str, day: date | None) -> int:
    """Rows of the model's UTC ``day`` (``None``: of its unplaceable bucket)."""
    canonical_session(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM prediction_log p WHERE p.model_name = %(model)s AND "
            + _bucket(day),
            {"model": model_name, "day": day},
        )
        return int(cursor.fetchone()[0])


def log_columns(connection: Connection) -> list[tuple[str, str]]:
    """(name, kind) of every ``prediction_log`` column in table order; kind: bool, int,
    float or text (how it is exported)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM prediction_log LIMIT 0")
        return [(column.name, _KINDS.get(column.type_code, TEXT)) for column in cursor.description]


def export_csv(
    connection: Connection,
    model_name: str,
    day: date | None,
    *,
    columns: list[tuple[str, str]],
    out: BinaryIO,
) -> None:
    """Write the day's rows (``None``: the unplaceable bucket's) in ``prediction_id`` order as
    CSV to ``out``: ``columns``, then the row's feedback (JSON text or NULL), then its digest.

    One ``COPY``: one consistent snapshot, and the server prints every value (as ``::text``
    would) with no per-value work in Python.
    """
    canonical_session(connection)
    selected = [sql.SQL("p.{}").format(sql.Identifier(name)) for name, _ in columns]
    query = sql.SQL(
        "SELECT {columns}, fb.json, md5(p::text || coalesce(fb.text, '')) "
        "FROM prediction_log p " + _EXPORT_FEEDBACK + " "
        "WHERE p.model_name = %(model)s AND " + _bucket(day) + " ORDER BY p.prediction_id"
    ).format(columns=sql.SQL(", ").join(selected))
    with connection.cursor() as cursor:
        select = cursor.mogrify(query.as_string(connection), {"model": model_name, "day": day})
        cursor.copy_expert(f"COPY ({select.decode()}) TO STDOUT WITH (FORMAT csv)", out)


def archives(connection: Connection, model_name: str, day: date | None) -> list[Archive]:
    """The day's (``None``: the unplaceable bucket's) archives, oldest part first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_ARCHIVE_COLUMNS} FROM prediction_archives "
            "WHERE model_name = %s AND day IS NOT DISTINCT FROM %s ORDER BY part",
            (model_name, day),
        )
        return [Archive(*row) for row in cursor.fetchall()]


def record_archive(
    connection: Connection,
    *,
    model_name: str,
    day: date | None,
    part: int,
    row_count: int,
    digest: str,
    file_sha256: str,
    artifact_uri: str,
    mlflow_run_id: str,
    trigger_key: str,
) -> Archive:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO prediction_archives (model_name, day, part, row_count, digest, "
            "file_sha256, artifact_uri, mlflow_run_id, trigger_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"RETURNING {_ARCHIVE_COLUMNS}",
            (
                model_name,
                day,
                part,
                row_count,
                digest,
                file_sha256,
                artifact_uri,
                mlflow_run_id,
                trigger_key,
            ),
        )
        return Archive(*cursor.fetchone())


def delete_archived(
    connection: Connection,
    model_name: str,
    ids: list[str],
    digests: list[str],
    *,
    before: datetime | None,
) -> int:
    """Delete the rows among ``ids`` whose digest is unchanged and that are still predicted
    before ``before`` (``None``: still in the unplaceable bucket)."""
    canonical_session(connection)
    still_old = _UNPLACEABLE if before is None else "p.predicted_at < %(before)s"
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM prediction_log p USING unnest(%(ids)s::uuid[], %(digests)s::text[]) "
            "AS a(prediction_id, digest) "
            # = ANY: the rows are found through the primary key, never by scanning the model.
            "WHERE p.prediction_id = ANY(%(ids)s::uuid[]) AND p.prediction_id = a.prediction_id "
            f"AND p.model_name = %(model)s AND {still_old} "
            # IS TRUE: a join filter, so each row's digest is computed once (as a hash key it
            # was computed twice, ~20 % of a batch); it stays in the statement's WHERE, so a
            # row updated meanwhile is re-checked on its new version and kept.
            f"AND ({ROW_DIGEST} = a.digest) IS TRUE",
            {"ids": ids, "digests": digests, "model": model_name, "before": before},
        )
        return cursor.rowcount


def count_deleted(connection: Connection, archive_id: uuid.UUID, rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE prediction_archives SET rows_deleted = rows_deleted + %s WHERE id = %s",
            (rows, archive_id),
        )


def finish_archive(connection: Connection, archive_id: uuid.UUID) -> None:
    """Every row of the archive has been handled: deleted, or left because it changed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE prediction_archives SET status = 'deleted', deleted_at = now() WHERE id = %s",
            (archive_id,),
        )


# Other tables: (table, the model's rows older than %(before)s). A running retraining's
# quarantine rows stay however old. Feedback has no age of its own: it is archived inside
# its prediction's row and deleted with it (ON DELETE CASCADE).
_EXPIRING = {
    "prediction_quarantine": (
        "quarantined_at < %(before)s AND retraining_run_id IN (SELECT id FROM "
        "model_retraining_runs WHERE model_name = %(model)s AND status <> 'running')"
    ),
    "health_checks": "model_name = %(model)s AND checked_at < %(before)s",
    "drift_reports": "model_name = %(model)s AND checked_at < %(before)s",
    "usage_events": "model_name = %(model)s AND occurred_at < %(before)s",
    "alerts": "model_name = %(model)s AND raised_at < %(before)s",
}
EXPIRING_TABLES = tuple(_EXPIRING)


def count_expired(connection: Connection, table: str, model_name: str, before: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE " + _EXPIRING[table]).format(
                sql.Identifier(table)
            ),
            {"model": model_name, "before": before},
        )
        return int(cursor.fetchone()[0])


def delete_expired(
    connection: Connection, table: str, model_name: str, before: datetime, limit: int
) -> int:
    """Delete at most ``limit`` of the model's expired rows of ``table``; how many went."""
    table_id = sql.Identifier(table)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE "
                + _EXPIRING[table]
                + " LIMIT %(limit)s))"
            ).format(table=table_id),
            {"model": model_name, "before": before, "limit": limit},
        )
        return cursor.rowcount


def vacuum_log(connection: Connection) -> None:
    """Make the deleted rows' space reusable now (``connection`` must be in autocommit)."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) prediction_log")


def versions_in_use(connection: Connection, model_name: str) -> dict[str, str]:
    """``{version: why}`` for the model's versions a live A/B test compares or an in-flight
    retraining run started from or registered: their files must stay."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version, why FROM ("
            " SELECT unnest(ARRAY[champion_version, challenger_version]) AS version,"
            "  'A/B test ' || id || ' (' || status || ')' AS why FROM ab_tests"
            "  WHERE model_name = %(model)s AND status IN ('pending', 'running', 'paused')"
            " UNION ALL"
            " SELECT unnest(ARRAY[params ->> 'champion_version', model_version]),"
            "  'retraining run ' || id || ' (' || status || ')' FROM model_retraining_runs"
            "  WHERE model_name = %(model)s AND status IN ('pending', 'running')"
            ") used WHERE version IS NOT NULL",
            {"model": model_name},
        )
        return {str(version): why for version, why in cursor.fetchall()}
