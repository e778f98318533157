"""Performance drift: the champion's live accuracy against the accuracy it was registered with.

Concept drift (the inputs look the same, the right answers changed) is invisible to feature
statistics; only outcomes reveal it. The check is an effect size plus significance: the
accuracy is at least ``max_drop`` below the reference *and* an exact one-sided binomial test
says a model still as accurate as the reference would score this low with probability below
``significance`` (so a small, noisy window cannot raise it, and a huge one cannot alarm on a
trivial dip).

Its window reaches ``drift.outcome_delay_hours`` further back than the feature window: with
outcomes 48 h late, the last 24 h of predictions have none.

A decayed check also says when the decline began (``changed_hours_ago``: the change point of the
labelled rows' hits), so the retraining it asks for can learn
from the rows since the change only (``relearn.drift.retrain.retrain_options``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import binom

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

SIGNIFICANCE = 0.01
# Log-likelihood a change point must add, beyond log(rows), to be believed.
SPLIT_PENALTY = 3.0


def performance_window_hours(window_hours: float, outcome_delay_hours: float) -> float:
    """How far back the performance check reads: the feature window plus the usual outcome
    delay (``drift.outcome_delay_hours``), so it holds a window's worth of labelled rows even
    when every outcome of the last ``window_hours`` is still to come."""
    return window_hours + outcome_delay_hours


@dataclass(frozen=True)
class PerformanceCheck:
    labelled_rows: int
    accuracy: float | None
    reference_accuracy: float | None
    drop: float | None
    pvalue: float | None
    decayed: bool
    reason: str
    # Decayed only (and with prediction times): hours before the window's end at which the
    # accuracy fell (the change point; the first labelled row when all of them are below).
    changed_hours_ago: float | None = None
    labelled_since_change: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_performance(
    predicted: Sequence[str],
    actual: Sequence[str | None],
    reference_accuracy: float | None,
    *,
    min_rows: int,
    max_drop: float,
    significance: float = SIGNIFICANCE,
    predicted_at: Sequence[datetime] | None = None,
    until: datetime | None = None,
) -> PerformanceCheck:
    """Compare the accuracy on the labelled rows (``actual`` a label) with the reference.

    A missing outcome is ``None`` in a list and NaN in a pandas text column: neither is a label.
    With ``predicted_at`` (per row) and the window's end ``until``, a decayed check also says
    when the decline began (``changed_hours_ago``).
    """
    labelled = [i for i, a in enumerate(actual) if isinstance(a, str)]
    pairs = [(predicted[i], actual[i]) for i in labelled]
    n = len(pairs)
    if reference_accuracy is None:
        return PerformanceCheck(n, None, None, None, None, False, "no reference accuracy")
    if n < min_rows:
        reason = f"{n} labelled rows (< {min_rows}): no verdict"
        return PerformanceCheck(n, None, reference_accuracy, None, None, False, reason)
    correct = sum(p == a for p, a in pairs)
    accuracy = correct / n
    drop = reference_accuracy - accuracy
    pvalue = float(binom.cdf(correct, n, reference_accuracy))
    decayed = drop >= max_drop and pvalue < significance
    reason = (
        f"accuracy {accuracy:.3f} vs reference {reference_accuracy:.3f} "
        f"(drop {drop:+.3f}, limit {max_drop:.3f}, p={pvalue:.2g}) on {n} labelled rows"
    )
    changed, since_change = None, None
    if decayed and predicted_at is not None and until is not None:
        times = [predicted_at[i] for i in labelled]
        start = change_start(times, [p == a for p, a in pairs])
        changed = (until - start).total_seconds() / 3600
        if start > min(times):
            since_change = sum(t >= start for t in times)
            reason += (
                f"; the decline began {changed:.0f} h before the window's end "
                f"({since_change} labelled rows since)"
            )
        else:  # every labelled row is after the change: waiting adds no row before it
            reason += f"; the decline began before the window, at least {changed:.0f} h ago"
    return PerformanceCheck(
        n, accuracy, reference_accuracy, drop, pvalue, decayed, reason, changed, since_change
    )


def change_start(times: Sequence[datetime], correct: Sequence[bool]) -> datetime:
    """When the accuracy fell: the split of the rows (in time order) into an earlier, more
    accurate part and a later, less accurate one that makes the hits likeliest (two
    Bernoulli segments); the first row when no split beats one segment clearly (the whole
    span is after the change)."""
    order = sorted(range(len(times)), key=times.__getitem__)
    hits = np.asarray(correct, dtype=float)[order]
    n = len(hits)
    k = np.arange(n + 1)
    before = np.concatenate([[0.0], np.cumsum(hits)])
    after = before[-1] - before
    fit = _log_likelihood(before, k) + _log_likelihood(after, n - k)
    fit[before * (n - k) <= after * k] = -np.inf  # the later part must be less accurate
    # A split must beat one segment by more than noise does (a BIC-like penalty).
    fit[0] = _log_likelihood(before[-1:], np.asarray([n]))[0] + math.log(n) + SPLIT_PENALTY
    first = int(np.argmax(fit))  # rows [0, first) are before the change
    return times[order[min(first, n - 1)]]


def _log_likelihood(hits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Bernoulli log-likelihood of ``hits`` out of ``rows`` at their own rate (0 for none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(rows > 0, hits / np.maximum(rows, 1), 0.0)
        terms = hits * np.log(np.where(rate > 0, rate, 1.0)) + (rows - hits) * np.log(
            np.where(rate < 1, 1 - rate, 1.0)
        )
    return terms
