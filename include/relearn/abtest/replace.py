"""A running test's challenger replaced by a clearly better candidate waiting for the slot.

A model has one test at a time. After a change, the candidate under test may be one trained
before the change had fully shown, while a drift-triggered retraining already asked for a
test of a much better one (a ``pending`` test). Waiting for the running test to end would
keep the better model out for days, so the deployer compares the two candidates' holdout
gains over the champion (recorded by each retraining run's gate) and, when the waiting one's
is larger by ``gates.min_improvement`` (``policy.replaces``), rolls the running test back with
that reason and starts the waiting one (under the check's key + ``/replacement``, so a retry
of a check that died between the two steps finishes the start instead of stopping there).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlflow.exceptions import MlflowException

from relearn.abtest import policy
from relearn.registry import registry_client
from relearn.retraining.artifacts import RUN_TAG
from relearn.store import abtests, runs
from relearn.store.db import transaction

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)


REASON_PREFIX = "replaced by v"


def start_key(trigger_key: str) -> str:
    """The run key of the waiting test's start, after a check's replacement rollback."""
    return f"{trigger_key}/replacement"


def is_replacement(decision: abtests.DecisionRow) -> bool:
    """Whether a decision is the rollback of a test replaced by a waiting one."""
    return decision.action == policy.ROLLBACK and decision.reason.startswith(REASON_PREFIX)


@dataclass(frozen=True)
class Replacement:
    """The waiting test that should take the running one's place, and why."""

    waiting: abtests.ABTest
    reason: str


def retraining_run(services: Services, model_name: str, version: str) -> runs.RetrainingRun | None:
    """The retraining run that registered the version (None for one registered otherwise)."""
    try:
        tags = registry_client(services.tracking_uri).get_model_version(model_name, version).tags
    except MlflowException:
        return None
    try:
        run_id = uuid.UUID(tags.get(RUN_TAG) or "")
    except ValueError:  # no tag, or one written by hand
        return None
    try:
        with transaction(services.database_url) as connection:
            return runs.get_run(connection, run_id)
    except LookupError:  # the tag names a run of another database (a copied registry)
        return None


def decay_run(
    services: Services, model_cfg: ModelConfig, version: str, champion: str
) -> runs.RetrainingRun | None:
    """The decay retraining run of today's ``champion`` that produced ``version``, or None
    (the champion is decaying and the version beat it on the rows since)."""
    run = retraining_run(services, model_cfg.name, version)
    if (
        run is not None
        and run.source == runs.DECAY_TRIGGERED
        and str(run.params.get("champion_version")) == champion
    ):
        return run
    return None


def first_share(services: Services, model_cfg: ModelConfig, version: str, champion: str) -> int:
    """The traffic share a new test of ``version`` starts at (``policy.start_stage``): higher
    when a decay retraining of today's ``champion`` produced it; else the first stage."""
    after_decay = decay_run(services, model_cfg, version, champion) is not None
    return model_cfg.abtest.stages[policy.start_stage(model_cfg.abtest, after_decay=after_decay)]


def offline_evidence(
    services: Services, model_cfg: ModelConfig, version: str, champion: str, *, now: datetime
) -> str | None:
    """Why ``version`` is promoted without a test (``policy.offline_promotion`` on its decay
    retraining's holdout against today's ``champion``), or None; stale evidence is not
    enough (``policy.offline_evidence_fresh``)."""
    run = decay_run(services, model_cfg, version, champion)
    if run is None or "window_end" not in run.params:
        return None
    age = now - datetime.fromisoformat(run.params["window_end"])
    if not policy.offline_evidence_fresh(age, model_cfg.drift):
        return None
    metrics = run.metrics or {}
    return policy.offline_promotion(
        metrics.get("holdout"),
        metrics.get("champion_holdout"),
        model_cfg.abtest,
        model_cfg.gates.min_improvement,
    )


def holdout_gain(services: Services, model_name: str, version: str) -> float | None:
    """The version's holdout accuracy minus the champion's on the same holdout, as its
    retraining run's gate measured it (None for a version no retraining run produced)."""
    run = retraining_run(services, model_name, version)
    metrics = (run.metrics if run is not None else None) or {}
    candidate, champion = metrics.get("holdout") or {}, metrics.get("champion_holdout") or {}
    if "accuracy" not in candidate or "accuracy" not in champion:
        return None
    return float(candidate["accuracy"]) - float(champion["accuracy"])


def find_replacement(
    services: Services, model_cfg: ModelConfig, running: abtests.ABTest
) -> Replacement | None:
    """The pending test whose challenger clearly beats the running test's, or None."""
    name = model_cfg.name
    with transaction(services.database_url) as connection:
        waiting = abtests.live_test(connection, name, (abtests.PENDING,))
    if waiting is None or waiting.challenger_version == running.challenger_version:
        return None
    current = holdout_gain(services, name, running.challenger_version)
    better = holdout_gain(services, name, waiting.challenger_version)
    margin = model_cfg.gates.min_improvement
    if not policy.replaces(current, better, margin):
        return None
    reason = (
        f"{REASON_PREFIX}{waiting.challenger_version}: holdout gain over the champion "
        f"{better:+.4f} vs {current:+.4f} (margin {margin:g})"
    )
    log.info("%s: A/B test %s: %s", name, running.id, reason)
    return Replacement(waiting, reason)
