"""The deployer: starts, checks, expands, promotes and rolls back A/B tests by moving aliases.

MLflow aliases are the deployment truth; Postgres records why they moved. Moving several
aliases is several writes, so every move is written to ``alias_moves`` first (``pending``),
then applied alias by alias (each write idempotent), then marked done together with its
``alias_history`` rows and the test's new status. Whoever touches the model next (any
command here, the hourly check) first finishes a pending move, so a crash between two writes
is completed by the next run. ``champion`` is only ever *moved* (a single write), never
removed, so a model always has exactly one champion.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from relearn.abtest import DeployError, policy
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.store import abtests
from relearn.store import aliases as alias_store
from relearn.store.db import transaction

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from relearn.config import ModelConfig
    from relearn.reinforce import Services

log = logging.getLogger(__name__)

PREVIOUS_CHAMPION = "previous_champion"
ACTIONS = ("check", "expand", "pause", "resume", "rollback", "promote")


@dataclass(frozen=True)
class Outcome:
    """What one call did to the model's test."""

    action: str
    reason: str
    test_id: str | None = None
    traffic: int | None = None
    version: str | None = None
    numbers: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "numbers"} | {
            "numbers": self.numbers or {}
        }


def _now() -> datetime:
    return datetime.now(UTC)


def require_version(client: MlflowClient, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as error:
        raise DeployError(f"{name} has no version {version!r} in the registry") from error


# --- alias moves ----------------------------------------------------------------------------


def _apply_move(client: MlflowClient, move: alias_store.AliasMove) -> None:
    from mlflow.exceptions import MlflowException

    for item in move.moves:
        if item["version"] is None:
            # Already gone means the write this step wanted has happened.
            with contextlib.suppress(MlflowException):
                client.delete_registered_model_alias(move.model_name, item["alias"])
        else:
            client.set_registered_model_alias(move.model_name, item["alias"], item["version"])


def _finalize(connection: Any, move: alias_store.AliasMove, at: datetime) -> None:
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


def finish_pending_moves(services: Services, model_name: str) -> bool:
    """Complete a move a crash left half-done; True if there was one."""
    with transaction(services.database_url) as connection:
        move = alias_store.pending_move(connection, model_name)
        if move is None:
            return False
        log.warning(
            "%s: finishing interrupted alias move %s (%s)", model_name, move.id, move.reason
        )
        _apply_move(registry_client(services.tracking_uri), move)
        _finalize(connection, move, _now())
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
    before_apply: Any = None,
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
        _finalize(connection, move, _now())
    for item in moves:
        log.info(
            "%s: %s %s -> %s (%s)",
            model_name,
            item["alias"],
            item["previous"],
            item["version"],
            reason,
        )


# --- tests ----------------------------------------------------------------------------------


def start_test(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    run_key: str,
    version: str | None = None,
    traffic: int | None = None,
    by: str = "policy",
) -> Outcome:
    """Start testing ``version`` (default: the pending test's, else the ``challenger``)."""
    name = model_cfg.name
    finish_pending_moves(services, name)
    client = registry_client(services.tracking_uri)
    current = aliases(client, name)
    with transaction(services.database_url) as connection:
        active = abtests.live_test(connection, name, abtests.ACTIVE)
        pending = abtests.live_test(connection, name, (abtests.PENDING,))
    if active is not None:
        raise DeployError(
            f"A/B test {active.id} of {name} v{active.challenger_version} is {active.status}: "
            "promote or roll it back first"
        )
    version = str(
        version or (pending.challenger_version if pending else current.get(CHALLENGER) or "")
    )
    if not version:
        raise DeployError(f"{name} has no challenger to test: pass --version")
    require_version(client, name, version)
    champion = current.get(CHAMPION)
    if champion is None:
        raise DeployError(f"{name} has no champion: run `relearn bootstrap`")
    if version == champion:
        raise DeployError(f"{name} v{version} is the champion already")
    share = traffic or model_cfg.abtest.stages[0]
    if not 0 < share < 100:
        raise DeployError(f"traffic must be between 1 and 99 %, got {share}")
    with transaction(services.database_url) as connection:
        test = abtests.request_test(
            connection,
            model_name=name,
            champion_version=champion,
            challenger_version=version,
            stages=model_cfg.abtest.stages,
            retraining_run_id=None,
            reason=f"started by {by}",
        )
    if test.status != abtests.PENDING:
        raise DeployError(f"{name} v{version} was tested already (test {test.id}: {test.status})")
    move_aliases(
        services, name, [(CHALLENGER, version)], reason=f"A/B test {test.id} starts", changed_by=by
    )
    stages = model_cfg.abtest.stages
    with transaction(services.database_url) as connection:
        abtests.update_test(
            connection,
            test.id,
            status=abtests.RUNNING,
            champion_version=champion,
            traffic_percent=share,
            stage_index=max((i for i, s in enumerate(stages) if s <= share), default=0),
            policy=model_cfg.abtest.policy,
            started_at=now,
            stage_started_at=now,
        )
        _record(
            connection,
            test.id,
            now,
            "start",
            0,
            share,
            f"v{version} vs v{champion}",
            {},
            by,
            run_key,
        )
    log.info("%s: A/B test %s started: v%s gets %d %%", name, test.id, version, share)
    return Outcome("start", f"v{version} vs v{champion} at {share} %", str(test.id), share, version)


def _record(
    connection: Any,
    test_id: Any,
    now: datetime,
    action: str,
    before: int,
    after: int,
    reason: str,
    numbers: dict[str, Any],
    by: str,
    run_key: str,
) -> None:
    abtests.record_decision(
        connection,
        abtests.DecisionRow(test_id, now, action, before, after, reason, numbers, by, run_key),
    )


def check_test(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    run_key: str,
    action: str = "check",
    traffic: int | None = None,
    by: str = "policy",
    auto_start: bool | None = None,
) -> Outcome:
    """Decide and apply the next step of the model's test (``action`` overrides the policy).

    With no running test and ``auto_start`` (default: the model's ``abtest.auto_start``), a
    pending test, else an untested ``challenger``, is started.
    Once per ``run_key``: a retried check returns what the first one decided.
    """
    if action not in ACTIONS:
        raise DeployError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    name = model_cfg.name
    auto_start = model_cfg.abtest.auto_start if auto_start is None else auto_start
    finish_pending_moves(services, name)
    with transaction(services.database_url) as connection:
        test = abtests.live_test(connection, name, abtests.ACTIVE)
        pending = abtests.live_test(connection, name, (abtests.PENDING,))
    if test is None:
        candidate = _untested_challenger(services, name, pending)
        if candidate is None or not (auto_start or action == "expand"):
            return Outcome("none", f"{name} has no A/B test running and no untested challenger")
        return start_test(
            services, model_cfg, now=now, run_key=run_key, version=candidate, traffic=traffic, by=by
        )
    with transaction(services.database_url) as connection:
        done = abtests.find_decision(connection, test.id, run_key)
    if done is not None:
        return Outcome(
            done.action,
            done.reason,
            str(test.id),
            done.traffic_after,
            test.challenger_version,
            done.numbers,
        )
    if action == "pause":
        return _set_status(services, test, abtests.PAUSED, "pause", 0, now, run_key, by)
    if action == "resume":
        return _set_status(
            services, test, abtests.RUNNING, "resume", test.traffic_percent, now, run_key, by
        )
    if test.status == abtests.PAUSED and action == "check":
        return Outcome(
            "hold", "paused", str(test.id), test.traffic_percent, test.challenger_version
        )
    decision = _decision(services, model_cfg, test, action, traffic, now)
    if decision.action == policy.AWAIT_APPROVAL and test.approval == "requested":
        decision = policy.Decision(
            policy.HOLD,
            decision.traffic,
            "awaiting the approval requested earlier",
            decision.numbers,
        )
    return apply_decision(services, model_cfg, test, decision, now=now, run_key=run_key, by=by)


def _untested_challenger(
    services: Services, model_name: str, pending: abtests.ABTest | None
) -> str | None:
    """The version a new test would try: a pending test's, else an untested ``challenger``."""
    if pending is not None:
        return pending.challenger_version
    version = aliases(registry_client(services.tracking_uri), model_name).get(CHALLENGER)
    if version is None:
        return None
    with transaction(services.database_url) as connection:
        tested = abtests.find_test(connection, model_name, version)
    return version if tested is None else None


def _decision(
    services: Services,
    model_cfg: ModelConfig,
    test: abtests.ABTest,
    action: str,
    traffic: int | None,
    now: datetime,
) -> policy.Decision:
    cfg = model_cfg.abtest
    if action == "rollback":
        return policy.Decision(policy.ROLLBACK, 0, "rolled back by hand")
    if action == "promote":
        return policy.Decision(
            policy.PROMOTE, 100, "promoted by hand", stage_index=len(cfg.stages) - 1
        )
    if action == "expand":
        following = min(test.stage_index + 1, len(cfg.stages) - 1)
        share = traffic or cfg.stages[following]
        if share >= 100:
            return policy.Decision(
                policy.PROMOTE, 100, "expanded to 100 % by hand", stage_index=following
            )
        return policy.Decision(policy.EXPAND, share, "expanded by hand", stage_index=following)
    with transaction(services.database_url) as connection:
        arms = abtests.arm_stats(
            connection,
            model_name=model_cfg.name,
            champion_version=test.champion_version,
            challenger_version=test.challenger_version,
            since=test.started_at,
            until=now,
            classes=list(model_cfg.classes),
        )
    state = policy.TestState(
        test_id=str(test.id),
        stage_index=test.stage_index,
        traffic_percent=test.traffic_percent,
        started_at=test.started_at,
        approval=test.approval,
    )
    return policy.decide(state, arms["champion"], arms["challenger"], cfg, now)


def apply_decision(
    services: Services,
    model_cfg: ModelConfig,
    test: abtests.ABTest,
    decision: policy.Decision,
    *,
    now: datetime,
    run_key: str,
    by: str,
) -> Outcome:
    """Carry a decision out and record it with its numbers (alias moves crash-safely)."""
    name = model_cfg.name

    def record(connection: Any) -> None:
        _record(
            connection,
            test.id,
            now,
            decision.action,
            test.traffic_percent,
            decision.traffic,
            decision.reason,
            decision.numbers,
            by,
            run_key,
        )

    if decision.action == policy.PROMOTE:
        move_aliases(
            services,
            name,
            [
                (CHAMPION, test.challenger_version),
                (PREVIOUS_CHAMPION, test.champion_version),
                (CHALLENGER, None),
            ],
            reason=f"A/B test {test.id}: {decision.reason}",
            changed_by=by,
            ab_test_id=str(test.id),
            test_status=abtests.PROMOTED,
            before_apply=record,
        )
    elif decision.action == policy.ROLLBACK:
        current = aliases(registry_client(services.tracking_uri), name)
        targets = [(CHALLENGER, None)] if current.get(CHALLENGER) == test.challenger_version else []
        move_aliases(
            services,
            name,
            targets,
            reason=f"A/B test {test.id}: {decision.reason}",
            changed_by=by,
            ab_test_id=str(test.id),
            test_status=abtests.ROLLED_BACK,
            before_apply=record,
        )
    else:
        with transaction(services.database_url) as connection:
            record(connection)
            changes: dict[str, Any] = {"traffic_percent": decision.traffic}
            if decision.stage_index is not None and decision.stage_index != test.stage_index:
                changes |= {"stage_index": decision.stage_index, "stage_started_at": now}
            if decision.action == policy.AWAIT_APPROVAL:
                changes["approval"] = "requested"
            abtests.update_test(connection, test.id, **changes)
    log.info(
        "%s: A/B test %s: %s -> %d %% (%s)",
        name,
        test.id,
        decision.action,
        decision.traffic,
        decision.reason,
    )
    return Outcome(
        decision.action,
        decision.reason,
        str(test.id),
        decision.traffic,
        test.challenger_version,
        decision.numbers,
    )


def _set_status(
    services: Services,
    test: abtests.ABTest,
    status: str,
    action: str,
    traffic: int,
    now: datetime,
    run_key: str,
    by: str,
) -> Outcome:
    with transaction(services.database_url) as connection:
        _record(
            connection,
            test.id,
            now,
            action,
            test.traffic_percent,
            traffic,
            f"{action} by {by}",
            {},
            by,
            run_key,
        )
        abtests.update_test(connection, test.id, status=status)
    return Outcome(action, f"{action} by {by}", str(test.id), traffic, test.challenger_version)


def record_approval(services: Services, test_id: str, approved: bool) -> None:
    """A human's answer to ``await_approval``; the next check promotes or rolls back."""
    with transaction(services.database_url) as connection:
        abtests.update_test(connection, test_id, approval="approved" if approved else "rejected")


# --- the registry, directly -----------------------------------------------------------------


def last_known_good(services: Services, model_name: str) -> str:
    """The version that was champion before the current one."""
    current = aliases(registry_client(services.tracking_uri), model_name)
    if current.get(PREVIOUS_CHAMPION):
        return current[PREVIOUS_CHAMPION]
    with transaction(services.database_url) as connection:
        changes = alias_store.history(connection, model_name, CHAMPION)
    for change in reversed(changes):
        if change.previous_version and change.previous_version != current.get(CHAMPION):
            return change.previous_version
    raise DeployError(f"{model_name} has no earlier champion to roll back to: pass --to-version")


def set_champion(
    services: Services,
    model_cfg: ModelConfig,
    *,
    version: str | None = None,
    by: str,
    reason: str = "emergency rollback",
) -> str:
    """``champion`` -> ``version`` now (default: the last known good), skipping any analysis;
    the old champion keeps ``previous_champion``; a running test is aborted."""
    name = model_cfg.name
    finish_pending_moves(services, name)
    target = str(version) if version else last_known_good(services, name)
    client = registry_client(services.tracking_uri)
    require_version(client, name, target)
    current = aliases(client, name)
    with transaction(services.database_url) as connection:
        test = abtests.live_test(connection, name, abtests.ACTIVE)
    targets = [(CHAMPION, target)]
    if current.get(CHAMPION) and current[CHAMPION] != target:
        targets.append((PREVIOUS_CHAMPION, current[CHAMPION]))
    if test is not None:
        targets.append((CHALLENGER, None))
    move_aliases(
        services,
        name,
        targets,
        reason=reason,
        changed_by=by,
        ab_test_id=None if test is None else str(test.id),
        test_status=None if test is None else abtests.ABORTED,
    )
    return target


def set_alias(
    services: Services, model_name: str, alias: str, version: str | None, *, by: str, reason: str
) -> None:
    """Point (or with None remove) any alias by hand; ``champion`` can be moved, not removed."""
    if alias == CHAMPION and version is None:
        raise DeployError("the champion alias can be moved but never removed")
    if version is not None:
        require_version(registry_client(services.tracking_uri), model_name, str(version))
    move_aliases(services, model_name, [(alias, version)], reason=reason, changed_by=by)
