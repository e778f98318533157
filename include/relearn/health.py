"""Model health: gather what the score needs, score it (``relearn.monitoring.score``), store it.

Per model and check: the champion from the registry (and whether it loads), the window's
traffic against the same window on each of the 7 days before, the champion's own labelled
accuracy and p95 latency, and the model's recent story (drift, retraining, A/B) that the
recommendations quote. One ``health_checks`` row per ``trigger_key``: retries overwrite it.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relearn.monitoring.score import (
    USUAL_DAYS,
    ABFact,
    DriftFact,
    Facts,
    HealthScore,
    Observations,
    RunFact,
    assess,
)
from relearn.registry import CHAMPION, alias_version, load_pyfunc, model_uri, registry_client
from relearn.store import monitoring
from relearn.store.db import transaction
from relearn.store.health import HealthCheckRow, save_check
from relearn.store.prediction_log import window_stats

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthReport:
    model_name: str
    checked_at: datetime
    champion_version: str | None
    observations: Observations
    result: HealthScore
    # The champion's window statistics (``window_stats``): volume, labelled, accuracy, ...
    window: dict[str, Any]

    @property
    def status(self) -> str:
        return self.result.status.value

    @property
    def reasons(self) -> list[str]:
        return [issue.issue for issue in self.result.issues]


def _load_error(services: Services, model_name: str, version: str) -> str | None:
    """None if the champion loads as its servers would load it; else why not."""
    try:
        load_pyfunc(services.tracking_uri, model_uri(model_name, version))
    except Exception as error:  # any failure to load is the finding itself
        return f"{type(error).__name__}: {str(error)[:300]}"
    return None


def usual_volume(history: list[int]) -> float | None:
    """The median of the earlier days' counts; None when none of them saw traffic."""
    return float(statistics.median(history)) if any(history) else None


def read_facts(connection: Connection, model_name: str) -> Facts:
    """The latest drift report, retraining run and live A/B test the recommendations quote."""
    drift = monitoring.latest_drift(connection, model_name)
    run = monitoring.latest_run(connection, model_name)
    test = monitoring.live_test(connection, model_name)
    return Facts(
        drift=DriftFact(
            drift.verdict,
            drift.checked_at,
            drift.score,
            tuple(drift.drifted_features),
            drift.action,
        )
        if drift
        else None,
        run=RunFact(
            run.id,
            run.source,
            run.status,
            run.created_at,
            run.model_version,
            run.blessed,
            run.error_message,
        )
        if run
        else None,
        abtest=ABFact(test.status, test.challenger_version, test.traffic_percent, test.approval)
        if test
        else None,
    )


def check_model_health(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    window: timedelta = timedelta(hours=24),
    trigger_key: str | None = None,
) -> HealthReport:
    """Score the model over ``[now - window, now)`` and record the check.

    Rows no statistic can use are left out and counted (``window["excluded"]``), so a hostile
    producer cannot stop the check.
    """
    name = model_cfg.name
    since = now - window
    champion = alias_version(registry_client(services.tracking_uri), name, CHAMPION)
    version = str(champion.version) if champion else None
    reference = None
    if champion is not None and "relearn.reference_accuracy" in champion.tags:
        reference = float(champion.tags["relearn.reference_accuracy"])
    load_error = _load_error(services, name, version) if version else None
    with transaction(services.database_url) as connection:
        stats = window_stats(connection, model_cfg, version, since=since, until=now)
        counts = monitoring.traffic_by_day(
            connection, name, since=since, until=now, days=USUAL_DAYS
        )
        p95 = (
            monitoring.latency_p95(connection, name, version, since=since, until=now)
            if version
            else None
        )
        observations = Observations(
            model_name=name,
            champion_version=version,
            load_error=load_error,
            predictions=counts[0],
            usual_predictions=usual_volume(counts[1:]),
            labelled=stats["labelled"],
            accuracy=stats["accuracy"],
            reference_accuracy=reference,
            latency_p95_ms=p95,
            latency_budget_ms=model_cfg.health.latency_budget_ms,
            window_hours=window.total_seconds() / 3600,
        )
        result = assess(observations, read_facts(connection, name))
        row = HealthCheckRow(
            model_name=name,
            checked_at=now,
            window_start=since,
            status=result.status.value,
            champion_version=version,
            score=result.score,
            availability=result.availability,
            error_score=result.error_score,
            latency_score=result.latency_score,
            predictions=observations.predictions,
            usual_predictions=observations.usual_predictions,
            labelled=observations.labelled,
            accuracy=observations.accuracy,
            reference_accuracy=reference,
            latency_p95_ms=p95,
            latency_budget_ms=observations.latency_budget_ms,
            issues=[
                {"part": i.part.value, "issue": i.issue, "recommendation": i.recommendation}
                for i in result.issues
            ],
            trigger_key=trigger_key,
        )
        details = {
            "reasons": [i.issue for i in result.issues],
            "window": stats,
            "reference_accuracy": reference,
            "load_error": load_error,
            "traffic_by_day": counts,
        }
        save_check(connection, row, details)
    log.info(
        "%s is %s (score %.2f: availability %.2f, errors %.2f, latency %.2f)%s",
        name,
        result.status.value,
        result.score,
        result.availability,
        result.error_score,
        result.latency_score,
        "".join(f"\n  - {i.issue} -> {i.recommendation}" for i in result.issues),
    )
    return HealthReport(name, now, version, observations, result, stats)
