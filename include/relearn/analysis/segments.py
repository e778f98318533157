"""The segment search: every level and every two-way combination, tested against the overall
error rate with the false discovery rate controlled across all of them.

Counting is one ``bincount`` per feature and per pair of features, so a day of a million
labelled rows and a few dozen features stays within seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from relearn.analysis.stats import benjamini_hochberg, excess_p_values, wilson_interval

if TYPE_CHECKING:
    from relearn.analysis.levels import FeatureLevels


@dataclass(frozen=True)
class Condition:
    """One part of a segment: a feature at one of its levels."""

    feature: str
    level: int
    label: str


@dataclass(frozen=True)
class Rate:
    """Another model's errors on a segment (the candidate on the same rows, or the
    challenger on its own traffic)."""

    role: str
    rows: int
    errors: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.rows if self.rows else None


@dataclass(frozen=True)
class Segment:
    """A segment whose error rate is significantly above the overall rate."""

    conditions: tuple[Condition, ...]
    rows: int
    errors: int
    error_rate: float
    ci_low: float
    ci_high: float
    lift: float
    p_value: float
    q_value: float
    excess_errors: float
    compared: Rate | None = None

    @property
    def description(self) -> str:
        return " and ".join(c.label for c in self.conditions)

    def mask(self, codes: np.ndarray, columns: dict[str, int]) -> np.ndarray:
        """The rows of a coded frame (``levels.encode``) in this segment."""
        selected = np.ones(codes.shape[0], dtype=bool)
        for condition in self.conditions:
            selected &= codes[:, columns[condition.feature]] == condition.level
        return selected

    def to_dict(self) -> dict[str, Any]:
        compared = self.compared
        return {
            "description": self.description,
            "conditions": [c.__dict__ for c in self.conditions],
            **{k: v for k, v in self.__dict__.items() if k not in ("conditions", "compared")},
            "compared": None if compared is None else {**compared.__dict__},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        compared = data.get("compared")
        return cls(
            conditions=tuple(Condition(**c) for c in data["conditions"]),
            compared=None if compared is None else Rate(**compared),
            **{k: data[k] for k in _NUMBERS},
        )


_NUMBERS = (
    "rows",
    "errors",
    "error_rate",
    "ci_low",
    "ci_high",
    "lift",
    "p_value",
    "q_value",
    "excess_errors",
)


@dataclass(frozen=True)
class SearchResult:
    """The significant segments, most excess errors first, and how many were tested."""

    segments: list[Segment]
    tested: int


@dataclass(frozen=True)
class _Candidate:
    conditions: tuple[Condition, ...]
    rows: int
    errors: int


def search(
    levels: list[FeatureLevels],
    codes: np.ndarray,
    wrong: np.ndarray,
    *,
    min_support: int,
    alpha: float,
    pairs: bool = True,
) -> SearchResult:
    """Test every level and (with ``pairs``) every two-way combination of two features'
    levels having at least ``min_support`` rows (and not all of them) against the overall
    error rate; keep those with a Benjamini-Hochberg q-value at most ``alpha``."""
    rows = len(wrong)
    base = float(wrong.mean()) if rows else 0.0
    if rows == 0 or base in (0.0, 1.0):
        return SearchResult([], 0)
    # Each cell is counted with its rows' error flag in its lowest bit: one bincount gives
    # both the rows and the errors of every cell.
    flagged = [codes[:, f].astype(np.int64) * 2 + wrong for f in range(len(levels))]
    candidates: list[_Candidate] = []
    for f, lv in enumerate(levels):
        candidates += _counted([lv], flagged[f], rows, min_support)
    if pairs:
        for (f, a), (g, b) in itertools.combinations(enumerate(levels), 2):
            combined = codes[:, f] * (2 * b.size) + flagged[g]
            candidates += _counted([a, b], combined, rows, min_support)
    if not candidates:
        return SearchResult([], 0)
    counts = np.array([c.rows for c in candidates])
    errors = np.array([c.errors for c in candidates])
    p_values = excess_p_values(errors, counts, base)
    q_values = benjamini_hochberg(p_values)
    found = [
        _segment(c, base, float(p), float(q))
        for c, p, q in zip(candidates, p_values, q_values, strict=True)
        if q <= alpha and c.errors / c.rows > base
    ]
    found = _beyond_parents(found, candidates, base, alpha)
    found.sort(key=lambda s: (-s.excess_errors, s.p_value))
    return SearchResult(found, len(candidates))


def _counted(
    parts: list[FeatureLevels], flagged: np.ndarray, rows: int, min_support: int
) -> list[_Candidate]:
    """The testable cells of one feature or one pair of features (``flagged``: each row's
    cell index times two plus its error flag)."""
    size = int(np.prod([lv.size for lv in parts]))
    both = np.bincount(flagged, minlength=2 * size)
    errors = both[1::2]
    counts = both[0::2] + errors
    cells = np.flatnonzero((counts >= min_support) & (counts < rows))
    found = []
    for cell in cells:
        conditions, rest = [], int(cell)
        for lv in reversed(parts):
            rest, level = divmod(rest, lv.size)
            conditions.append(Condition(lv.feature, level, lv.labels[level]))
        found.append(_Candidate(tuple(reversed(conditions)), int(counts[cell]), int(errors[cell])))
    return found


def _beyond_parents(
    found: list[Segment], candidates: list[_Candidate], base: float, alpha: float
) -> list[Segment]:
    """Keep a two-way segment only if it errs significantly more than the worse of its two
    one-way parts (Benjamini-Hochberg again, across those pairs): otherwise it only repeats
    a bad parent, cut by an unrelated feature."""
    one_way = {c.conditions[0]: c.errors / c.rows for c in candidates if len(c.conditions) == 1}
    pairs = [s for s in found if len(s.conditions) == 2]
    if not pairs:
        return found
    # A part covering every row (a constant feature) was not tested: its rate is the base.
    parent_rates = np.array([max(one_way.get(c, base) for c in s.conditions) for s in pairs])
    p_values = excess_p_values(
        np.array([s.errors for s in pairs]), np.array([s.rows for s in pairs]), parent_rates
    )
    q_values = benjamini_hochberg(p_values)
    kept = {id(s) for s, q in zip(pairs, q_values, strict=True) if q <= alpha}
    return [s for s in found if len(s.conditions) == 1 or id(s) in kept]


def _segment(candidate: _Candidate, base: float, p_value: float, q_value: float) -> Segment:
    rate = candidate.errors / candidate.rows
    low, high = wilson_interval(candidate.errors, candidate.rows)
    return Segment(
        conditions=candidate.conditions,
        rows=candidate.rows,
        errors=candidate.errors,
        error_rate=rate,
        ci_low=low,
        ci_high=high,
        lift=rate / base,
        p_value=p_value,
        q_value=q_value,
        excess_errors=candidate.errors - candidate.rows * base,
    )
