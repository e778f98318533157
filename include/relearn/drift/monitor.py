"""One drift check of a model's champion: statistics, performance, verdict, action, report.

``check`` looks at the champion's predictions of the last ``window_hours`` before ``now``:

- **feature drift** (``relearn.drift.compare.compare`` against the version's stored profile):
  the score is the share of assessed features that drifted, compared with ``threshold``;
- **performance decay** (``relearn.drift.performance``): accuracy on the labelled rows of
  the last ``window_hours`` + ``drift.outcome_delay_hours`` against the accuracy the version
  was registered with;
- **estimated performance** (``relearn.drift.estimate``): the accuracy expected from the
  calibrated confidences (CBPE) of the champion and, during an A/B test, the challenger,
  beside the realised accuracy and calibration error once outcomes are in.

Verdict: ``decayed`` (outcomes say the model got worse: it matters most), else ``drifted``
from the features, else ``estimated_decay`` (too few outcomes for a realised verdict, but
the estimate fell by ``max_accuracy_drop``: an early warning), else ``stable`` /
``insufficient_data``. What the check does about it (retrain, wait, cool down, or bring a
previous champion back) is ``relearn.drift.action``'s.

Every check writes one ``drift_reports`` row, keyed by ``trigger_key`` so a retried check returns
the same report instead of computing another; a drifted or decayed one also gets an HTML
report (most drifted features, with charts) as an MLflow artifact.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from relearn.drift.action import Action, decide, try_comeback
from relearn.drift.columns import json_safe
from relearn.drift.compare import Verdict, compare
from relearn.drift.estimate import challenger_estimate, estimate_window, judge
from relearn.drift.html import render_report
from relearn.drift.performance import (
    PerformanceCheck,
    check_performance,
    performance_window_hours,
)
from relearn.drift.reference import MissingProfileError, load_profile
from relearn.drift.window import ACTUAL, CONFIDENCE, PREDICTED, PREDICTED_AT, load_window
from relearn.registry import CHAMPION, alias_version, registry_client, tagged_run
from relearn.services import NoChampionError, experiment_name
from relearn.store import drift_reports as store
from relearn.store.db import transaction

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.drift.compare import DriftReport
    from relearn.drift.estimate import PerformanceEstimate
    from relearn.drift.profile import ReferenceProfile
    from relearn.services import Services

log = logging.getLogger(__name__)

REPORT_ARTIFACT = "drift_report.html"
REPORT_TAG = "relearn.drift_report_id"


class DriftCheckError(RuntimeError):
    """The check cannot run for a reason retrying will not fix (the champion has no profile).

    A model without a champion raises ``relearn.services.NoChampionError`` instead: a skip.
    """


@dataclass(frozen=True)
class CheckOptions:
    """Per-check options (DAG Params / CLI flags); unset ones come from the model's config."""

    window_hours: int
    threshold: float
    min_rows: int
    dry_run: bool = False

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, **overrides: Any) -> CheckOptions:
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}")
        drift = model_cfg.drift
        values: dict[str, Any] = {
            "window_hours": drift.window_hours,
            "threshold": drift.threshold,
            "min_rows": drift.min_rows,
        }
        values.update({k: v for k, v in overrides.items() if v is not None and v != ""})
        options = cls(**values)
        if options.window_hours < 1 or options.min_rows < 1:
            raise ValueError("window_hours and min_rows must be at least 1")
        if not 0 < options.threshold <= 1:
            raise ValueError("threshold must be within (0, 1]")
        return options


def check(
    services: Services,
    model_cfg: ModelConfig,
    options: CheckOptions,
    *,
    trigger_key: str,
    now: datetime,
) -> store.DriftReportRow:
    """Check the champion's last ``window_hours`` before ``now``; once per ``trigger_key``.

    :raises NoChampionError: the model has no champion to check.
    :raises DriftCheckError: the champion has no reference profile.
    """
    with transaction(services.database_url) as connection:
        existing = store.get_report(connection, model_cfg.name, trigger_key)
    if existing is not None:
        log.info(
            "%s: check %s was already done: %s", model_cfg.name, trigger_key, describe(existing)
        )
        return existing
    version, profile = _champion_profile(services, model_cfg)
    window = _load(services, model_cfg, version, options, now)
    challenger = challenger_estimate(services, model_cfg, window.since, window.until)
    found = _assess(model_cfg, options, profile, window, challenger)
    with transaction(services.database_url) as connection:
        action = decide(
            connection,
            model_cfg,
            found.verdict,
            found.performance,
            dry_run=options.dry_run,
            now=now,
        )
    if found.verdict == store.DECAYED and action.action in (store.RETRAIN, store.NONE):
        # Not a dry run, not cooling down: a previous champion may beat the retraining to it.
        action = (
            try_comeback(services, model_cfg, version, window.outcomes, found.performance, now=now)
            or action
        )
    row_id = store.report_id(model_cfg.name, trigger_key)
    report_uri = None
    if found.verdict in (store.DRIFTED, store.DECAYED, store.ESTIMATED_DECAY):
        summary = _summary(window, found, options, action)
        features = found.drift.to_dict()["features"]
        report_uri = _log_html(services, model_cfg, row_id, summary, features, profile, window)
    row = _report_row(row_id, window, found, options, action, report_uri, trigger_key)
    with transaction(services.database_url) as connection:
        stored = store.save_report(connection, row)
    log.info("%s: %s", model_cfg.name, describe(stored))
    return stored


@dataclass(frozen=True)
class Window:
    """The champion's predictions a check looks at: ``[since, until)`` of one version, and
    those whose outcomes the performance check reads (from further back when they are late)."""

    model_name: str
    version: str
    since: datetime
    until: datetime
    frame: pd.DataFrame
    outcomes: pd.DataFrame


@dataclass(frozen=True)
class Assessment:
    """What the window says: feature drift, performance decay (realised and estimated per
    version, the champion's first), and the verdict of them all."""

    drift: DriftReport
    performance: PerformanceCheck
    estimates: list[PerformanceEstimate]
    verdict: str


def _champion_profile(services: Services, model_cfg: ModelConfig) -> tuple[str, ReferenceProfile]:
    """The champion's version and the reference profile it was registered with."""
    champion = alias_version(registry_client(services.tracking_uri), model_cfg.name, CHAMPION)
    if champion is None:
        raise NoChampionError(model_cfg.name)
    version = str(champion.version)
    try:
        profile = load_profile(services.tracking_uri, model_cfg.name, version)
    except MissingProfileError as error:
        raise DriftCheckError(str(error)) from error
    return version, profile


def _load(
    services: Services, model_cfg: ModelConfig, version: str, options: CheckOptions, now: datetime
) -> Window:
    """The version's predictions of the last ``window_hours`` before ``now`` (and of the
    performance window, when outcomes are late)."""
    since = now - timedelta(hours=options.window_hours)
    delay = model_cfg.drift.outcome_delay_hours
    with transaction(services.database_url) as connection:
        frame = load_window(connection, model_cfg, version, since=since, until=now)
        outcomes = frame
        if delay > 0:
            hours = performance_window_hours(options.window_hours, delay)
            outcomes = load_window(
                connection, model_cfg, version, since=now - timedelta(hours=hours), until=now
            )
    log.info(
        "%s v%s: checking %d predictions of [%s, %s)",
        model_cfg.name,
        version,
        len(frame),
        since.isoformat(),
        now.isoformat(),
    )
    return Window(model_cfg.name, version, since, now, frame, outcomes)


def _assess(
    model_cfg: ModelConfig,
    options: CheckOptions,
    profile: ReferenceProfile,
    champion: Window,
    challenger: PerformanceEstimate | None,
) -> Assessment:
    """Compare the window with the profile, the performance window's outcomes (or, while they
    are late, the window's estimated accuracy) with the reference accuracy."""
    window = champion.frame
    drift = compare(
        profile,
        window,
        model_cfg,
        predicted_labels=window[PREDICTED],
        confidences=window[CONFIDENCE],
        threshold=options.threshold,
        min_rows=options.min_rows,
    )
    performance = check_performance(
        champion.outcomes[PREDICTED].tolist(),
        champion.outcomes[ACTUAL].tolist(),
        profile.reference_accuracy,
        min_rows=model_cfg.drift.min_labelled_rows,
        max_drop=model_cfg.drift.max_accuracy_drop,
        predicted_at=champion.outcomes[PREDICTED_AT].tolist(),
        until=champion.until,
    )
    estimate = judge(
        estimate_window(
            window,
            role=CHAMPION,
            version=champion.version,
            min_rows=options.min_rows,
            min_labelled_rows=model_cfg.drift.min_labelled_rows,
        ),
        profile.reference_accuracy,
        max_drop=model_cfg.drift.max_accuracy_drop,
    )
    estimates = [estimate] if challenger is None else [estimate, challenger]
    # Outcomes saying the model got worse matter more than inputs that moved; an estimate
    # only speaks while too few of the window's own outcomes are in (the performance check
    # may read older ones, from before whatever the window holds).
    if performance.decayed:
        verdict = store.DECAYED
    elif drift.verdict is Verdict.DRIFTED:
        verdict = store.DRIFTED
    elif estimate.decayed and estimate.realised_accuracy is None:
        verdict = store.ESTIMATED_DECAY
    else:
        verdict = str(drift.verdict)
    return Assessment(drift, performance, estimates, verdict)


def _summary(
    window: Window, found: Assessment, options: CheckOptions, action: Action
) -> dict[str, Any]:
    """The head of the HTML report."""
    return {
        "version": window.version,
        "window": f"{window.since.isoformat()} .. {window.until.isoformat()}",
        "rows": len(window.frame),
        "verdict": found.verdict,
        "score": found.drift.score,
        "threshold": options.threshold,
        "worst_psi": worst_psi(found.drift),
        "performance": found.performance.reason,
        "estimate": "; ".join(f"{e.role} v{e.version}: {e.reason}" for e in found.estimates),
        "action": f"{action.action}: {action.reason}" if action.reason else action.action,
    }


def _report_row(
    row_id: uuid.UUID,
    window: Window,
    found: Assessment,
    options: CheckOptions,
    action: Action,
    report_uri: str | None,
    trigger_key: str,
) -> store.DriftReportRow:
    """The ``drift_reports`` row of a check."""
    drift_dict = found.drift.to_dict()
    return store.DriftReportRow(
        id=row_id,
        model_name=window.model_name,
        model_version=window.version,
        checked_at=window.until,
        window_start=window.since,
        rows=len(window.frame),
        labelled_rows=found.performance.labelled_rows,
        score=drift_dict["score"],
        threshold=options.threshold,
        verdict=found.verdict,
        drifted_features=found.drift.drifted_features,
        features=drift_dict["features"],
        prediction=drift_dict["prediction"],
        performance={**found.performance.to_dict(), "worst_psi": worst_psi(found.drift)},
        action=action.action,
        action_reason=action.reason,
        report_uri=report_uri,
        retraining_run_id=None,
        trigger_key=trigger_key,
        estimate=[json_safe(e.to_dict()) for e in found.estimates],
    )


def worst_psi(drift: DriftReport) -> float | None:
    """The largest PSI of any assessed feature: how far the worst one moved."""
    values = [f.stats.get("psi") for f in drift.features if f.assessed]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite, default=None)


def describe(report: store.DriftReportRow) -> str:
    """One line for logs and the CLI."""
    score = "n/a" if report.score is None else f"{report.score:.2f}"
    text = (
        f"v{report.model_version} {report.verdict} (score {score} / {report.threshold:g}, "
        f"{report.rows} rows, {report.labelled_rows} labelled"
    )
    if report.drifted_features:
        text += f", drifted: {', '.join(report.drifted_features)}"
    accuracy = (report.performance or {}).get("accuracy")
    if accuracy is not None:
        text += f", accuracy {accuracy:.3f} vs {report.performance['reference_accuracy']:.3f}"
    champion = (report.estimate or [{}])[0]
    if champion.get("estimated_accuracy") is not None:
        text += f", estimated accuracy {champion['estimated_accuracy']:.3f}"
    text += f") -> {report.action}"
    if report.action_reason:
        text += f" ({report.action_reason})"
    return text


def _log_html(
    services: Services,
    model_cfg: ModelConfig,
    report_id: Any,
    summary: dict[str, Any],
    features: list[dict[str, Any]],
    profile: ReferenceProfile,
    window: Window,
) -> str:
    """Write the HTML report into an MLflow run of its own (found again by tag on a retry)."""
    client = registry_client(services.tracking_uri)
    _, run_id, _ = tagged_run(
        client,
        experiment_name(model_cfg.name),
        REPORT_TAG,
        {REPORT_TAG: str(report_id), "relearn.model": model_cfg.name},
        run_name=f"{model_cfg.name}-drift-{str(report_id)[:8]}",
    )
    page = render_report(summary, features, profile, window.frame, model_cfg)
    client.log_text(run_id, page, REPORT_ARTIFACT)
    if summary["score"] is not None:
        client.log_metric(run_id, "drift_score", summary["score"])
    client.set_terminated(run_id)
    return f"runs:/{run_id}/{REPORT_ARTIFACT}"
