"""What retraining a drift report asks for: the ``ReinforceOptions`` overrides of its run.

A drifted report (the inputs moved) retrains on the last ``drift.retrain_lookback_days``. A
decayed one (outcomes say the model got worse) knows when the decline began
(``changed_hours_ago``, ``relearn.drift.performance``); with ``drift.retrain_from_change`` its
run learns from the rows since then only, as the daily run's 7 days would mostly teach the old
concept back, and from every error there (``drift.decay_confidence_threshold``): once the
concept moved, an unconfident error is as much a lesson as a confident one; with bigger steps
(``drift.decay_learning_rate_factor``). Until the rows since the
decline can fill the gates' holdout (``gates.min_eval_samples`` at the window's
``holdout_fraction``) the monitor waits for their outcomes instead of retraining on too few.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from relearn.store import drift_reports as store

if TYPE_CHECKING:
    from collections.abc import Mapping

    from relearn.config import ModelConfig
    from relearn.drift.performance import PerformanceCheck


def retrain_options(model_cfg: ModelConfig, report: store.DriftReportRow) -> dict[str, Any]:
    """``ReinforceOptions`` overrides for the retraining a report asks for."""
    if not report.wants_retraining:
        raise ValueError(f"drift report {report.id} does not ask for retraining")
    decayed = report.verdict == store.DECAYED
    return {
        "source": report.action_reason,
        "drift_report_id": str(report.id),
        **window_overrides(model_cfg, report.performance if decayed else None),
    }


def window_overrides(
    model_cfg: ModelConfig, performance: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The window and lessons of a drift retraining: since the decline when a decayed check
    (``PerformanceCheck.to_dict()``) found one (whole hours, at most the daily run's
    ``lookback_days``), else the last ``retrain_lookback_days``.

    A decline that began before the check's window (no labelled row before it) reaches back
    as far as the gates' holdout needs at the window's label rate: a low-volume model's window
    would otherwise never hold enough rows, and every candidate would be refused.
    """
    drift = model_cfg.drift
    overrides: dict[str, Any] = {
        "lookback_days": drift.retrain_lookback_days,
        "fine_tune": drift.fine_tune,
    }
    changed = (performance or {}).get("changed_hours_ago")
    if changed is None or not drift.retrain_from_change:
        return overrides
    hours, needed = changed, holdout_rows(model_cfg)
    labelled = performance.get("labelled_rows") or 0
    if performance.get("labelled_since_change") is None and 0 < labelled < needed:
        hours = changed * needed / labelled
    hours = min(max(1, math.ceil(hours)), 24 * model_cfg.reinforcement.lookback_days)
    learning_rate = model_cfg.training.learning_rate * drift.decay_learning_rate_factor
    return {
        **overrides,
        "lookback_hours": float(hours),
        "confidence_threshold": drift.decay_confidence_threshold,
        "learning_rate": learning_rate,
    }


def labels_wanted(model_cfg: ModelConfig, performance: PerformanceCheck) -> str | None:
    """Why a decay retraining should wait for more outcomes since the decline, or None."""
    if not model_cfg.drift.retrain_from_change or performance.labelled_since_change is None:
        return None
    needed = holdout_rows(model_cfg)
    if performance.labelled_since_change >= needed:
        return None
    return (
        f"waiting for outcomes: {performance.labelled_since_change} labelled rows since the "
        f"decline (< {needed} to fill the gates' holdout)"
    )


def holdout_rows(model_cfg: ModelConfig) -> int:
    """Labelled rows a window needs for its holdout to reach ``gates.min_eval_samples``."""
    return math.ceil(model_cfg.gates.min_eval_samples / model_cfg.reinforcement.holdout_fraction)
