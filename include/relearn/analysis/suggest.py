"""Ranked suggestions in words, from the segments, the confusion pairs and the calibration.

Segments come first, most excess errors first (the errors there are beyond the overall rate:
what fixing the segment would save; a segment a narrower one inside it accounts for is left
to that one), each saying whether the compared model (the candidate on
the same rows, or the live challenger) already does better there; then the dominant
confusion, then miscalibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relearn.analysis.calibration import Calibration, ConfusionPair
    from relearn.analysis.segments import Segment

# How many segment suggestions to make; the report keeps more segments.
TOP_SEGMENTS = 5
# A confusion worth a sentence: this share of all errors (of two classes' two kinds of error,
# a clear majority).
CONFUSION_SHARE, BINARY_CONFUSION_SHARE = 0.4, 0.7
# Expected calibration error worth a sentence.
ECE_BAR = 0.05
# A compared model "fixes" a segment when its error there is this much lower.
FIX_BAR = 0.01


class SuggestionKind(StrEnum):
    SEGMENT = "segment"
    CONFUSION = "confusion"
    CALIBRATION = "calibration"
    NONE_FOUND = "none_found"


@dataclass(frozen=True)
class Suggestion:
    """One ranked, concrete sentence (``rank`` 1 first) and what it is about."""

    rank: int
    kind: SuggestionKind
    text: str
    subject: str


def suggestions(
    *,
    error_rate: float,
    segments: list[Segment],
    tested: int,
    alpha: float,
    confusion: list[ConfusionPair],
    calibration: Calibration,
    classes: int,
) -> list[Suggestion]:
    """Everything worth acting on, most important first."""
    worth = [s for s in segments if not _explained(s, segments)]
    found: list[tuple[SuggestionKind, str, str]] = [
        (SuggestionKind.SEGMENT, _segment_text(s, error_rate), s.description)
        for s in worth[:TOP_SEGMENTS]
    ]
    if not segments:
        found.append(
            (
                SuggestionKind.NONE_FOUND,
                f"no segment errs significantly more than the overall {error_rate:.2f} "
                f"({tested:,} segments tested, false discovery rate {alpha:g}): the errors are "
                "spread out; more labelled data or a richer model help more than a targeted fix",
                "",
            )
        )
    bar = CONFUSION_SHARE if classes > 2 else BINARY_CONFUSION_SHARE
    if confusion and confusion[0].share_of_errors >= bar:
        top = confusion[0]
        subject = f"{top.actual}->{top.predicted}"
        found.append((SuggestionKind.CONFUSION, _confusion_text(top), subject))
    if calibration.ece >= ECE_BAR:
        found.append((SuggestionKind.CALIBRATION, _calibration_text(calibration), "confidence"))
    return [Suggestion(i, kind, text, subject) for i, (kind, text, subject) in enumerate(found, 1)]


def _explained(segment: Segment, segments: list[Segment]) -> bool:
    """A one-way segment whose excess errors a reported two-way one inside it accounts for:
    the narrower segment is the concrete suggestion."""
    return len(segment.conditions) == 1 and any(
        len(other.conditions) == 2
        and segment.conditions[0] in other.conditions
        and other.excess_errors >= segment.excess_errors
        for other in segments
    )


def _segment_text(segment: Segment, error_rate: float) -> str:
    text = (
        f"{segment.description}: error {segment.error_rate:.2f} vs {error_rate:.2f} on "
        f"{segment.rows:,} rows (95% CI {segment.ci_low:.2f}-{segment.ci_high:.2f}, "
        f"q={segment.q_value:.2g}, {segment.excess_errors:,.0f} errors above the overall rate)"
    )
    compared = segment.compared
    if compared is None or compared.error_rate is None:
        return f"{text} — add labelled rows like these or a feature that tells them apart"
    fixed = segment.error_rate - compared.error_rate
    there = f"{compared.error_rate:.2f} on {compared.rows:,} rows"
    if fixed >= FIX_BAR:
        return f"{text} — the {compared.role} fixes {fixed:.2f} of it ({there})"
    if fixed <= -FIX_BAR:
        return f"{text} — the {compared.role} is worse there ({there})"
    return f"{text} — the {compared.role} does not fix it ({there})"


def _confusion_text(pair: ConfusionPair) -> str:
    return (
        f"{pair.actual} is predicted as {pair.predicted} {pair.count:,} times "
        f"({pair.share_of_errors:.0%} of the errors, {pair.share_of_class:.0%} of the true "
        f"{pair.actual} rows): add labelled {pair.actual} examples near the "
        f"{pair.predicted} boundary"
    )


def _calibration_text(calibration: Calibration) -> str:
    worst = max(calibration.bins, key=lambda b: b.rows * abs(b.mean_confidence - b.accuracy))
    direction = "overstates" if calibration.gap > 0 else "understates"
    return (
        f"confidence {direction} accuracy: expected calibration error {calibration.ece:.3f}; at "
        f"confidence {worst.low:.1f}-{worst.high:.1f} accuracy is {worst.accuracy:.2f} on "
        f"{worst.rows:,} rows (mean confidence {worst.mean_confidence:.2f}) — calibrate the "
        "model, and do not trust confidence-based thresholds until then"
    )
