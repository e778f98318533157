"""The A/B part of ``make demo``: a test that goes 10 -> 25 -> 50 -> 100 % and promotes, then
a worse challenger that is rolled back, in a few simulated hours.

Dwell times and sample minimums are compressed through ``RELEARN__ABTEST__*`` overrides
(``DEMO_AB_OVERRIDES``), which the demo exports to every process it starts. Traffic is routed
by the live split (``SplitRouter``) so each arm's numbers come from real routed predictions;
the ``ab_promotion`` DAG decides after each simulated hour, with that hour as its logical date.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from relearn.abtest.aliases import PREVIOUS_CHAMPION
from relearn.abtest.deploy import start_test
from relearn.registry import CHALLENGER, aliases, registry_client
from relearn.services import Services
from relearn.serving.predictor import Predictor
from relearn.serving.router import SplitRouter, live_split
from relearn.simulate.traffic import simulate_traffic
from relearn.store.abtests import find_test
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Callable

    from relearn.config import ModelConfig
    from relearn.settings import Settings
    from relearn.simulate.world import World

log = logging.getLogger(__name__)

# One simulated hour per stage, a few hundred outcomes per arm suffice at 2,000 an hour.
DEMO_AB_OVERRIDES = {
    "RELEARN__ABTEST__MIN_DWELL_HOURS": "[1, 2, 3]",
    "RELEARN__ABTEST__MIN_SAMPLES_PER_ARM": "150",
}
PREDICTIONS_PER_HOUR = 2000
MAX_HOURS = 6


def _routed_traffic(
    model_cfg: ModelConfig, settings: Settings, world: World, start: datetime, seed: int
) -> None:
    """An hour of the demo world's traffic, routed by the live split."""
    database_url = settings.database_url("relearn")
    router = SplitRouter(live_split(database_url, model_cfg.name), ttl=0)
    with Predictor(
        Services.from_settings(settings), model_cfg, router=router, alias_ttl=0
    ) as predictor:
        simulate_traffic(
            world,
            predictor,
            start=start,
            end=start + timedelta(hours=1),
            predictions_per_hour=PREDICTIONS_PER_HOUR,
            outcome_delay=timedelta(minutes=10),
            rng=np.random.default_rng(seed),
        )


def _test_status(settings: Settings, model_name: str, version: str) -> str | None:
    with transaction(settings.database_url("relearn")) as connection:
        test = find_test(connection, model_name, version)
    return None if test is None else test.status


def run_ab_phase(
    models: list[ModelConfig],
    settings: Settings,
    start: datetime,
    run_dag: Callable[[datetime], bool],
    worlds: dict[str, World],
) -> bool:
    """Test every model's pending challenger to promotion, then its old champion to rollback.

    The models share the simulated hours: each hour every model gets routed traffic, then one
    ``ab_promotion`` run (which covers every model) decides.
    """
    client = registry_client(settings.tracking_uri)
    testing = {m.name: v for m in models if (v := aliases(client, m.name).get(CHALLENGER))}
    for model_cfg in models:
        if model_cfg.name not in testing:
            log.warning("%s: no challenger to test; skipping its A/B demo", model_cfg.name)
    if not testing:
        return True
    hour = start
    if not run_dag(hour):  # starts the pending tests at 10 %
        return False
    for _ in range(MAX_HOURS):
        _traffic_hour(models, settings, worlds, hour)
        hour += timedelta(hours=1)
        if not run_dag(hour):
            return False
        if all(_test_status(settings, n, v) != "running" for n, v in testing.items()):
            break
    for name, version in testing.items():
        log.info("%s: A/B test of v%s is %s", name, version, _test_status(settings, name, version))
    # A user tries each old champion again: far worse on today's traffic, so it is rolled back.
    services = Services.from_settings(settings)
    retried = {}
    for model_cfg in models:
        older = aliases(client, model_cfg.name).get(PREVIOUS_CHAMPION)
        if model_cfg.name in testing and older is not None:
            start_test(
                services,
                model_cfg,
                now=hour,
                trigger_key=f"demo-{hour.isoformat()}",
                version=older,
                by="demo",
            )
            retried[model_cfg.name] = older
    if not retried:
        return True
    _traffic_hour(models, settings, worlds, hour, seed_offset=1)
    hour += timedelta(hours=1)
    ok = run_dag(hour)
    for name, version in retried.items():
        log.info("%s: A/B test of v%s is %s", name, version, _test_status(settings, name, version))
    return ok


def _traffic_hour(
    models: list[ModelConfig],
    settings: Settings,
    worlds: dict[str, World],
    hour: datetime,
    *,
    seed_offset: int = 0,
) -> None:
    for index, model_cfg in enumerate(models):
        seed = int(hour.timestamp()) + seed_offset + 1000 * index
        _routed_traffic(model_cfg, settings, worlds[model_cfg.name], hour, seed=seed)
