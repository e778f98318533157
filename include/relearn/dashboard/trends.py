"""Trends for the charts: labelled accuracy, volume and latency p95 per arm over time, and the
drift score with the most drifted features of the latest check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relearn.store import dashboard

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

# Bucket size -> (its length, how many the charts show): 48 hours or 30 days.
BUCKETS = {"hour": (timedelta(hours=1), 48), "day": (timedelta(days=1), 30)}
DRIFT_LIMIT = 96
TOP_FEATURES = 8


@dataclass(frozen=True)
class ArmPoint:
    start: datetime
    predictions: int
    labelled: int
    correct: int
    accuracy: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True)
class DriftPoint:
    checked_at: datetime
    score: float | None
    threshold: float
    verdict: str
    drifted_features: list[str]


@dataclass(frozen=True)
class FeatureDriftView:
    name: str
    drifted: bool
    psi: float | None
    effects: list[str]


@dataclass(frozen=True)
class Trends:
    bucket: str
    since: datetime
    until: datetime
    arms: dict[str, list[ArmPoint]]  # served_by -> points, oldest first
    drift: list[DriftPoint]  # oldest first
    drift_checked_at: datetime | None
    top_features: list[FeatureDriftView]  # of the latest drift check, most drifted first


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """The start of the hour or day (UTC) that holds ``moment``."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour.replace(hour=0) if bucket == "day" else hour


def _arms(buckets: list[dashboard.TrafficBucket]) -> dict[str, list[ArmPoint]]:
    arms: dict[str, list[ArmPoint]] = {}
    for b in buckets:
        accuracy = b.correct / b.labelled if b.labelled else None
        point = ArmPoint(b.start, b.predictions, b.labelled, b.correct, accuracy, b.latency_p95_ms)
        arms.setdefault(b.arm, []).append(point)
    return arms


def _psi(feature: dict[str, Any]) -> float | None:
    value = (feature.get("stats") or {}).get("psi")
    return float(value) if isinstance(value, int | float) else None


def most_drifted(
    features: list[dict[str, Any]], limit: int = TOP_FEATURES
) -> list[FeatureDriftView]:
    """Drifted features first, then by PSI (as the drift report ranks them)."""
    assessed = [f for f in features if isinstance(f, dict) and f.get("assessed")]
    ranked = sorted(assessed, key=lambda f: (bool(f.get("drifted")), _psi(f) or 0.0), reverse=True)
    return [
        FeatureDriftView(
            name=str(f.get("name")),
            drifted=bool(f.get("drifted")),
            psi=_psi(f),
            effects=[str(e) for e in f.get("effects") or []],
        )
        for f in ranked[:limit]
    ]


def read_trends(connection: Connection, model: str, *, now: datetime, bucket: str) -> Trends:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    step, count = BUCKETS[bucket]
    until = bucket_start(now, bucket) + step  # the current bucket, so far
    since = until - step * count
    reports = dashboard.drift_history(connection, model, DRIFT_LIMIT)
    latest = reports[0] if reports else None
    features = dashboard.drift_features(connection, latest["id"]) if latest else []
    return Trends(
        bucket=bucket,
        since=since,
        until=until,
        arms=_arms(dashboard.traffic(connection, model, since=since, until=until, bucket=bucket)),
        drift=[
            DriftPoint(
                checked_at=r["checked_at"],
                score=r["score"],
                threshold=r["threshold"],
                verdict=r["verdict"],
                drifted_features=list(r["drifted_features"] or []),
            )
            for r in reversed(reports)
        ],
        drift_checked_at=latest["checked_at"] if latest else None,
        top_features=most_drifted(features if isinstance(features, list) else []),
    )
