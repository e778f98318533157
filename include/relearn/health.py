"""Model health: is a champion deployed, is traffic flowing, has accuracy held up?"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relearn.registry import CHAMPION, alias_version, registry_client
from relearn.store.db import transaction
from relearn.store.health import save_check
from relearn.store.prediction_log import window_stats

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

# Accuracy this far below the champion's reference accuracy marks the model degraded.
ACCURACY_TOLERANCE = 0.10
MIN_LABELLED_FOR_ACCURACY = 30


@dataclass(frozen=True)
class HealthReport:
    model_name: str
    checked_at: datetime
    status: str
    champion_version: str | None
    reasons: list[str]
    window: dict[str, Any]
    reference_accuracy: float | None


def assess(
    model_name: str,
    champion_version: str | None,
    reference_accuracy: float | None,
    window: dict[str, Any],
    checked_at: datetime,
) -> HealthReport:
    """Pure decision: the same inputs always give the same verdict (testable without servers)."""
    reasons: list[str] = []
    status = "healthy"
    if champion_version is None:
        reasons = ["no champion version in the registry"]
        return HealthReport(
            model_name, checked_at, "unhealthy", None, reasons, window, reference_accuracy
        )
    if window["predictions"] == 0:
        status, reasons = "degraded", ["no predictions in the window"]
    accuracy = window.get("accuracy")
    if (
        accuracy is not None
        and reference_accuracy is not None
        and window["labelled"] >= MIN_LABELLED_FOR_ACCURACY
        and accuracy < reference_accuracy - ACCURACY_TOLERANCE
    ):
        status = "degraded"
        reasons.append(
            f"accuracy {accuracy:.3f} is more than {ACCURACY_TOLERANCE:.2f} below the "
            f"reference {reference_accuracy:.3f}"
        )
    return HealthReport(
        model_name, checked_at, status, champion_version, reasons, window, reference_accuracy
    )


def check_model_health(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    window: timedelta = timedelta(hours=24),
    trigger_key: str | None = None,
) -> HealthReport:
    """Assess the champion's own traffic of ``[now - window, now)`` and record the report (one
    row per ``trigger_key``: retries overwrite it). Rows no statistic can use are left out and
    counted (``window["excluded"]``), so a hostile producer cannot stop the check."""
    champion = alias_version(registry_client(services.tracking_uri), model_cfg.name, CHAMPION)
    version = str(champion.version) if champion else None
    reference = None
    if champion is not None and "relearn.reference_accuracy" in champion.tags:
        reference = float(champion.tags["relearn.reference_accuracy"])
    with transaction(services.database_url) as connection:
        stats = window_stats(connection, model_cfg, version, since=now - window, until=now)
        report = assess(model_cfg.name, version, reference, stats, now)
        save_check(
            connection,
            model_name=model_cfg.name,
            checked_at=now,
            status=report.status,
            champion_version=report.champion_version,
            details={"reasons": report.reasons, "window": stats, "reference_accuracy": reference},
            trigger_key=trigger_key,
        )
    log.info("%s is %s %s", model_cfg.name, report.status, "; ".join(report.reasons))
    return report
