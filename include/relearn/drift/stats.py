"""Exact, vectorised drift statistics, one feature at a time.

An hourly drift check compares a window of production rows with a stored reference profile
(``relearn.drift.profile``), so every statistic here works from what such a profile keeps:
quantile-bin counts of the whole reference and a sorted reference sample. The expensive step
for a large window is sorting its column; it is done once (``finite_sorted``) and the sorted
array is reused by the KS statistic, the Wasserstein distance and the bin counts, each of
which then costs a few binary searches or one linear pass.

KS and Wasserstein are computed exactly for the two samples given (integer CDF differences,
no approximation), so they equal ``scipy.stats.ks_2samp`` and
``scipy.stats.wasserstein_distance`` on the same data up to float rounding.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import chisquare, kstwo

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# Proportions are floored at this value before the logarithm in PSI (and before computing
# expected counts in the chi-squared test), so an empty bin costs a large but finite amount
# instead of infinity. 1e-4 is the usual choice: an empty reference bin that holds 10% of the
# current window then contributes 0.1 * ln(1000) ~= 0.69, i.e. clearly drifted.
PSI_EPS = 1e-4


def finite_sorted(values: ArrayLike) -> np.ndarray:
    """The finite values of ``values`` as a sorted float64 copy (NaN and +-inf dropped).

    This is the one O(n log n) step of a drift check; sort once and pass the result to the
    ``*_sorted`` functions with ``current_sorted=True``. Infinities are dropped together with
    NaN because neither has a place in a distance between distributions.
    """

    array = np.sort(np.asarray(values, dtype=np.float64).ravel())
    # NaN sorts last; searchsorted uses the same order, so both ends are found in O(log n).
    low = int(np.searchsorted(array, -np.inf, side="right"))
    high = int(np.searchsorted(array, np.inf, side="left"))
    return array[low:high]


def quantile_edges(reference: ArrayLike, bins: int = 10) -> np.ndarray:
    """The unique inner edges of ``bins`` equal-frequency bins of the finite reference values.

    Bin ``i`` is ``[edges[i-1], edges[i])`` with open outer bins, so ``len(edges) + 1`` bins.
    Ties merge edges (a heavily tied column gets fewer, wider bins); when the top edge is the
    reference maximum (a constant column, or a point mass at the top) one more edge just above
    it is added, so values beyond anything seen in the reference get a bin of their own
    instead of hiding in the top one.
    """

    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    values = np.asarray(reference, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("cannot compute quantile edges without finite reference values")
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins))
    top = values.max()
    if edges[-1] >= top:
        edges = np.append(edges[edges < top], [top, np.nextafter(top, np.inf)])
    return edges


def bin_counts(values: ArrayLike, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the ``len(edges) + 1`` bins of ``quantile_edges``; NaN ignored."""

    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    index = np.searchsorted(edges, values, side="right")
    return np.bincount(index, minlength=len(edges) + 1).astype(np.int64)


def bin_counts_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``bin_counts`` for already sorted NaN-free values: ``len(edges)`` binary searches."""

    boundaries = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate(([0], boundaries, [len(sorted_values)]))).astype(np.int64)


def psi(expected_counts: ArrayLike, actual_counts: ArrayLike, eps: float = PSI_EPS) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` over bin proportions.

    ``e`` and ``a`` are the expected (reference) and actual (current) counts divided by their
    totals, each floored at ``eps`` (not renormalised) so an empty bin gives a finite value.
    Conventional reading: < 0.1 stable, 0.1-0.2 moderate shift, >= 0.2 significant shift.
    """

    expected = _proportions(expected_counts, "expected")
    actual = _proportions(actual_counts, "actual")
    if expected.shape != actual.shape:
        raise ValueError(f"bin counts differ in length: {expected.shape} vs {actual.shape}")
    expected = np.maximum(expected, eps)
    actual = np.maximum(actual, eps)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def category_psi(ref_freq: ArrayLike, cur_counts: ArrayLike, eps: float = PSI_EPS) -> float:
    """PSI over categories (each category is a bin); ``ref_freq`` may be counts or shares."""
    return psi(ref_freq, cur_counts, eps)


def jensen_shannon_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon distance in base 2 (0 = same, 1 = disjoint); inputs are normalised.

    The square root of the JS divergence, as ``scipy.spatial.distance.jensenshannon(p, q,
    base=2)``. Unlike PSI it needs no smoothing: it stays bounded when a category is new.
    """

    p = _proportions(p, "p")
    q = _proportions(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in length: {p.shape} vs {q.shape}")
    middle = (p + q) / 2

    def divergence(x: np.ndarray) -> float:
        present = x > 0
        return float(np.sum(x[present] * np.log(x[present] / middle[present])))

    js = (divergence(p) + divergence(q)) / (2 * math.log(2))
    return math.sqrt(max(js, 0.0))


def chi_squared(
    ref_freq: ArrayLike, cur_counts: ArrayLike, eps: float = PSI_EPS
) -> tuple[float, float]:
    """Goodness of fit of ``cur_counts`` to the reference proportions: (statistic, p-value).

    ``scipy.stats.chisquare`` with expected counts ``n * reference share``. Categories empty
    in both are left out (they carry no evidence and would only add degrees of freedom);
    a category empty in the reference only is given share ``eps`` (then all shares are
    renormalised), so its appearance yields a huge statistic instead of a division by zero.
    """

    reference = _proportions(ref_freq, "reference")
    observed = np.asarray(cur_counts, dtype=np.float64).ravel()
    if observed.shape != reference.shape:
        raise ValueError(f"category counts differ in length: {reference.shape} vs {observed.shape}")
    total = observed.sum()
    if not total > 0:
        raise ValueError("chi-squared test needs at least one current observation")
    keep = (reference > 0) | (observed > 0)
    if np.count_nonzero(keep) < 2:
        return 0.0, 1.0
    shares = np.maximum(reference[keep], eps)
    expected = shares / shares.sum() * total
    result = chisquare(observed[keep], f_exp=expected)
    return float(result.statistic), float(result.pvalue)


def ks_2samp_sorted(
    reference_sorted: ArrayLike, current: ArrayLike, *, current_sorted: bool = False
) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov statistic and asymptotic p-value.

    The statistic is exact: ``sup_x |F_ref(x) - F_cur(x)|``. On each interval between
    consecutive reference values F_ref is constant and F_cur non-decreasing, so the supremum
    is reached at a reference value or just below one; both are found with binary searches of
    the reference values in the sorted current window, and the CDF differences are exact
    integers over ``m * n``. The cost is O(m log n) once the current column is sorted.

    The p-value is scipy's ``method="asymp"`` two-sided formula, ``kstwo.sf(D, round(en))``
    with ``en = m * n / (m + n)``. ``ks_2samp``'s default (``"auto"``) uses the same formula
    as soon as either sample has more than 10,000 values, which the 20,000-value reference
    sample of a profile has; for two small samples it would use the exact distribution.

    ``reference_sorted`` must be sorted and finite; ``current`` is sorted here (NaN and +-inf
    dropped) unless ``current_sorted`` says it already is the output of ``finite_sorted``.
    """

    reference = _checked_sorted(reference_sorted)
    values = _current(current, current_sorted)
    below, upto = _positions(values, reference)
    return _ks(reference, values.size, below, upto)


def wasserstein_normalised(
    reference_sorted: ArrayLike, current: ArrayLike, scale: float, *, current_sorted: bool = False
) -> float:
    """Earth mover's (W1) distance between the two samples divided by ``scale``.

    The profile passes the reference standard deviation as ``scale``, so the value reads as
    "how many reference standard deviations the mass moved on average" (shifting the mean by
    0.3 sd gives 0.3). The std is preferred to the IQR because bounded features pile mass up
    at a bound, where the IQR can be zero.

    Exact, ``integral |F_ref - F_cur| dx``; equals ``scipy.stats.wasserstein_distance(ref,
    cur) / scale`` up to float rounding (see ``_wasserstein`` for the O(m log n + n) method).
    """
    _check_scale(scale)
    reference = _checked_sorted(reference_sorted)
    values = _current(current, current_sorted)
    points, below, upto = _breakpoints(reference, values)
    return _wasserstein(reference, values, points, below, upto) / scale


def ks_wasserstein_sorted(
    reference_sorted: ArrayLike, current_sorted: ArrayLike, scale: float
) -> tuple[float, float, float]:
    """``ks_2samp_sorted`` and ``wasserstein_normalised`` of one sorted window together.

    Both need the positions of the reference values in the window; this searches once.
    Returns ``(ks_statistic, ks_pvalue, wasserstein_normalised)``.
    """
    _check_scale(scale)
    reference = _checked_sorted(reference_sorted)
    values = _current(current_sorted, True)
    points, below, upto = _breakpoints(reference, values)
    statistic, pvalue = _ks(reference, values.size, below[0::2], upto[0::2])
    return statistic, pvalue, _wasserstein(reference, values, points, below, upto) / scale


def _ks(reference: np.ndarray, n: int, below: np.ndarray, upto: np.ndarray) -> tuple[float, float]:
    """KS from the counts of current values below / up to each reference value."""

    m = reference.size
    ref_below, ref_upto = _positions(reference, reference)
    # m * n * |F_ref - F_cur| at each reference value and just below it, in exact integers.
    gap = max(
        int(np.abs(ref_upto * n - upto * m).max()),
        int(np.abs(ref_below * n - below * m).max()),
    )
    statistic = gap / (m * n)
    big, small = float(max(m, n)), float(min(m, n))
    en = big * small / (big + small)
    pvalue = float(np.clip(kstwo.sf(statistic, np.round(en)), 0.0, 1.0))
    return statistic, pvalue


def _positions(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many ``values`` are below and up to each key (``searchsorted`` left and right).

    The binary searches of the sorted keys into a large window are the dearest step after
    the sort (cache misses), so the right-hand search is only run for keys that occur in
    the window; for continuous data that is almost none.
    """

    below = np.searchsorted(values, keys, side="left")
    upto = below.copy()
    tied = np.flatnonzero(values[np.minimum(below, values.size - 1)] == keys)
    if tied.size:
        upto[tied] = np.searchsorted(values, keys[tied], side="right")
    return below, upto


def _breakpoints(
    reference: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference values interleaved with one crossing point per reference interval.

    On ``[r_j, r_{j+1})`` F_ref is the constant ``a = (j+1)/m`` and F_cur rises, so
    ``F_ref - F_cur`` changes sign at most once there: at the current value ``c_K`` with
    ``K = floor(a * n)`` (below it at most K current values, from it on at least K+1),
    clipped into the interval. Returns the points and, for each, the number of current values
    below it and up to it. A crossing point clipped to a reference value takes that value's
    counts; an unclipped one is ``c_K`` itself, whose counts are K and K+1 unless it is tied,
    so only ties need a search.
    """

    m, n = reference.size, values.size
    ref_below, ref_upto = _positions(values, reference)
    index = (np.arange(1, m, dtype=np.int64) * n) // m
    candidate = values[index]
    low = candidate <= reference[:-1]
    high = ~low & (candidate >= reference[1:])
    crossing = np.where(low, reference[:-1], np.where(high, reference[1:], candidate))
    cross_below = np.where(low, ref_below[:-1], np.where(high, ref_below[1:], index))
    cross_upto = np.where(low, ref_upto[:-1], np.where(high, ref_upto[1:], index + 1))
    inner = ~(low | high)
    tied = inner & (
        ((index > 0) & (values[np.maximum(index - 1, 0)] == candidate))
        | ((index < n - 1) & (values[np.minimum(index + 1, n - 1)] == candidate))
    )
    if tied.any():
        cross_below[tied], cross_upto[tied] = _positions(values, candidate[tied])
    points = np.empty(2 * m - 1)
    points[0::2] = reference
    points[1::2] = crossing
    below = np.empty(2 * m - 1, dtype=np.int64)
    upto = np.empty(2 * m - 1, dtype=np.int64)
    below[0::2], below[1::2] = ref_below, cross_below
    upto[0::2], upto[1::2] = ref_upto, cross_upto
    return points, below, upto


def _wasserstein(
    reference: np.ndarray,
    values: np.ndarray,
    points: np.ndarray,
    below: np.ndarray,
    upto: np.ndarray,
) -> float:
    """W1 from ``_breakpoints``: the sign of ``F_ref - F_cur`` is constant between them.

    So ``integral |F_ref - F_cur|`` is the sum of ``|integral (F_ref - F_cur)|`` over the
    pieces, and the integral of F_cur over ``[p, q)`` only needs the count of current values
    up to ``p`` and the count and sum of those strictly inside: ``(upto(p) * (q - p) +
    k * q - sum) / n``. The sums come from one ``np.add.reduceat`` pass over the window (no
    prefix sums, so no cancellation on large values), everything else is O(m).
    """

    m, n = reference.size, values.size
    # Block boundaries 0, below(P0), upto(P0), below(P1), ..., upto(P_last), n tile [0, n):
    # even blocks hold the values strictly between two points, odd ones the values equal to
    # a point. Equal consecutive points would make a boundary step back; the running maximum
    # turns that into an empty block.
    bounds = np.empty(2 * points.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n
    bounds[1:-1:2] = below
    bounds[2:-1:2] = upto
    np.maximum.accumulate(bounds, out=bounds)
    starts, stops = bounds[:-1], bounds[1:]
    filled = stops > starts
    sums = np.zeros(starts.size)
    # Non-empty blocks tile [0, n) back to back, so reduceat sums exactly each of them.
    sums[filled] = np.add.reduceat(values, starts[filled])
    # Before the first reference value F_ref = 0; after the last one F_ref = 1.
    left = bounds[1] * reference[0] - sums[0]
    right = sums[-1] - (n - bounds[-2]) * reference[-1]
    start, stop = points[:-1], points[1:]
    counted = bounds[2:-2:2]  # current values up to the start of each piece
    inside = bounds[3:-1:2] - counted
    level = np.arange(start.size, dtype=np.int64) // 2 + 1  # m * F_ref on the piece
    width = stop - start
    pieces = np.abs((level * n - counted * m) * width / m - (inside * stop - sums[2:-1:2]))
    return float((left + right + pieces.sum()) / n)


def _current(current: ArrayLike, current_sorted: bool) -> np.ndarray:

    values = np.asarray(current, dtype=np.float64) if current_sorted else finite_sorted(current)
    if values.size == 0:
        raise ValueError("the current window has no finite value")
    return values


def _check_scale(scale: float) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite, got {scale}")


def _proportions(counts: ArrayLike, what: str) -> np.ndarray:

    array = np.asarray(counts, dtype=np.float64).ravel()
    if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{what} must be a non-empty vector of non-negative finite numbers")
    total = array.sum()
    if not total > 0:
        raise ValueError(f"{what} sums to zero")
    return array / total


def _checked_sorted(values: ArrayLike) -> np.ndarray:

    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError("the reference sample is empty")
    if not np.all(np.isfinite(array)) or np.any(array[1:] < array[:-1]):
        raise ValueError("the reference sample must be sorted and finite")
    return array
