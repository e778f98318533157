"""The deployer: starts A/B tests and moves them on — check, expand, pause, resume, promote,
roll back (a human's answer to an approval request: ``relearn.abtest.approval``).

Every entry point runs under the model's lock and first finishes an alias move a crash left
half-done (``relearn.abtest.aliases``). One step of a running test is decided and applied by
``relearn.abtest.decision``; changes by hand that skip the test are in
``relearn.abtest.champion``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relearn.abtest import DeployError, policy
from relearn.abtest.aliases import finish_pending_moves, locked, move_aliases, require_version
from relearn.abtest.decision import Outcome, apply_decision, next_decision
from relearn.abtest.replace import (
    find_replacement,
    first_share,
    is_replacement,
    offline_evidence,
    start_key,
)
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.services import NoChampionError, utcnow
from relearn.store import abtests
from relearn.store.db import transaction

if TYPE_CHECKING:
    from datetime import datetime

    from mlflow import MlflowClient

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

ACTIONS = ("check", "expand", "pause", "resume", "rollback", "promote")


@dataclass(frozen=True)
class _StartPlan:
    """What a test about to start compares, and the challenger's first share."""

    champion: str
    version: str
    share: int


@locked
def start_test(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    trigger_key: str,
    version: str | None = None,
    traffic: int | None = None,
    by: str = "policy",
    why: str | None = None,
) -> Outcome:
    """Start testing ``version`` (default: the pending test's, else the ``challenger``);
    ``why`` joins the test's and the alias history's reason. A decay retraining's candidate
    whose holdout already proves it (``replace.offline_evidence``) is promoted at once,
    unless ``traffic`` was chosen by hand.

    :raises NoChampionError: the model has no champion to test against.
    :raises DeployError: a test is live, the version is missing, is the champion or was tested.
    """
    name = model_cfg.name
    finish_pending_moves(services, name)
    plan = _plan_start(
        services, registry_client(services.tracking_uri), model_cfg, version, traffic
    )
    test = _request_test(services, model_cfg, plan, by, why)
    move_aliases(
        services,
        name,
        [(CHALLENGER, plan.version)],
        reason=f"A/B test {test.id} starts" + (f": {why}" if why else ""),
        changed_by=by,
    )
    _mark_running(services, model_cfg, test, plan, now=now, trigger_key=trigger_key, by=by)
    log.info("%s: A/B test %s started: v%s gets %d %%", name, test.id, plan.version, plan.share)
    if traffic is None and (
        offline := offline_evidence(services, model_cfg, plan.version, plan.champion, now=now)
    ):
        with transaction(services.database_url) as connection:
            running = abtests.get_test(connection, test.id)
        last = len(running.stages) - 1
        decision = policy.Decision(policy.PROMOTE, 100, offline, stage_index=last)
        key = f"{trigger_key}/offline"
        return apply_decision(
            services, model_cfg, running, decision, now=now, trigger_key=key, by=by
        )
    return Outcome(
        "start",
        f"v{plan.version} vs v{plan.champion} at {plan.share} %",
        str(test.id),
        plan.share,
        plan.version,
    )


def _plan_start(
    services: Services,
    client: MlflowClient,
    model_cfg: ModelConfig,
    version: str | None,
    traffic: int | None,
) -> _StartPlan:
    """Which version is tested against which champion at what share; refuses what cannot start."""
    name = model_cfg.name
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
        raise NoChampionError(name)
    if version == champion:
        raise DeployError(f"{name} v{version} is the champion already")
    share = traffic or first_share(services, model_cfg, version, champion)
    if not 0 < share < 100:
        raise DeployError(f"traffic must be between 1 and 99 %, got {share}")
    return _StartPlan(champion=champion, version=version, share=share)


def _request_test(
    services: Services, model_cfg: ModelConfig, plan: _StartPlan, by: str, why: str | None
) -> abtests.ABTest:
    """The version's ``pending`` test (a new one, or the one retraining asked for)."""
    with transaction(services.database_url) as connection:
        test = abtests.request_test(
            connection,
            model_name=model_cfg.name,
            champion_version=plan.champion,
            challenger_version=plan.version,
            stages=model_cfg.abtest.stages,
            retraining_run_id=None,
            reason=f"started by {by}" + (f": {why}" if why else ""),
        )
    if test.status != abtests.PENDING:
        raise DeployError(
            f"{model_cfg.name} v{plan.version} was tested already (test {test.id}: {test.status})"
        )
    return test


def _mark_running(
    services: Services,
    model_cfg: ModelConfig,
    test: abtests.ABTest,
    plan: _StartPlan,
    *,
    now: datetime,
    trigger_key: str,
    by: str,
) -> None:
    """The test runs from ``now`` at the plan's share (at the stage that share reaches)."""
    stages = model_cfg.abtest.stages
    with transaction(services.database_url) as connection:
        abtests.update_test(
            connection,
            test.id,
            status=abtests.RUNNING,
            champion_version=plan.champion,
            traffic_percent=plan.share,
            stage_index=max((i for i, s in enumerate(stages) if s <= plan.share), default=0),
            policy=model_cfg.abtest.policy,
            started_at=now,
            stage_started_at=now,
        )
        abtests.record_decision(
            connection,
            abtests.DecisionRow(
                test_id=test.id,
                decided_at=now,
                action="start",
                traffic_before=0,
                traffic_after=plan.share,
                reason=f"v{plan.version} vs v{plan.champion}",
                numbers={},
                decided_by=by,
                trigger_key=trigger_key,
            ),
        )


@locked
def check_test(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    trigger_key: str,
    action: str = "check",
    traffic: int | None = None,
    by: str = "policy",
    auto_start: bool | None = None,
) -> Outcome:
    """Decide and apply the next step of the model's test (``action`` overrides the policy).

    With no running test and ``auto_start`` (default: the model's ``abtest.auto_start``), a
    pending test, else an untested ``challenger``, is started. A policy check of a running
    test first lets a clearly better pending one take its place (``relearn.abtest.replace``).
    Once per ``trigger_key``: a retried check returns what the first one decided.
    """
    if action not in ACTIONS:
        raise DeployError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    name = model_cfg.name
    auto_start = model_cfg.abtest.auto_start if auto_start is None else auto_start
    finish_pending_moves(services, name)
    with transaction(services.database_url) as connection:
        # A retry of a check that already decided (even one that ended its test) repeats it.
        done = abtests.find_decision_of_run(connection, name, trigger_key)
        test = abtests.live_test(connection, name, abtests.ACTIVE)
    if done is not None:
        if is_replacement(done[0]):  # the waiting test may not have started: finish that
            return _start_replacement(services, model_cfg, done, now, trigger_key, by)
        return _repeated(*done)
    if test is None:
        candidate = _untested_challenger(services, name)
        if candidate is None or not (auto_start or action == "expand"):
            return Outcome("none", f"{name} has no A/B test running and no untested challenger")
        return start_test(
            services,
            model_cfg,
            now=now,
            trigger_key=trigger_key,
            version=candidate,
            traffic=traffic,
            by=by,
        )
    if action == "pause":
        return _set_status(services, test, abtests.PAUSED, "pause", 0, now, trigger_key, by)
    if action == "resume":
        return _set_status(
            services, test, abtests.RUNNING, "resume", test.traffic_percent, now, trigger_key, by
        )
    if test.status == abtests.PAUSED and action == "check":
        return Outcome(
            "hold", "paused", str(test.id), test.traffic_percent, test.challenger_version
        )
    if action == "check" and test.status == abtests.RUNNING:
        swap = find_replacement(services, model_cfg, test)
        if swap is not None:
            ended = policy.Decision(policy.ROLLBACK, 0, swap.reason)
            apply_decision(
                services, model_cfg, test, ended, now=now, trigger_key=trigger_key, by=by
            )
            with transaction(services.database_url) as connection:
                done = abtests.find_decision_of_run(connection, name, trigger_key)
            return _start_replacement(services, model_cfg, done, now, trigger_key, by)
    decision = next_decision(services, model_cfg, test, action, traffic, now)
    if decision.action == policy.AWAIT_APPROVAL and test.approval == "requested":
        decision = policy.Decision(
            policy.HOLD,
            decision.traffic,
            "awaiting the approval requested earlier",
            decision.numbers,
        )
    return apply_decision(
        services, model_cfg, test, decision, now=now, trigger_key=trigger_key, by=by
    )


def _start_replacement(
    services: Services,
    model_cfg: ModelConfig,
    rollback: tuple[abtests.DecisionRow, str],
    now: datetime,
    trigger_key: str,
    by: str,
) -> Outcome:
    """Start the waiting test after a replacement rollback, once (its own run key): what that
    start decided when it happened already, the rollback when no test waits any more or one
    was started meanwhile (by hand, an approval) before this retry."""
    name, key = model_cfg.name, start_key(trigger_key)
    with transaction(services.database_url) as connection:
        started = abtests.find_decision_of_run(connection, name, key)
        waiting = abtests.live_test(connection, name, (abtests.PENDING,))
        running = abtests.live_test(connection, name, abtests.ACTIVE)
    if started is not None:
        return _repeated(*started)
    if waiting is None or running is not None:
        return _repeated(*rollback)
    return start_test(
        services, model_cfg, now=now, trigger_key=key, version=waiting.challenger_version, by=by
    )


def _repeated(decided: abtests.DecisionRow, version: str) -> Outcome:
    """What the first check of a run key decided (for a retried check)."""
    return Outcome(
        decided.action,
        decided.reason,
        str(decided.test_id),
        decided.traffic_after,
        version,
        decided.numbers,
    )


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
        problem = _why_not_startable(client, model_name, pending, current.get(CHAMPION))
        if problem is None:
            return pending.challenger_version
        log.warning("%s: pending A/B test %s not started: %s", model_name, pending.id, problem)
        with transaction(services.database_url) as connection:
            abtests.update_test(
                connection,
                pending.id,
                status=abtests.ABORTED,
                reason=f"not started: {problem}",
                ended_at=utcnow(),
            )
    version = current.get(CHALLENGER)
    if version is None or version == current.get(CHAMPION):
        return None
    with transaction(services.database_url) as connection:
        tested = abtests.find_test(connection, model_name, version)
    return version if tested is None else None


def _why_not_startable(
    client: MlflowClient, model_name: str, pending: abtests.ABTest, champion: str | None
) -> str | None:
    """Why a pending test can no longer start (its version is the champion, or gone)."""
    if pending.challenger_version == champion:
        return f"v{pending.challenger_version} is the champion now"
    try:
        require_version(client, model_name, pending.challenger_version)
    except DeployError as error:
        return str(error)
    return None


def _set_status(
    services: Services,
    test: abtests.ABTest,
    status: str,
    action: str,
    traffic: int,
    now: datetime,
    trigger_key: str,
    by: str,
) -> Outcome:
    """Pause or resume a test by hand (recorded as a decision)."""
    reason = f"{action} by {by}"
    with transaction(services.database_url) as connection:
        abtests.record_decision(
            connection,
            abtests.DecisionRow(
                test_id=test.id,
                decided_at=now,
                action=action,
                traffic_before=test.traffic_percent,
                traffic_after=traffic,
                reason=reason,
                numbers={},
                decided_by=by,
                trigger_key=trigger_key,
            ),
        )
        abtests.update_test(connection, test.id, status=status)
    return Outcome(action, reason, str(test.id), traffic, test.challenger_version)
