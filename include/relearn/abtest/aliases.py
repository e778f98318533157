"""Crash-safe alias moves: the only way Relearn changes what a model's aliases point at.

MLflow aliases are the deployment truth; Postgres records why they moved. Moving several
aliases is several writes, so every move is written to ``alias_moves`` first (``pending``),
then applied alias by alias (each write idempotent), then marked done together with its
``alias_history`` rows and the test's new status. Whoever touches the model next (any
deployer command, the hourly check, retraining) first finishes a pending move, so a crash
between two writes is completed by the next run. ``champion`` is only ever *moved* (a single
write), never removed, so a model always has exactly one champion.

Used by the A/B deployer and by retraining (which aliases a blessed version ``challenger``):
a stable path both can import without importing each other.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from mlflow.exceptions import MlflowException

from relearn.abtest import DeployError
from relearn.registry import ARCHIVED_TAG, CHAMPION, aliases, registry_client
from relearn.services import utcnow
from relearn.store import abtests
from relearn.store import aliases as alias_store
from relearn.store.db import transaction
from relearn.store.locks import model_lock

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from mlflow import MlflowClient
    from psycopg2.extensions import connection as Connection

    from relearn.services import Services

log = logging.getLogger(__name__)

Result = TypeVar("Result")
PREVIOUS_CHAMPION = "previous_champion"


def locked(function: Callable[..., Result]) -> Callable[..., Result]:
    """Run a deployer entry point under the model's advisory lock (``relearn.store.locks``).

    The decorated function takes ``(services, model, ...)`` where ``model`` is a model's
    configuration or its name.
    """

    @functools.wraps(function)
    def wrapper(services: Services, model: Any, *args: Any, **kwargs: Any) -> Result:
        name = getattr(model, "name", model)
        with model_lock(services.database_url, name):
            return function(services, model, *args, **kwargs)

    return wrapper


def require_version(client: MlflowClient, name: str, version: str) -> None:
    """A DeployError unless the registry has ``version`` of the model with its files."""
    try:
        found = client.get_model_version(name, version)
    except MlflowException as error:
        raise DeployError(f"{name} has no version {version!r} in the registry") from error
    if ARCHIVED_TAG in found.tags:
        raise DeployError(
            f"{name} v{version} was archived ({found.tags[ARCHIVED_TAG]}): its files are gone; "
            f"pick a kept version from `relearn registry list --model {name}`"
        )


def _apply_move(client: MlflowClient, move: alias_store.AliasMove) -> None:
    for item in move.moves:
        if item["version"] is None:
            # Already gone means the write this step wanted has happened.
            with contextlib.suppress(MlflowException):
                client.delete_registered_model_alias(move.model_name, item["alias"])
        else:
            client.set_registered_model_alias(move.model_name, item["alias"], item["version"])


def _finalize(connection: Connection, move: alias_store.AliasMove, at: datetime) -> None:
    alias_store.finish_move(connection, move, at=at)
    if move.ab_test_id and move.test_status:
        traffic = 100 if move.test_status == abtests.PROMOTED else 0
        abtests.update_test(
            connection,
            move.ab_test_id,
            status=move.test_status,
            traffic_percent=traffic,
            ended_at=at,
            reason=move.reason,
        )


def finish_pending_moves(services: Services, model_name: str, *, force: bool = False) -> bool:
    """Complete a move a crash left half-done; True if there was one.

    A move that cannot be applied (e.g. its version was deleted since) raises, which blocks
    further moves until someone looks; with ``force`` (emergency rollback) it is marked
    ``abandoned`` with the error instead, and the caller's move goes ahead.
    """
    with transaction(services.database_url) as connection:
        move = alias_store.pending_move(connection, model_name)
        if move is None:
            return False
        log.warning(
            "%s: finishing interrupted alias move %s (%s)", model_name, move.id, move.reason
        )
        try:
            _apply_move(registry_client(services.tracking_uri), move)
        except Exception as error:
            if not force:
                raise DeployError(
                    f"{model_name}: the interrupted alias move {move.id} ({move.reason}) cannot "
                    f"be completed: {error}; `relearn registry rollback` abandons it"
                ) from error
            log.error("%s: abandoning alias move %s: %s", model_name, move.id, error)
            alias_store.abandon_move(connection, move, reason=str(error))
            return True
        _finalize(connection, move, utcnow())
    return True


def move_aliases(
    services: Services,
    model_name: str,
    targets: list[tuple[str, str | None]],
    *,
    reason: str,
    changed_by: str,
    ab_test_id: str | None = None,
    test_status: str | None = None,
    before_apply: Callable[[Connection], None] | None = None,
) -> None:
    """Point each alias at its version (None removes it), crash-safely, in the given order.

    ``before_apply(connection)`` runs in the transaction that records the intent (e.g. to
    record the decision that causes the move).
    """
    finish_pending_moves(services, model_name)
    client = registry_client(services.tracking_uri)
    current = aliases(client, model_name)
    moves = [
        {"alias": alias, "version": None if v is None else str(v), "previous": current.get(alias)}
        for alias, v in targets
        if current.get(alias) != (None if v is None else str(v))
    ]
    with transaction(services.database_url) as connection:
        if before_apply is not None:
            before_apply(connection)
        move = alias_store.record_move(
            connection,
            model_name=model_name,
            moves=moves,
            reason=reason,
            changed_by=changed_by,
            ab_test_id=ab_test_id,
            test_status=test_status,
        )
    _apply_move(client, move)
    with transaction(services.database_url) as connection:
        _finalize(connection, move, utcnow())
    for item in moves:
        log.info(
            "%s: %s %s -> %s (%s)",
            model_name,
            item["alias"],
            item["previous"],
            item["version"],
            reason,
        )


def set_first_champion(services: Services, model_name: str, version: str, *, reason: str) -> None:
    """A model's first ``champion`` (bootstrap from its world or a dataset, or an import) is a
    move like every other, so the model's alias history starts with it."""
    move_aliases(services, model_name, [(CHAMPION, version)], reason=reason, changed_by="bootstrap")
