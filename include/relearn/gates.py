"""The blessing decision: absolute quality bars, no regression against the champion AND a
gain over it.

An absolute bar the champion itself misses on the holdout (after a change broke it) asks the
candidate only to be no worse than the champion there: keeping a far better candidate out
would keep the worse model serving.

Both models are measured on the same holdout, so the comparison is fair; every check keeps
its value and threshold, so a rejected candidate says exactly which bar it missed. A blessed
candidate becomes the ``challenger`` and earns an A/B test, so it must beat the champion's
holdout accuracy by ``min_improvement``: a candidate merely "not worse" would hold the test
slot for days without a chance to pass it (``bench/decision_quality.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relearn.config import GateConfig


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: float
    passed: bool


@dataclass(frozen=True)
class GateDecision:
    blessed: bool
    checks: list[Check]

    @property
    def reasons(self) -> list[str]:
        """One line per failed check, e.g. ``f1_macro 0.61 < 0.65``."""
        return [f"{c.name} {c.value:.4f} < {c.threshold:.4f}" for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "blessed": self.blessed,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
        }


# Metrics are ratios of counts: a gain of exactly the bar (410/500 - 400/500 against 0.02)
# falls a rounding error short of it in floating point, and must still pass.
TOLERANCE = 1e-9


def _at_least(name: str, value: float, threshold: float) -> Check:
    return Check(name, float(value), float(threshold), bool(value >= threshold - TOLERANCE))


def decide(
    candidate: dict[str, Any], champion: dict[str, Any] | None, gates: GateConfig
) -> GateDecision:
    """Bless ``candidate`` (``classification_metrics`` on the holdout) or say why not.

    Per-class bars apply to classes present in the holdout; without a champion (first
    model) only the absolute bars apply. An absolute bar the champion misses on the same
    holdout is lowered to the champion's value (reported as the check's threshold).
    """

    def bar(name: str, value: float, threshold: float, champion_value: float | None) -> Check:
        # A bar the champion itself misses on this holdout becomes "no worse than the champion":
        # after a change broke the champion, a better candidate must not be kept out by it.
        if champion_value is not None and champion_value < threshold:
            threshold = champion_value
        return _at_least(name, value, threshold)

    def of_champion(metric: str, label: str | None = None) -> float | None:
        if champion is None:
            return None
        return champion[metric] if label is None else champion[metric].get(label)

    checks = [
        _at_least("eval_samples", candidate["n"], gates.min_eval_samples),
        bar("accuracy", candidate["accuracy"], gates.min_accuracy, of_champion("accuracy")),
        bar("f1_macro", candidate["f1_macro"], gates.min_f1, of_champion("f1_macro")),
        bar(
            "mean_confidence",
            candidate["mean_confidence"],
            gates.min_mean_confidence,
            of_champion("mean_confidence"),
        ),
    ]
    for label, support in candidate["support"].items():
        if support:
            for metric, threshold in (
                ("precision", gates.min_class_precision),
                ("recall", gates.min_class_recall),
            ):
                checks.append(
                    bar(
                        f"{metric}[{label}]",
                        candidate[metric][label],
                        threshold,
                        of_champion(metric, label),
                    )
                )
    if champion is not None:
        for metric in ("accuracy", "f1_macro"):
            checks.append(
                _at_least(
                    f"{metric}_vs_champion",
                    candidate[metric],
                    champion[metric] - gates.max_regression,
                )
            )
        if gates.min_improvement > 0:
            checks.append(
                _at_least(
                    "accuracy_gain_vs_champion",
                    candidate["accuracy"] - champion["accuracy"],
                    gates.min_improvement,
                )
            )
    return GateDecision(blessed=all(c.passed for c in checks), checks=checks)
