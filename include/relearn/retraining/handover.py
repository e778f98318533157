"""What a retraining run hands over when it ends: the challenger alias, an A/B test request,
and the manual request that asked for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from relearn.abtest.aliases import move_aliases
from relearn.registry import CHALLENGER
from relearn.store import abtests, requests, runs
from relearn.store.db import transaction
from relearn.store.locks import model_lock

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

# Blessed challengers of these sources ask for an A/B test right away (drift hands over).
AB_TEST_SOURCES = (runs.DRIFT_TRIGGERED, runs.DECAY_TRIGGERED)
ALIASED_KEY = "aliased"  # run-metrics key: publish moved the alias; a rerun must not again


def alias_challenger(
    services: Services, model_cfg: ModelConfig, run: runs.RetrainingRun, version: str
) -> str:
    """Alias a blessed version ``challenger`` unless an A/B test is serving the current one.

    Drift- and decay-triggered versions also get a pending A/B test. Under the model's
    deployment lock (no test starts meanwhile); recorded in the run's metrics, so a rerun of a
    published run never moves the alias again. Returns what was done, in words.
    """
    name = model_cfg.name
    with model_lock(services.database_url, name):
        with transaction(services.database_url) as connection:
            serving = abtests.live_test(connection, name, abtests.ACTIVE)
        if serving is not None:
            outcome = f"not aliased: A/B test {serving.id} of v{serving.challenger_version} is live"
        else:
            move_aliases(
                services,
                name,
                [(CHALLENGER, version)],
                reason=f"blessed by {run.source} retraining run {run.id}",
                changed_by="retraining",
            )
            outcome = "aliased challenger"
        with transaction(services.database_url) as connection:
            if run.source in AB_TEST_SOURCES:
                test = abtests.request_test(
                    connection,
                    model_name=name,
                    champion_version=run.params.get("champion_version"),
                    challenger_version=version,
                    stages=model_cfg.abtest.stages,
                    retraining_run_id=run.id,
                    reason=f"{run.source} retraining run {run.id}",
                )
                outcome += f", A/B test {test.id} requested"
            runs.merge_metrics(connection, run.id, {ALIASED_KEY: outcome})
    return outcome


def finish_request(services: Services, request_id: str, retraining_run_id: str | None) -> str:
    """Close a manual request after its run: ``completed`` or ``failed`` as the run ended.

    A run that never started (its first task failed) fails the request too; returns the
    request's final status.
    """
    with transaction(services.database_url) as connection:
        run = runs.get_run(connection, retraining_run_id) if retraining_run_id else None
        if run is not None and run.status == runs.COMPLETED:
            requests.finish_request(connection, request_id, status="completed")
        else:
            reason = run.error_message if run is not None else "the retraining run did not start"
            requests.finish_request(
                connection, request_id, status="failed", error_message=reason or run.status
            )
        final = requests.get_request(connection, request_id)
    log.info("request %s is %s (retraining run %s)", request_id, final.status, retraining_run_id)
    return final.status
