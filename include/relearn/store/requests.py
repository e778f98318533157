"""``model_retraining_requests`` as a work queue: create, claim exactly once, finish.

A claim is one statement (``FOR UPDATE SKIP LOCKED``), highest priority first, then oldest,
so any number of claimers take each request once. A claim holds a lease: a claimer that dies
leaves a lease that expires, and ``reap_expired_leases`` puts the request back (or fails it
once it used up its attempts); a ``processing`` row without a lease (written by hand) counts
as expired. Rows inserted with SQL bypass ``create_request``'s checks, so
``fail_unknown_models`` fails those whose model is not configured instead of leaving them
pending forever. Every statement is parameterised: reasons are stored verbatim.
"""

from __future__ import annotations

import select
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relearn.store.db import connect

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

CHANNEL = "relearn_retraining_requests"
PRIORITIES = ("high", "normal", "low")
MAX_REASON_LENGTH = 2000
DEFAULT_LEASE = timedelta(hours=2)
DEFAULT_MAX_ATTEMPTS = 3

_PRIORITY_ORDER = "(CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END)"
_COLUMNS = (
    "id, model_name, requested_by, reason, priority, status, attempts, claimed_by, "
    "lease_expires_at, retraining_run_id, processed_at, error_message, created_at"
)


class RequestError(ValueError):
    """A request cannot be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class RetrainingRequest:
    id: uuid.UUID
    model_name: str
    requested_by: uuid.UUID | None
    reason: str | None
    priority: str
    status: str
    attempts: int
    claimed_by: str | None
    lease_expires_at: datetime | None
    retraining_run_id: uuid.UUID | None
    processed_at: datetime | None
    error_message: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (for XCom, the CLI and the summary)."""
        return {
            key: (str(value) if isinstance(value, uuid.UUID | datetime) else value)
            for key, value in self.__dict__.items()
        }


def _uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise RequestError(f"{what} must be a UUID, got '{value}'") from None


def _fetch(cursor: Any) -> list[RetrainingRequest]:
    return [RetrainingRequest(*row) for row in cursor.fetchall()]


def create_request(
    connection: Connection,
    *,
    model_name: str,
    known_models: list[str],
    reason: str | None = None,
    priority: str = "normal",
    requested_by: uuid.UUID | str | None = None,
) -> RetrainingRequest:
    """Queue a retraining of ``model_name``; a RequestError says what is wrong with it."""
    if model_name not in known_models:
        raise RequestError(f"unknown model '{model_name}' (configured: {', '.join(known_models)})")
    if priority not in PRIORITIES:
        raise RequestError(f"priority must be one of {', '.join(PRIORITIES)}, got '{priority}'")
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise RequestError(
            f"reason is {len(reason)} characters long; at most {MAX_REASON_LENGTH} are kept"
        )
    if requested_by is not None:
        requested_by = _uuid(requested_by, "requested_by")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO model_retraining_requests (model_name, reason, priority, requested_by) "
            f"VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}",
            (model_name, reason, priority, requested_by),
        )
        return _fetch(cursor)[0]


def get_request(connection: Connection, request_id: uuid.UUID | str) -> RetrainingRequest:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM model_retraining_requests WHERE id = %s",
            (_uuid(request_id, "a request id"),),
        )
        found = _fetch(cursor)
    if not found:
        raise RequestError(f"no retraining request with id {request_id}")
    return found[0]


def list_requests(
    connection: Connection, *, status: str | None = None, limit: int = 50
) -> list[RetrainingRequest]:
    """Newest first; ``status`` narrows the list."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM model_retraining_requests "
            "WHERE %(status)s::text IS NULL OR status = %(status)s "
            "ORDER BY created_at DESC LIMIT %(limit)s",
            {"status": status, "limit": limit},
        )
        return _fetch(cursor)


def cancel_request(connection: Connection, request_id: uuid.UUID | str) -> RetrainingRequest:
    """Cancel a request that nobody has claimed yet."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE model_retraining_requests SET status = 'cancelled', updated_at = now() "
            f"WHERE id = %s AND status = 'pending' RETURNING {_COLUMNS}",
            (_uuid(request_id, "a request id"),),
        )
        cancelled = _fetch(cursor)
    if cancelled:
        return cancelled[0]
    current = get_request(connection, request_id)
    raise RequestError(
        f"request {request_id} is {current.status}; only pending ones can be cancelled"
    )


def has_pending(
    connection: Connection,
    model_names: list[str] | None = None,
    *,
    known_models: list[str] | None = None,
) -> bool:
    """Is a request for one of ``model_names`` (None: any) pending?

    With ``known_models``, a pending request for a model outside it counts too: the claimer
    must wake up to fail it (``fail_unknown_models``).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM model_retraining_requests WHERE status = 'pending' "
            "AND (%(models)s::text[] IS NULL OR model_name = ANY(%(models)s::text[]) "
            "OR NOT (model_name = ANY(coalesce(%(known)s::text[], ARRAY[model_name])))))",
            {"models": model_names, "known": known_models},
        )
        return bool(cursor.fetchone()[0])


def claim_next(
    connection: Connection,
    claimer: str,
    *,
    model_names: list[str] | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> RetrainingRequest | None:
    """Take the most urgent pending request (high before normal before low, then oldest).

    One statement: concurrent claimers skip each other's locked rows, so each request is
    claimed by exactly one of them. Commit right after, so the claim is visible.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE model_retraining_requests
            SET status = 'processing', claimed_by = %(claimer)s,
                lease_expires_at = now() + %(lease)s, attempts = attempts + 1,
                updated_at = now()
            WHERE id = (
                SELECT id FROM model_retraining_requests
                WHERE status = 'pending'
                  AND (%(models)s::text[] IS NULL OR model_name = ANY(%(models)s::text[]))
                ORDER BY {_PRIORITY_ORDER}, created_at, id
                FOR UPDATE SKIP LOCKED
                LIMIT 1
            )
            RETURNING {_COLUMNS}
            """,
            {"claimer": claimer, "lease": lease, "models": model_names},
        )
        claimed = _fetch(cursor)
    return claimed[0] if claimed else None


def claimed_by(connection: Connection, claimer: str) -> RetrainingRequest | None:
    """The request ``claimer`` holds, if any: a retried claimer gets its own claim back."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM model_retraining_requests "
            "WHERE status = 'processing' AND claimed_by = %s ORDER BY created_at LIMIT 1",
            (claimer,),
        )
        found = _fetch(cursor)
    return found[0] if found else None


def reap_expired_leases(
    connection: Connection, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> tuple[int, int]:
    """Claims whose lease ran out go back to pending, or fail after ``max_attempts``.

    A ``processing`` row with no lease at all has no claimer that could still finish it:
    it is reclaimed the same way. Returns (requeued, failed).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE model_retraining_requests
            SET status = CASE WHEN attempts >= %(max)s THEN 'failed' ELSE 'pending' END,
                error_message = CASE WHEN attempts >= %(max)s
                    THEN 'gave up after ' || attempts || ' attempts: the lease of '
                         || coalesce(claimed_by, '?') || ' expired'
                    ELSE error_message END,
                processed_at = CASE WHEN attempts >= %(max)s THEN now() ELSE NULL END,
                claimed_by = CASE WHEN attempts >= %(max)s THEN claimed_by ELSE NULL END,
                lease_expires_at = NULL, updated_at = now()
            WHERE status = 'processing'
              AND (lease_expires_at IS NULL OR lease_expires_at < now())
            RETURNING status
            """,
            {"max": max_attempts},
        )
        statuses = [row[0] for row in cursor.fetchall()]
    return statuses.count("pending"), statuses.count("failed")


def fail_unknown_models(connection: Connection, known_models: list[str]) -> list[RetrainingRequest]:
    """Fail every pending request for a model not in ``known_models``; returns them.

    Names are compared exactly (``Churn`` is not ``churn``), as the claim compares them.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE model_retraining_requests
            SET status = 'failed', processed_at = now(), updated_at = now(),
                error_message = format('unknown model %%L (configured: %%s)',
                                       model_name, %(listed)s::text)
            WHERE status = 'pending' AND NOT (model_name = ANY(%(known)s::text[]))
            RETURNING {_COLUMNS}
            """,
            {"known": list(known_models), "listed": ", ".join(known_models)},
        )
        return _fetch(cursor)


def link_run(connection: Connection, request_id: uuid.UUID | str, run_id: uuid.UUID | str) -> None:
    """Point the request at the retraining run serving it (set once the run exists)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE model_retraining_requests SET retraining_run_id = %s, updated_at = now() "
            "WHERE id = %s",
            (str(run_id), str(request_id)),
        )


def finish_request(
    connection: Connection,
    request_id: uuid.UUID | str,
    *,
    status: str,
    error_message: str | None = None,
) -> bool:
    """``processing`` -> ``completed`` | ``failed``; False when it was no longer processing."""
    if status not in ("completed", "failed"):
        raise ValueError(f"a request finishes as completed or failed, not '{status}'")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE model_retraining_requests SET status = %s, error_message = %s, "
            "processed_at = now(), lease_expires_at = NULL, updated_at = now() "
            "WHERE id = %s AND status = 'processing'",
            (status, error_message, str(request_id)),
        )
        return cursor.rowcount == 1


def wait_for_pending(
    database_url: str,
    model_names: list[str] | None,
    timeout: float,
    known_models: list[str] | None = None,
) -> bool:
    """Block until a request is pending (True) or ``timeout`` seconds pass (False).

    Listens on the table's NOTIFY channel and checks the table itself, so a request
    inserted before the LISTEN, or a missed notification, is still found. ``known_models``
    as in ``has_pending``.
    """

    def pending() -> bool:
        return has_pending(connection, model_names, known_models=known_models)

    connection = connect(database_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        if pending():
            return True
        if select.select([connection], [], [], timeout) == ([], [], []):
            return pending()  # the fallback poll
        connection.poll()
        connection.notifies.clear()
        return pending()
    finally:
        connection.close()
