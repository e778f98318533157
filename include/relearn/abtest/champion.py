"""Changing a model's aliases by hand, skipping any analysis: promote, roll back, point an alias.

For the operator's emergencies and the registry CLI; every change is a crash-safe alias move
(``relearn.abtest.aliases``) and aborts the tests it makes pointless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.abtest import DeployError
from relearn.abtest.aliases import (
    PREVIOUS_CHAMPION,
    finish_pending_moves,
    locked,
    move_aliases,
    require_version,
)
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.store import abtests
from relearn.store.db import transaction

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig
    from relearn.services import Services


def last_known_good(services: Services, model_name: str) -> str:
    """The ``previous_champion``: the champion before the last promotion."""
    version = aliases(registry_client(services.tracking_uri), model_name).get(PREVIOUS_CHAMPION)
    if version is None:
        raise DeployError(
            f"{model_name} has no last known good version (no '{PREVIOUS_CHAMPION}' alias; a "
            "rollback consumes it): pass --to-version"
        )
    return version


@locked
def set_champion(
    services: Services,
    model_cfg: ModelConfig,
    *,
    version: str | None = None,
    rollback: bool = False,
    by: str,
    reason: str,
    only_if_champion: str | None = None,
) -> str:
    """``champion`` -> ``version`` now, skipping any analysis; tests of the model are aborted.

    ``only_if_champion``: a decision taken on this champion (a comeback) gives up with a
    DeployError when, under the model's lock, another version is champion or a test is live
    or pending by then: it was not measured against either.

    A promotion (``rollback=False``) keeps the old champion as ``previous_champion``. A
    rollback (default target: ``previous_champion``) never makes the version it rolls away from
    "known good": ``previous_champion`` is dropped when it is the target, so rolling back twice
    cannot bring the bad version back. A rollback also gives up a pending alias move that cannot
    be completed, so an emergency is never blocked by an earlier failure.
    """
    name = model_cfg.name
    finish_pending_moves(services, name, force=rollback)
    if version is None and not rollback:
        raise DeployError("pass the version to promote")
    target = str(version) if version else last_known_good(services, name)
    client = registry_client(services.tracking_uri)
    require_version(client, name, target)
    current = aliases(client, name)
    with transaction(services.database_url) as connection:
        test = abtests.live_test(connection, name, abtests.ACTIVE)
        live = abtests.live_test(connection, name)
    if only_if_champion is not None and (
        current.get(CHAMPION) != only_if_champion or live is not None
    ):
        raise DeployError(
            f"{name}: v{only_if_champion} is no longer champion, or a test started meanwhile: "
            f"v{target} is not made champion"
        )
    targets: list[tuple[str, str | None]] = [(CHAMPION, target)]
    if rollback:
        if current.get(PREVIOUS_CHAMPION) == target:
            targets.append((PREVIOUS_CHAMPION, None))
    elif current.get(CHAMPION) and current[CHAMPION] != target:
        targets.append((PREVIOUS_CHAMPION, current[CHAMPION]))
    if test is not None or current.get(CHALLENGER) == target:
        targets.append((CHALLENGER, None))

    def abort_pending(connection: Connection) -> None:
        abtests.abort_pending(connection, name, reason=f"champion set to v{target} by {by}")

    move_aliases(
        services,
        name,
        targets,
        reason=reason,
        changed_by=by,
        ab_test_id=None if test is None else str(test.id),
        test_status=None if test is None else abtests.ABORTED,
        before_apply=abort_pending,
    )
    return target


@locked
def set_alias(
    services: Services, model_name: str, alias: str, version: str | None, *, by: str, reason: str
) -> None:
    """Point (or with None remove) any alias by hand; ``champion`` can be moved, not removed."""
    if alias == CHAMPION and version is None:
        raise DeployError("the champion alias can be moved but never removed")
    if alias in (CHAMPION, CHALLENGER):
        with transaction(services.database_url) as connection:
            test = abtests.live_test(connection, model_name, abtests.ACTIVE)
        if test is not None:
            raise DeployError(
                f"A/B test {test.id} of {model_name} is {test.status}: moving '{alias}' would "
                "change the models under test; use `relearn ab` or `relearn registry rollback`"
            )
    if version is not None:
        require_version(registry_client(services.tracking_uri), model_name, str(version))
    move_aliases(services, model_name, [(alias, version)], reason=reason, changed_by=by)
