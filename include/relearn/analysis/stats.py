"""The statistics of segment search: intervals, one-sided tests, multiple-testing control."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom, norm

# 95 % two-sided Wilson interval.
_Z = float(norm.ppf(0.975))


def wilson_interval(errors: int, rows: int, z: float = _Z) -> tuple[float, float]:
    """Wilson score interval of an error rate: sound near 0 and 1 and on small segments."""
    if rows <= 0:
        return 0.0, 1.0
    p = errors / rows
    denominator = 1 + z * z / rows
    centre = (p + z * z / (2 * rows)) / denominator
    half = z * np.sqrt(p * (1 - p) / rows + z * z / (4 * rows * rows)) / denominator
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def excess_p_values(
    errors: np.ndarray, rows: np.ndarray, base_rate: float | np.ndarray
) -> np.ndarray:
    """One-sided binomial p-values of "the segment errs more often than ``base_rate``".

    ``P(X >= errors)`` for ``X ~ Binomial(rows, base_rate)``, element-wise (``base_rate``
    may be one rate or one per segment).
    """
    errors = np.asarray(errors, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    return np.clip(binom.sf(errors - 1, rows, base_rate), 0.0, 1.0)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): reject where ``q <= alpha`` to keep
    the expected share of false discoveries among the reported segments at most ``alpha``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    # Monotone from the largest p down, capped at 1.
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return q
