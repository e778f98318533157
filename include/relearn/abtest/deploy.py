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
import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from relearn.abtest import DeployError, policy
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.store import abtests
from relearn.store import aliases as alias_store
from relearn.store.db import transaction
from relearn.store.locks import model_lock

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

Result = TypeVar("Result")
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
        return {**self.__dict__, "numbers": self.numbers or {}}


def _now() -> datetime:
    return datetime.now(UTC)


def _locked(function: Callable[..., Result]) -> Callable[..., Result]:
    """Run a deployer entry point under the model's advisory lock (``relearn.store.locks``)."""

    @functools.wraps(function)
    def wrapper(services: Services, model: Any, *args: Any, **kwargs: Any) -> Result:
        name = getattr(model, "name", model)
        with model_lock(services.database_url, name):
            return function(services, model, *args, **kwargs)

    return wrapper


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


@_locked
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


@_locked
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
        # A retry of a check that already decided (even one that ended its test) repeats it.
        done = abtests.find_decision_of_run(connection, name, run_key)
        test = abtests.live_test(connection, name, abtests.ACTIVE)
    if done is not None:
        decided, version = done
        return Outcome(
            decided.action,
            decided.reason,
            str(decided.test_id),
            decided.traffic_after,
            version,
            decided.numbers,
        )
    if test is None:
        candidate = _untested_challenger(services, name)
        if candidate is None or not (auto_start or action == "expand"):
            return Outcome("none", f"{name} has no A/B test running and no untested challenger")
        return start_test(
            services, model_cfg, now=now, run_key=run_key, version=candidate, traffic=traffic, by=by
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


def _untested_challenger(services: Services, model_name: str) -> str | None:
    """The version a new test would try: a pending test's, else an untested ``challenger``.

    A pending test whose version became the champion or left the registry meanwhile is
    aborted with the reason, so it cannot block the model (or its drift cooldown) forever.
    """
    client = registry_client(services.tracking_uri)
    current = aliases(client, model_name)
    while True:
        with transaction(services.database_url) as connection:
            pending = abtests.live_test(connection, model_name, (abtests.PENDING,))
        if pending is None:
            break
        problem = None
        if pending.challenger_version == current.get(CHAMPION):
            problem = f"v{pending.challenger_version} is the champion now"
        else:
            try:
                require_version(client, model_name, pending.challenger_version)
            except DeployError as error:
                problem = str(error)
        if problem is None:
            return pending.challenger_version
        log.warning("%s: pending A/B test %s not started: %s", model_name, pending.id, problem)
        with transaction(services.database_url) as connection:
            abtests.update_test(
                connection,
                pending.id,
                status=abtests.ABORTED,
                reason=f"not started: {problem}",
                ended_at=_now(),
            )
    version = current.get(CHALLENGER)
    if version is None or version == current.get(CHAMPION):
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
    window = abtests.ArmWindow(
        model_cfg.name, test.champion_version, test.challenger_version, test.started_at, now
    )
    with transaction(services.database_url) as connection:
        arms = abtests.arm_stats(connection, window, list(model_cfg.classes))
        changes = [
            d.decided_at
            for d in abtests.decisions(connection, test.id)
            if d.action != "start" and d.traffic_after != d.traffic_before
        ]
        periods = abtests.strata(connection, window, changes)
    state = policy.TestState(
        test_id=str(test.id),
        stage_index=test.stage_index,
        traffic_percent=test.traffic_percent,
        started_at=test.started_at,
        approval=test.approval,
    )
    return policy.decide(state, arms["champion"], arms["challenger"], cfg, now, periods)


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


@_locked
def answer_approval(
    services: Services,
    model_cfg: ModelConfig,
    *,
    test_id: str,
    approved: bool,
    now: datetime,
    run_key: str,
    by: str,
) -> Outcome:
    """Carry out a human's answer to ``await_approval``: promote, or roll back.

    Only for the test that asked, while it is still running and waiting: an answer that
    arrives after the test ended (rolled back by a guardrail, replaced) changes nothing.
    """
    with transaction(services.database_url) as connection:
        test = abtests.get_test(connection, test_id)
    if test.status != abtests.RUNNING or test.approval != "requested":
        return Outcome(
            "none",
            f"test {test_id} is {test.status} (approval {test.approval}): answer ignored",
            test_id,
        )
    with transaction(services.database_url) as connection:
        abtests.update_test(connection, test.id, approval="approved" if approved else "rejected")
    decision = (
        policy.Decision(policy.PROMOTE, 100, f"approved by {by}", stage_index=len(test.stages) - 1)
        if approved
        else policy.Decision(policy.ROLLBACK, 0, f"promotion rejected by {by}")
    )
    return apply_decision(services, model_cfg, test, decision, now=now, run_key=run_key, by=by)


# --- the registry, directly -----------------------------------------------------------------


def last_known_good(services: Services, model_name: str) -> str:
    """The ``previous_champion``: the champion before the last promotion."""
    version = aliases(registry_client(services.tracking_uri), model_name).get(PREVIOUS_CHAMPION)
    if version is None:
        raise DeployError(
            f"{model_name} has no last known good version (no '{PREVIOUS_CHAMPION}' alias; a "
            "rollback consumes it): pass --to-version"
        )
    return version


@_locked
def set_champion(
    services: Services,
    model_cfg: ModelConfig,
    *,
    version: str | None = None,
    rollback: bool = False,
    by: str,
    reason: str,
) -> str:
    """``champion`` -> ``version`` now, skipping any analysis; tests of the model are aborted.

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
    targets: list[tuple[str, str | None]] = [(CHAMPION, target)]
    if rollback:
        if current.get(PREVIOUS_CHAMPION) == target:
            targets.append((PREVIOUS_CHAMPION, None))
    elif current.get(CHAMPION) and current[CHAMPION] != target:
        targets.append((PREVIOUS_CHAMPION, current[CHAMPION]))
    if test is not None or current.get(CHALLENGER) == target:
        targets.append((CHALLENGER, None))

    def abort_pending(connection: Any) -> None:
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


@_locked
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
