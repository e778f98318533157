"""Prometheus metrics, computed at scrape time from Postgres and the MLflow registry.

Whatever process logged, retrained or alerted, a scrape reads the shared state, so the
figures are right without a metrics push from every worker. ``scrape`` gathers a ``Snapshot``
(bounded, indexed queries: ``relearn.store.metrics``), ``exposition`` renders it in the text
format with ``prometheus_client``. Every series carries a ``model`` label.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from relearn.registry import CHAMPION, alias_version, registry_client
from relearn.store import metrics as store
from relearn.store.db import transaction
from relearn.store.health import HealthCheckRow, latest_checks

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.services import Services
    from relearn.store.monitoring import LatestDrift

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTH_STATUSES = ("healthy", "degraded", "unhealthy")
DRIFT_VERDICTS = ("stable", "drifted", "decayed", "insufficient_data")
REGISTRY_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape reports."""

    now: datetime
    model_names: list[str]
    traffic: list[store.ArmTraffic]
    health: dict[str, HealthCheckRow]
    drift: dict[str, LatestDrift]
    runs: list[store.RunCount]
    last_blessed: dict[str, datetime]
    queues: list[store.QueueState]
    splits: list[store.LiveSplit]
    alerts_24h: list[tuple[str, str, int]]
    # model -> champion version (None: no champion); empty when the registry is unreachable.
    champions: dict[str, str | None]
    registry_up: bool


def _champions(tracking_uri: str, model_names: list[str]) -> tuple[dict[str, str | None], bool]:
    """Each model's champion version, asked for in parallel and given ``REGISTRY_TIMEOUT_S``:
    an MLflow client retries an unreachable server for minutes, longer than any scrape waits,
    and the database's figures must still be served."""
    client = registry_client(tracking_uri)

    def champion(name: str) -> str | None:
        version = alias_version(client, name, CHAMPION)
        return str(version.version) if version else None

    pool = ThreadPoolExecutor(max_workers=min(8, max(1, len(model_names))))
    try:
        futures = {name: pool.submit(champion, name) for name in model_names}
        _, late = wait(futures.values(), timeout=REGISTRY_TIMEOUT_S)
        if late:
            log.warning("metrics: the MLflow registry did not answer in %s s", REGISTRY_TIMEOUT_S)
            return {}, False
        return {name: future.result() for name, future in futures.items()}, True
    except Exception as error:  # an unreachable registry must not hide the database's figures
        log.warning("metrics: the MLflow registry is unreachable: %s", error)
        return {}, False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def database_figures(database_url: str, model_names: list[str], *, now: datetime) -> dict:
    """The snapshot's database part, read in one transaction (``Snapshot`` field -> value)."""
    with transaction(database_url) as connection:
        return {
            "traffic": store.arm_traffic(connection, model_names, now=now),
            "health": latest_checks(connection, model_names),
            "drift": store.latest_drifts(connection, model_names),
            "runs": store.run_counts(connection, model_names),
            "last_blessed": store.last_blessed(connection, model_names),
            "queues": store.queue_states(connection, model_names),
            "splits": store.live_splits(connection, model_names),
            "alerts_24h": store.alert_counts(
                connection, model_names, since=now - timedelta(hours=24)
            ),
        }


def scrape(services: Services, model_names: list[str], *, now: datetime) -> Snapshot:
    """The database's figures, then one registry call per model."""
    figures = database_figures(services.database_url, model_names, now=now)
    champions, registry_up = _champions(services.tracking_uri, model_names)
    return Snapshot(
        now=now,
        model_names=model_names,
        champions=champions,
        registry_up=registry_up,
        **figures,
    )


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _traffic_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    predictions = _gauge(
        "relearn_predictions", "Predictions logged in the window", ["model", "arm", "window"]
    )
    labelled = _gauge(
        "relearn_labelled_predictions",
        "Predictions of the window whose outcome is known",
        ["model", "arm", "window"],
    )
    accuracy = _gauge(
        "relearn_accuracy", "Labelled accuracy in the window", ["model", "arm", "window"]
    )
    latency = _gauge(
        "relearn_latency_p95_ms", "p95 serving latency of the last hour (ms)", ["model", "arm"]
    )
    for arm in snapshot.traffic:
        for window, total, known, correct in (
            ("1h", arm.predictions_1h, arm.labelled_1h, arm.correct_1h),
            ("24h", arm.predictions_24h, arm.labelled_24h, arm.correct_24h),
        ):
            labels = [arm.model_name, arm.arm, window]
            predictions.add_metric(labels, total)
            labelled.add_metric(labels, known)
            if known:
                accuracy.add_metric(labels, correct / known)
        if arm.latency_p95_1h_ms is not None:
            latency.add_metric([arm.model_name, arm.arm], arm.latency_p95_1h_ms)
    yield from (predictions, labelled, accuracy, latency)


def _health_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    score = _gauge("relearn_health_score", "Latest health score (0-1)", ["model"])
    part = _gauge("relearn_health_part", "Latest health score's parts (0-1)", ["model", "part"])
    status = _gauge("relearn_health_status", "1 for the latest health status", ["model", "status"])
    checked = _gauge(
        "relearn_health_checked_timestamp_seconds", "When the latest health check ran", ["model"]
    )
    for name, check in snapshot.health.items():
        checked.add_metric([name], check.checked_at.timestamp())
        for value in HEALTH_STATUSES:
            status.add_metric([name, value], 1.0 if check.status == value else 0.0)
        if check.score is None:
            continue  # a check from before the score existed
        score.add_metric([name], check.score)
        for part_name, value in (
            ("availability", check.availability),
            ("error", check.error_score),
            ("latency", check.latency_score),
        ):
            part.add_metric([name, part_name], value)
    yield from (score, part, status, checked)


def _drift_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    score = _gauge("relearn_drift_score", "Latest drift check's score", ["model"])
    verdict = _gauge(
        "relearn_drift_verdict", "1 for the latest drift verdict", ["model", "verdict"]
    )
    checked = _gauge(
        "relearn_drift_checked_timestamp_seconds", "When the latest drift check ran", ["model"]
    )
    for name, drift in snapshot.drift.items():
        if drift.score is not None:
            score.add_metric([name], drift.score)
        for value in DRIFT_VERDICTS:
            verdict.add_metric([name, value], 1.0 if drift.verdict == value else 0.0)
        checked.add_metric([name], drift.checked_at.timestamp())
    yield from (score, verdict, checked)


def _lifecycle_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    runs = _gauge(
        "relearn_retraining_runs",
        "Retraining runs by source and status",
        ["model", "source", "status"],
    )
    for count in snapshot.runs:
        runs.add_metric([count.model_name, count.source, count.status], count.runs)
    blessed = _gauge(
        "relearn_last_blessed_timestamp_seconds",
        "When the latest blessed candidate's retraining run completed",
        ["model"],
    )
    for name, at in snapshot.last_blessed.items():
        blessed.add_metric([name], at.timestamp())
    depth = _gauge(
        "relearn_request_queue_depth", "Retraining requests by state", ["model", "status"]
    )
    oldest = _gauge(
        "relearn_request_oldest_pending_age_seconds", "Age of the oldest pending request", ["model"]
    )
    queues = {queue.model_name: queue for queue in snapshot.queues}
    for name in snapshot.model_names:
        queue = queues.get(name)
        depth.add_metric([name, "pending"], queue.pending if queue else 0)
        depth.add_metric([name, "processing"], queue.processing if queue else 0)
        age = (snapshot.now - queue.oldest_pending_at).total_seconds() if queue else 0.0
        oldest.add_metric([name], max(0.0, age) if queue and queue.oldest_pending_at else 0.0)
    share = _gauge(
        "relearn_ab_traffic_percent",
        "Share of traffic routed to the challenger of the live A/B test",
        ["model", "challenger_version", "status"],
    )
    for split in snapshot.splits:
        share.add_metric(
            [split.model_name, split.challenger_version, split.status], split.traffic_percent
        )
    alerts = _gauge("relearn_alerts_24h", "Alerts raised in the last 24 h", ["model", "kind"])
    for name, kind, count in snapshot.alerts_24h:
        alerts.add_metric([name, kind], count)
    yield from (runs, blessed, depth, oldest, share, alerts)


def _registry_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    up = _gauge("relearn_registry_up", "1 if the MLflow registry answered this scrape", [])
    up.add_metric([], 1.0 if snapshot.registry_up else 0.0)
    champion = _gauge(
        "relearn_champion_info", "1 per model with its champion version", ["model", "version"]
    )
    deployed = _gauge("relearn_champion_deployed", "1 if the model has a champion", ["model"])
    for name, version in snapshot.champions.items():
        deployed.add_metric([name], 0.0 if version is None else 1.0)
        if version is not None:
            champion.add_metric([name, version], 1.0)
    yield from (up, champion, deployed)


class _SnapshotCollector:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from _traffic_families(self.snapshot)
        yield from _health_families(self.snapshot)
        yield from _drift_families(self.snapshot)
        yield from _lifecycle_families(self.snapshot)
        yield from _registry_families(self.snapshot)


def exposition(snapshot: Snapshot) -> bytes:
    """The snapshot in Prometheus' text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)


def render_metrics(services: Services, model_names: list[str], *, now: datetime) -> bytes:
    return exposition(scrape(services, model_names, now=now))
