"""The blessing decision: absolute quality bars AND no regression against the champion.

Both models are measured on the same holdout, so the comparison is fair; every check keeps
its value and threshold, so a rejected candidate says exactly which bar it missed.
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


def _at_least(name: str, value: float, threshold: float) -> Check:
    return Check(name, float(value), float(threshold), bool(value >= threshold))


def decide(
    candidate: dict[str, Any], champion: dict[str, Any] | None, gates: GateConfig
) -> GateDecision:
    """Bless ``candidate`` (``classification_metrics`` on the holdout) or say why not.

    Per-class bars apply to classes present in the holdout; without a champion (first
    model) only the absolute bars apply.
    """
    checks = [
        _at_least("eval_samples", candidate["n"], gates.min_eval_samples),
        _at_least("accuracy", candidate["accuracy"], gates.min_accuracy),
        _at_least("f1_macro", candidate["f1_macro"], gates.min_f1),
        _at_least("mean_confidence", candidate["mean_confidence"], gates.min_mean_confidence),
    ]
    for label, support in candidate["support"].items():
        if support:
            checks.append(
                _at_least(
                    f"precision[{label}]", candidate["precision"][label], gates.min_class_precision
                )
            )
            checks.append(
                _at_least(f"recall[{label}]", candidate["recall"][label], gates.min_class_recall)
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
    return GateDecision(blessed=all(c.passed for c in checks), checks=checks)
