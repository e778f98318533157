"""What a drift check does about its verdict: nothing, wait, cool down, retrain, or bring a
previous champion back (``relearn.drift.comeback``).

A drifted or decayed verdict asks for a retraining (``drift_triggered`` /
``decay_triggered``; ``estimated_decay`` only with ``drift.retrain_on_estimated_decay``)
unless this is a dry run or the model is cooling down: a retraining of it is running, an A/B
test of it is pending or paused (a running one may be replaced by a better candidate), or the
last drift retraining or comeback happened less than ``cooldown_hours`` ago. A decayed
champion first has its previous champions scored on the rows since the decline: one that is
clearly better there is champion again (``comeback``) instead of a retraining, even while the
retraining would still wait for outcomes to fill its holdout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from relearn.abtest import DeployError
from relearn.abtest.champion import set_champion
from relearn.drift import comeback
from relearn.drift.retrain import labels_wanted
from relearn.store import abtests, runs
from relearn.store import drift_reports as store
from relearn.store.db import transaction

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.drift.performance import PerformanceCheck
    from relearn.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Action:
    """What the check does about its verdict (``relearn.store.drift_reports`` actions), and why."""

    action: str
    reason: str | None = None


def decide(
    connection: Any,
    model_cfg: ModelConfig,
    verdict: str,
    performance: PerformanceCheck,
    *,
    dry_run: bool,
    now: datetime,
) -> Action:
    """What the check does about its verdict, and why (before any comeback)."""
    if verdict == store.ESTIMATED_DECAY and not model_cfg.drift.retrain_on_estimated_decay:
        return Action(store.NONE, "early warning only (drift.retrain_on_estimated_decay is off)")
    if verdict not in (store.DRIFTED, store.DECAYED, store.ESTIMATED_DECAY):
        return Action(store.NONE)
    source = runs.DRIFT_TRIGGERED if verdict == store.DRIFTED else runs.DECAY_TRIGGERED
    if dry_run:
        return Action(store.DRY_RUN, f"dry run: would retrain ({source})")
    cooling = cooldown_reason(connection, model_cfg, now)
    if cooling:
        return Action(store.COOLDOWN, cooling)
    if verdict == store.DECAYED and (waiting := labels_wanted(model_cfg, performance)):
        return Action(store.NONE, waiting)
    return Action(store.RETRAIN, source)


def cooldown_reason(connection: Any, model_cfg: ModelConfig, now: datetime) -> str | None:
    """Why the model must not be retrained for drift now, or None when it may be."""
    running = runs.running_run(connection, model_cfg.name)
    if running:
        return f"retraining run {running[0]} ({running[1]}) is still running"
    # A running test does not cool down: its challenger may predate the change, and a better
    # candidate waits as a pending test that may replace it (relearn.abtest.replace).
    test = abtests.live_test(connection, model_cfg.name, (abtests.PENDING, abtests.PAUSED))
    if test:
        return f"A/B test {test.id} of v{test.challenger_version} is {test.status}"
    hours = model_cfg.drift.cooldown_hours
    last = runs.last_window_end(
        connection, model_cfg.name, (runs.DRIFT_TRIGGERED, runs.DECAY_TRIGGERED), until=now
    )
    if last is not None and now - last < timedelta(hours=hours):
        return f"the last drift retraining started at {last.isoformat()} (cooldown {hours:g} h)"
    # The champion a comeback restored gets as long as a retraining's candidate would.
    last = store.last_action_at(connection, model_cfg.name, store.COMEBACK, now)
    if last is not None and now - last < timedelta(hours=hours):
        return f"a previous champion came back at {last.isoformat()} (cooldown {hours:g} h)"
    return None


def try_comeback(
    services: Services,
    model_cfg: ModelConfig,
    champion: str,
    outcomes: pd.DataFrame,
    performance: PerformanceCheck,
    *,
    now: datetime,
) -> Action | None:
    """A decayed champion replaced by a previous champion (``comeback``), or None.

    Not while a test is live or pending: its candidate was measured against this champion
    and may be the better answer; the retraining's candidate can wait its turn, a comeback
    would end that test.
    """
    if model_cfg.abtest.require_approval:
        return None  # a person approves every change of champion: the retraining's test waits
    with transaction(services.database_url) as connection:
        live = abtests.live_test(connection, model_cfg.name)
    if live is not None:
        return None
    found = comeback.find(services, model_cfg, champion, outcomes, performance, now)
    if found is None:
        return None
    try:
        set_champion(
            services,
            model_cfg,
            version=found.version,
            by="drift monitor",
            reason=found.reason,
            only_if_champion=champion,
        )
    except DeployError as error:  # the state it was measured on changed, or it was archived
        log.info("%s: no comeback: %s", model_cfg.name, error)
        return None
    log.info("%s: v%s is champion again: %s", model_cfg.name, found.version, found.reason)
    return Action(store.COMEBACK, found.reason)
