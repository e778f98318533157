"""Model health: is a champion deployed, is traffic flowing, has accuracy held up?"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relearn.registry import CHAMPION, alias_version, registry_client
from relearn.store.db import transaction
from relearn.store.predictions import window_stats

if TYPE_CHECKING:
    from relearn.config import ModelConfig

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
    model_cfg: ModelConfig,
    database_url: str,
    tracking_uri: str,
    *,
    now: datetime,
    window: timedelta = timedelta(hours=24),
    run_key: str | None = None,
) -> HealthReport:
    """Assess one model and record the report (one row per ``run_key``: retries overwrite it)."""
    champion = alias_version(registry_client(tracking_uri), model_cfg.name, CHAMPION)
    reference = None
    if champion is not None and "relearn.reference_accuracy" in champion.tags:
        reference = float(champion.tags["relearn.reference_accuracy"])
    with transaction(database_url) as connection:
        stats = window_stats(connection, model_cfg.name, now - window)
        report = assess(
            model_cfg.name, str(champion.version) if champion else None, reference, stats, now
        )
        details = {k: v for k, v in asdict(report).items() if k in ("reasons", "window")}
        details["reference_accuracy"] = reference
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO health_checks
                    (model_name, checked_at, status, champion_version, details, dag_run_id)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (model_name, dag_run_id) DO UPDATE SET
                    checked_at = EXCLUDED.checked_at, status = EXCLUDED.status,
                    champion_version = EXCLUDED.champion_version, details = EXCLUDED.details
                """,
                (
                    model_cfg.name,
                    now,
                    report.status,
                    report.champion_version,
                    json.dumps(details),
                    run_key,
                ),
            )
    log.info("%s is %s %s", model_cfg.name, report.status, "; ".join(report.reasons))
    return report
