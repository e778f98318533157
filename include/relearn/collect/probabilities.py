"""Probabilities, predicted label and confidence of a prediction row, judged together.

Each is plausible alone (numbers in [0, 1], a known class) and still a row can contradict
itself: probabilities summing to 0.4, label "1" next to P(1) = 0.3, confidence 0.3 next to
P(label) = 0.8. Such a row would mislead every figure computed from the log (calibration,
A/B confidence, drift of confidence), so it is rejected, within a rounding tolerance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# How far a confidence may be from its label's probability, and a most probable class from
# the label's: half a hundredth, so values a client rounded to two decimals still agree.
ROUNDING = 0.005
TOLERANCE = ROUNDING + 1e-9  # and float arithmetic's last bits
# ... and probabilities from summing to 1: that much per class given (each one rounded).


def _sum_tolerance(given: dict[str, Any]) -> float:
    return ROUNDING * len(given) + 1e-9


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def good_probabilities(value: Any, classes: set[str]) -> bool:
    """A map of some of ``classes`` to numbers in [0, 1] (``bool`` is no number)."""
    return (
        isinstance(value, dict)
        and set(value) <= classes
        and all(
            isinstance(p, int | float) and not isinstance(p, bool) and 0.0 <= p <= 1.0
            for p in value.values()
        )
    )


def confidence_or_probability(value: Any, probabilities: Any, label: Any, classes: set[str]) -> Any:
    """The given confidence, else the probability of the predicted label: from the map, or
    the rest of it when the label is the one class it lacks. ``None`` (rejected as a
    missing confidence) when neither says it; the raw value for the checks to judge."""
    if not _missing(value) or not good_probabilities(probabilities, classes) or not probabilities:
        return value
    if not isinstance(label, str):  # no class (a list, an object): the row checks reject it
        return value
    if label in probabilities:
        return probabilities[label]
    if label in classes and len(classes) - len(probabilities) == 1:
        return max(0.0, 1 - math.fsum(probabilities.values()))
    return None


def disagreements(
    probabilities: list[Any], labels: list[Any], confidences: np.ndarray, classes: set[str]
) -> tuple[list[int], list[int], list[int]]:
    """Rows whose probabilities do not sum to 1, whose label is not a most probable class,
    or whose confidence is not its label's probability (within ``TOLERANCE``, the sum within
    that much per class given).

    A map of some classes only sums to at most 1 and leaves the rest to the others: the
    label it lacks can be a most probable class only if that rest is large enough."""
    bad_sum: list[int] = []
    not_top: list[int] = []
    bad_confidence: list[int] = []
    for position, given in enumerate(probabilities):
        label = labels[position]
        if not (good_probabilities(given, classes) and given and isinstance(label, str)):
            continue
        if label not in classes:  # rejected as such
            continue
        total = math.fsum(given.values())
        slack = _sum_tolerance(given)
        if total > 1 + slack or (set(given) == classes and total < 1 - slack):
            bad_sum.append(position)
            continue
        chance = given.get(label)
        if (1 - total if chance is None else chance) < max(given.values()) - TOLERANCE:
            not_top.append(position)
        confidence = confidences[position]
        if chance is not None and abs(confidence - chance) > TOLERANCE:  # NaN compares False
            bad_confidence.append(position)
    return bad_sum, not_top, bad_confidence
