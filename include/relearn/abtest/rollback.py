"""Rolling the champion back by criterion: to the last known good, to a given version, or to
the best earlier version by recorded holdout F1.

One entry point for ``relearn registry rollback``, the ``MLflowDeployOperator`` and the
``ab_promotion`` trigger form; the move itself is ``champion.set_champion`` (crash-safe, under
the model's lock), and why this version was chosen goes into the alias history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from relearn.abtest import DeployError
from relearn.abtest.champion import set_champion
from relearn.registry import CHAMPION, aliases, registry_client, rollback_choice

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.services import Services

PREVIOUS, BEST = "previous", "best"


@dataclass(frozen=True)
class Rollback:
    model_name: str
    version: str
    reason: str  # as written in the alias history


def rollback_target(
    services: Services, name: str, to: str, min_f1: float | None
) -> tuple[str | None, str | None]:
    """(the version to roll back to, None for the last known good; why it was chosen, None
    when the caller named it)."""
    if min_f1 is not None and to != BEST:
        raise DeployError(f"a minimum F1 applies to a rollback to '{BEST}' only, not to '{to}'")
    if to == PREVIOUS:
        return None, None
    if to == BEST:
        client = registry_client(services.tracking_uri)
        champion = aliases(client, name).get(CHAMPION)
        choice = rollback_choice(
            client, name, before=int(champion) if champion else None, min_f1=min_f1
        )
        if choice is None:
            bar = "" if min_f1 is None else f" >= {min_f1:g}"
            raise DeployError(
                f"no version of {name} before champion v{champion} has a recorded holdout "
                f"F1{bar} and its files: lower --min-f1 or pick one with --to VERSION "
                f"(see `relearn registry list --model {name}`)"
            )
        return choice.version, choice.reason
    if not to.isdigit():
        raise DeployError(f"roll back to '{PREVIOUS}', '{BEST}' or a version number, not {to!r}")
    return to, None


def rollback_champion(
    services: Services,
    model_cfg: ModelConfig,
    *,
    to: str,
    min_f1: float | None = None,
    by: str,
    reason: str,
) -> Rollback:
    """``champion`` back to ``to`` (``previous``, ``best`` or a version number) now.

    ``best``: with ``min_f1`` the most recent earlier version whose recorded holdout F1 meets
    it, else the best earlier one. The history's reason is ``reason``, plus why for ``best``.
    """
    version, why = rollback_target(services, model_cfg.name, str(to).strip(), min_f1)
    full = reason if why is None else f"{reason}; {why}"
    done = set_champion(services, model_cfg, version=version, rollback=True, by=by, reason=full)
    return Rollback(model_cfg.name, done, full)
