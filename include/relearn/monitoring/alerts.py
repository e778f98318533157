"""Alerts: what deserves one, raised once, sent until delivered.

Evaluated by the ``model_health`` DAG right after its checks (task ``alerts``), per model over
the DAG run's data interval ``[since, until)``:

- ``health_low``: the run's health check scored below 0.8 (critical when ``unhealthy``);
- ``drift``: a drift check of the interval found ``drifted``, ``decayed`` or
  ``estimated_decay`` (confidences say accuracy fell while outcomes are not in yet);
- ``retraining_failed``: a retraining run failed in the interval;
- ``rollback``: an A/B test was rolled back, or the champion moved back to an older version;
- ``request_stuck``: a retraining request is still ``processing`` past its lease.

An alert names its ``subject`` (the check, report, run, decision, alias change or request), so
the same event never alerts twice (a retried task, overlapping intervals). A cooldown per model
and kind (``health.alert_cooldown_hours``) drops a new alert of a kind that alerted recently: a
lasting condition alerts once per cooldown, not every hour. Raising and sending are separate:
``deliver`` sends every undelivered alert through the given ``send`` and records the outcome,
so a channel that was down gets the alert on the next attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from relearn.monitoring.score import HEALTHY_FROM
from relearn.store import alerts as store
from relearn.store import monitoring
from relearn.store.db import transaction
from relearn.store.health import get_check

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from psycopg2.extensions import connection as Connection

    from relearn.store.health import HealthCheckRow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


class AlertKind(StrEnum):
    HEALTH_LOW = "health_low"
    DRIFT = "drift"
    RETRAINING_FAILED = "retraining_failed"
    ROLLBACK = "rollback"
    REQUEST_STUCK = "request_stuck"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


def health_alert(check: HealthCheckRow) -> store.NewAlert | None:
    """An alert for a check scored below the healthy bar (pure)."""
    if check.score is None or check.score >= HEALTHY_FROM:
        return None
    issues = check.issues or []
    return store.NewAlert(
        model_name=check.model_name,
        kind=AlertKind.HEALTH_LOW.value,
        severity=(Severity.CRITICAL if check.status == "unhealthy" else Severity.WARNING).value,
        subject=f"health_check:{check.trigger_key or check.checked_at.isoformat()}",
        message=f"{check.model_name} is {check.status}: health {check.score:.2f} "
        f"(availability {check.availability:.2f}, errors {check.error_score:.2f}, "
        f"latency {check.latency_score:.2f})" + "".join(f"; {issue['issue']}" for issue in issues),
        recommendation="; ".join(issue["recommendation"] for issue in issues) or None,
    )


def _event_alerts(
    connection: Connection, model_name: str, *, since: datetime, until: datetime
) -> list[store.NewAlert]:
    found = [
        (AlertKind.DRIFT, Severity.WARNING, monitoring.drift_events, "a retraining follows if the "
         "drift monitor asked for one; see the drift report"),
        (AlertKind.RETRAINING_FAILED, Severity.CRITICAL, monitoring.failed_runs,
         "read the run's task log in Airflow, fix the cause and file a request to retry"),
        (AlertKind.ROLLBACK, Severity.CRITICAL, monitoring.rollbacks,
         "check why the version was rolled back before retraining again"),
    ]  # fmt: skip
    alerts = []
    for kind, severity, read, advice in found:
        for event in read(connection, model_name, since=since, until=until):
            alerts.append(
                store.NewAlert(
                    model_name, kind.value, severity.value, event.subject, event.text, advice
                )
            )
    for event in monitoring.stuck_requests(connection, model_name, now=until):
        alerts.append(
            store.NewAlert(
                model_name,
                AlertKind.REQUEST_STUCK.value,
                Severity.WARNING.value,
                event.subject,
                event.text,
                "the manual_retraining DAG reclaims expired leases; if it is not running, "
                "check its scheduler and workers",
            )
        )
    return alerts


def raise_alerts(
    database_url: str,
    model_name: str,
    *,
    since: datetime,
    until: datetime,
    cooldown: timedelta,
    trigger_key: str,
) -> list[store.AlertRow]:
    """Raise the model's alerts of ``[since, until)``; returns those raised now."""
    with transaction(database_url) as connection:
        check = get_check(connection, model_name, trigger_key)
        wanted = _event_alerts(connection, model_name, since=since, until=until)
        health = health_alert(check) if check else None
        if health:
            wanted.insert(0, health)
        raised = []
        for alert in wanted:
            stored = store.raise_alert(
                connection, alert, raised_at=until, cooldown=cooldown, trigger_key=trigger_key
            )
            if stored is None:
                log.info("%s %s (%s): deduplicated or in cooldown", model_name, alert.kind,
                         alert.subject)  # fmt: skip
            else:
                log.warning("ALERT %s %s: %s", model_name, alert.kind, alert.message)
                raised.append(stored)
    return raised


@dataclass(frozen=True)
class Delivery:
    delivered: list[store.AlertRow]
    failed: list[tuple[store.AlertRow, str]]


def deliver(
    database_url: str, send: Callable[[store.AlertRow], None], *, now: datetime
) -> Delivery:
    """Send every undelivered alert (up to ``MAX_ATTEMPTS`` tries each) and record how it went.

    ``send`` raises on failure; the alert stays undelivered with the error for the next run.
    """
    delivered, failed = [], []
    with transaction(database_url) as connection:
        for alert in store.undelivered(connection, max_attempts=MAX_ATTEMPTS):
            try:
                send(alert)
            except Exception as error:  # a channel's failure must not lose the other alerts
                message = f"{type(error).__name__}: {error}"
                log.error("alert %s (%s) not delivered: %s", alert.id, alert.kind, message)
                store.record_attempt(connection, alert.id, error=message, at=now)
                failed.append((alert, message))
                if alert.attempts + 1 >= MAX_ATTEMPTS:
                    log.error(
                        "alert %s (%s of %s) given up after %d attempts: fix the channel's "
                        "connection; it stays in the alerts table and on the page",
                        alert.id,
                        alert.kind,
                        alert.model_name,
                        MAX_ATTEMPTS,
                    )
            else:
                store.record_attempt(connection, alert.id, error=None, at=now)
                delivered.append(alert)
    return Delivery(delivered, failed)
