"""The health score: ``0.4 * availability + 0.4 * error_score + 0.2 * latency_score``.

Pure decisions over what a check observed (``Observations``) and the model's recent story
(``Facts``): no database, no registry, so every part and every status boundary is unit-tested.

- **availability** -- 0 when no champion is deployed or it does not load (nothing can serve:
  then every part is 0 and the model is ``unhealthy``). Otherwise the window's traffic
  against its usual volume: ``min(1, predictions / (TRAFFIC_FLOOR * usual))``, so half the
  usual volume or more is fully available. "Usual" is the median of the same window on each of
  the 7 days before (the same hours of the day); with no traffic on any of them there is no
  usual volume and any traffic counts as available, none as 0.
- **error_score** -- ``1 - drop / MAX_ACCURACY_DROP`` (clamped to [0, 1]), where ``drop`` is how
  far the labelled accuracy fell below the champion's registered reference accuracy. Judged
  from ``MIN_LABELLED`` labelled predictions on; with fewer (or no reference) it is 1: no
  evidence of errors. The prediction log records no serving errors, so none are counted.
- **latency_score** -- ``2 - p95 / budget`` (clamped): 1 within the configured budget, 0 at
  twice it; 1 when no latency was logged.

Status: ``healthy`` from 0.8, ``degraded`` from 0.5, else ``unhealthy``. Each part below
``PART_BAR`` adds an ``Issue`` whose recommendation names the facts (latest drift verdict,
latest retraining run, A/B state).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

WEIGHTS = {"availability": 0.4, "error": 0.4, "latency": 0.2}
HEALTHY_FROM = 0.8
DEGRADED_FROM = 0.5
# A part below this adds an issue (the same bar as the healthy score).
PART_BAR = 0.8
# Traffic at this share of the usual volume (or more) is fully available.
TRAFFIC_FLOOR = 0.5
# An accuracy this far below the reference scores 0; 0.05 below (drift's default decay bar)
# is the part's bar of 0.8.
MAX_ACCURACY_DROP = 0.25
MIN_LABELLED = 30
USUAL_DAYS = 7


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class Part(StrEnum):
    AVAILABILITY = "availability"
    ERROR = "error"
    LATENCY = "latency"


@dataclass(frozen=True)
class Observations:
    """What one check measured for one model over ``[window_start, checked_at)``."""

    model_name: str
    champion_version: str | None
    # None when it loaded; the loader's message otherwise (or "not checked" without champion).
    load_error: str | None
    predictions: int
    usual_predictions: float | None
    labelled: int
    accuracy: float | None
    reference_accuracy: float | None
    latency_p95_ms: float | None
    latency_budget_ms: float
    window_hours: float


@dataclass(frozen=True)
class DriftFact:
    verdict: str
    checked_at: datetime
    score: float | None
    drifted_features: tuple[str, ...]
    action: str


@dataclass(frozen=True)
class RunFact:
    retraining_run_id: str
    source: str
    status: str
    created_at: datetime
    model_version: str | None
    blessed: bool | None
    error_message: str | None


@dataclass(frozen=True)
class ABFact:
    status: str
    challenger_version: str
    traffic_percent: int
    approval: str | None


@dataclass(frozen=True)
class Facts:
    """The model's recent story, quoted by recommendations (each may be missing)."""

    drift: DriftFact | None = None
    run: RunFact | None = None
    abtest: ABFact | None = None


@dataclass(frozen=True)
class Issue:
    part: Part
    issue: str
    recommendation: str


@dataclass(frozen=True)
class HealthScore:
    score: float
    availability: float
    error_score: float
    latency_score: float
    status: HealthStatus
    issues: tuple[Issue, ...]


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def availability(obs: Observations) -> float:
    if obs.champion_version is None or obs.load_error is not None:
        return 0.0
    if not obs.usual_predictions:
        return 1.0 if obs.predictions > 0 else 0.0
    return _clamp(obs.predictions / (TRAFFIC_FLOOR * obs.usual_predictions))


def accuracy_judged(obs: Observations) -> bool:
    return (
        obs.accuracy is not None
        and obs.reference_accuracy is not None
        and obs.labelled >= MIN_LABELLED
    )


def error_score(obs: Observations) -> float:
    if not accuracy_judged(obs):
        return 1.0
    drop = max(0.0, obs.reference_accuracy - obs.accuracy)  # type: ignore[operator]
    return _clamp(1.0 - drop / MAX_ACCURACY_DROP)


def latency_score(obs: Observations) -> float:
    if obs.latency_p95_ms is None:
        return 1.0
    return _clamp(2.0 - obs.latency_p95_ms / obs.latency_budget_ms)


def status_of(score: float) -> HealthStatus:
    if score >= HEALTHY_FROM:
        return HealthStatus.HEALTHY
    if score >= DEGRADED_FROM:
        return HealthStatus.DEGRADED
    return HealthStatus.UNHEALTHY


def assess(obs: Observations, facts: Facts) -> HealthScore:
    """The score, its parts, the status and the issues of one check (same inputs, same answer)."""
    serving = obs.champion_version is not None and obs.load_error is None
    parts = {
        Part.AVAILABILITY: availability(obs),
        # Without a servable champion nothing is served: no part can be credited.
        Part.ERROR: error_score(obs) if serving else 0.0,
        Part.LATENCY: latency_score(obs) if serving else 0.0,
    }
    # Rounded so that sums like 0.4 * 0.5 + 0.4 + 0.2 land on the bar they mean.
    score = round(sum(WEIGHTS[part] * value for part, value in parts.items()), 6)
    issues = []
    if parts[Part.AVAILABILITY] < PART_BAR:
        issues.append(_availability_issue(obs, facts))
    if serving and parts[Part.ERROR] < PART_BAR:
        issues.append(_error_issue(obs, facts))
    if serving and parts[Part.LATENCY] < PART_BAR:
        issues.append(_latency_issue(obs, facts))
    return HealthScore(
        score=score,
        availability=parts[Part.AVAILABILITY],
        error_score=parts[Part.ERROR],
        latency_score=parts[Part.LATENCY],
        status=status_of(score),
        issues=tuple(issues),
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def describe_drift(drift: DriftFact | None) -> str:
    if drift is None:
        return "drift_monitor has no report yet"
    features = f" in {', '.join(drift.drifted_features[:3])}" if drift.drifted_features else ""
    score = f" (score {drift.score:.2f})" if drift.score is not None else ""
    return f"drift_monitor found {drift.verdict}{features}{score} at {_when(drift.checked_at)}"


def describe_run(run: RunFact | None) -> str:
    if run is None:
        return "no retraining run yet"
    text = f"retraining run {run.retraining_run_id} ({run.source}, {_when(run.created_at)})"
    if run.status == "failed":
        return f"{text} failed: {run.error_message or 'see its task log'}"
    if run.status != "completed":
        return f"{text} is {run.status}"
    if not run.blessed:
        return f"{text} completed but its candidate was not blessed"
    return f"{text} blessed version {run.model_version}"


def describe_abtest(abtest: ABFact | None) -> str:
    if abtest is None:
        return "no A/B test is live"
    text = f"A/B test of version {abtest.challenger_version} is {abtest.status}"
    if abtest.status in ("running", "paused"):
        text += f" at {abtest.traffic_percent} % of traffic"
    if abtest.approval == "requested":
        text += ", waiting for approval (Airflow Required Actions)"
    return text


def _availability_issue(obs: Observations, facts: Facts) -> Issue:
    if obs.champion_version is None:
        return Issue(
            Part.AVAILABILITY,
            "no champion version in the registry",
            f"bootstrap the model (relearn bootstrap --model {obs.model_name}, or --dataset FILE "
            f"for your own data); {describe_run(facts.run)}",
        )
    if obs.load_error is not None:
        return Issue(
            Part.AVAILABILITY,
            f"champion version {obs.champion_version} does not load: {obs.load_error}",
            "roll back to the last known good version (relearn registry rollback --model "
            f"{obs.model_name} --to previous) and check the version's artifacts in MLflow",
        )
    usual = (
        f"{obs.usual_predictions:.0f} usually (median of the same hours on the last "
        f"{USUAL_DAYS} days)"
        if obs.usual_predictions
        else "no traffic in the same hours of the last 7 days either"
    )
    return Issue(
        Part.AVAILABILITY,
        f"{obs.predictions} predictions in the last {obs.window_hours:g} h vs {usual}",
        "check that the serving process runs and logs its predictions (POST "
        f"/relearn/api/v1/models/{obs.model_name}/predictions or Predictor); "
        f"champion is version {obs.champion_version}; {describe_abtest(facts.abtest)}",
    )


def _error_issue(obs: Observations, facts: Facts) -> Issue:
    return Issue(
        Part.ERROR,
        f"accuracy {obs.accuracy:.2f} vs {obs.reference_accuracy:.2f} registered "
        f"on {obs.labelled} labelled predictions",
        f"{describe_drift(facts.drift)}; {describe_run(facts.run)}; "
        f"{describe_abtest(facts.abtest)}" + _error_next_step(obs.model_name, facts),
    )


def _error_next_step(model_name: str, facts: Facts) -> str:
    run = facts.run
    if run is not None and run.status in ("pending", "running"):
        return " -- wait for it"
    if facts.abtest is not None and facts.abtest.status in ("running", "paused", "pending"):
        return " -- let the A/B test decide"
    return f" -- retrain now (Retrain now, or relearn request create --model {model_name})"


def _latency_issue(obs: Observations, facts: Facts) -> Issue:
    return Issue(
        Part.LATENCY,
        f"p95 latency {obs.latency_p95_ms:.0f} ms vs a budget of {obs.latency_budget_ms:.0f} ms",
        f"check the serving hosts' load and the model's size (champion version "
        f"{obs.champion_version}; {describe_abtest(facts.abtest)}), or raise "
        "health.latency_budget_ms if the budget is too tight",
    )
