"""Performance drift: the champion's live accuracy against the accuracy it was registered with.

Concept drift (the inputs look the same, the right answers changed) is invisible to feature
statistics; only outcomes reveal it. The check is an effect size plus significance: the
accuracy is at least ``max_drop`` below the reference *and* an exact one-sided binomial test
says a model still as accurate as the reference would score this low with probability below
``significance`` (so a small, noisy window cannot raise it, and a huge one cannot alarm on a
trivial dip).

Its window reaches ``drift.outcome_delay_hours`` further back than the feature window: with
outcomes 48 h late, the last 24 h of predictions have none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from scipy.stats import binom

if TYPE_CHECKING:
    from collections.abc import Sequence

SIGNIFICANCE = 0.01


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
) -> PerformanceCheck:
    """Compare the accuracy on the labelled rows (``actual`` a label) with the reference.

    A missing outcome is ``None`` in a list and NaN in a pandas text column: neither is a label.
    """
    pairs = [(p, a) for p, a in zip(predicted, actual, strict=True) if isinstance(a, str)]
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
    return PerformanceCheck(n, accuracy, reference_accuracy, drop, pvalue, decayed, reason)
