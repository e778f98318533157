"""Anytime-valid comparison of two accuracies, looked at every hour without inflating errors.

A fixed-horizon test checked hourly would "find" a difference far more often than its alpha
says. The mixture sequential probability ratio test (mSPRT, Johari et al., "Always Valid
Inference", 2017) for the difference of two proportions stays valid at every look: with the
normal mixture N(0, tau^2) over the difference theta = p_challenger - p_champion, estimate d and
its variance V,

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 * d^2 / (2 * V * (V + tau^2)))

and H0 (theta = 0) is rejected when Lambda >= 1 / alpha. Inverting it gives a confidence
sequence: theta is within ``d +- sqrt(V (V + tau^2) / tau^2 * (2 ln(1/alpha) +
ln((V + tau^2) / V)))`` at all times simultaneously with probability >= 1 - alpha.
``tau`` (``MIXTURE_SD``) is the scale of differences we care about: 0.05 (five points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

MIXTURE_SD = 0.05


@dataclass(frozen=True)
class Comparison:
    """Challenger minus champion accuracy, with its anytime-valid (1 - alpha) interval."""

    difference: float
    low: float
    high: float
    relative: float
    pvalue: float  # min(1, 1 / Lambda) at this look (the running minimum is always valid)

    @property
    def significantly_better(self) -> bool:
        return self.low > 0

    @property
    def significantly_worse(self) -> bool:
        return self.high < 0

    def to_dict(self) -> dict[str, float]:
        return {
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "relative": self.relative,
            "pvalue": self.pvalue,
        }


def _rate(correct: int, n: int) -> float:
    """A smoothed proportion, so an arm with 0 or n successes still has a variance."""
    return (correct + 0.5) / (n + 1)


@dataclass(frozen=True)
class Stratum:
    """Labelled counts of both arms in one period of constant traffic split.

    ``*_var`` is the variance of the arm's accuracy estimate computed over units (clusters),
    when known: a unit seen many times is one random draw, not many, and the binomial variance
    would then be too small (intervals too narrow, false decisions too frequent). The larger of
    the two variances is used.
    """

    champion_n: int
    champion_correct: int
    challenger_n: int
    challenger_correct: int
    champion_var: float | None = None
    challenger_var: float | None = None


def cluster_variance(
    n: int, correct: int, *, units: int, sum_n2: float, sum_c2: float, sum_cn: float
) -> float | None:
    """Cluster-robust variance of ``correct / n`` from per-unit sums (n_u, c_u per unit):
    ``G / (G - 1) * sum_u (c_u - p n_u)^2 / n^2``; None with fewer than two units."""
    if units < 2 or n == 0:
        return None
    p = correct / n
    spread = sum_c2 - 2 * p * sum_cn + p * p * sum_n2
    return max(spread, 0.0) / (n * n) * units / (units - 1)


def compare_strata(
    strata: list[Stratum], *, alpha: float, mixture_sd: float = MIXTURE_SD
) -> Comparison:
    """The mSPRT confidence sequence (module doc) for challenger - champion accuracy,
    stratified by traffic period: d = sum(w_s d_s), V = sum(w_s^2 V_s), w_s the stratum's
    share of labelled rows.

    Pooling all rows since the start would be biased when accuracy moves over time for both
    arms (as after a drift): the challenger's share grows stage by stage, so its rows lean to
    later hours (Simpson's paradox). Within a period the split is constant, so each d_s is
    unbiased; strata lacking an arm carry no comparison and are left out.
    """
    usable = [s for s in strata if s.champion_n > 0 and s.challenger_n > 0]
    total = sum(s.champion_n + s.challenger_n for s in usable)
    if not usable:
        return Comparison(0.0, -1.0, 1.0, 0.0, 1.0)
    d = variance = baseline = 0.0
    for s in usable:
        weight = (s.champion_n + s.challenger_n) / total
        a, b = s.champion_correct / s.champion_n, s.challenger_correct / s.challenger_n
        pa, pb = (
            _rate(s.champion_correct, s.champion_n),
            _rate(s.challenger_correct, s.challenger_n),
        )
        d += weight * (b - a)
        baseline += weight * a
        var_a = max(pa * (1 - pa) / s.champion_n, s.champion_var or 0.0)
        var_b = max(pb * (1 - pb) / s.challenger_n, s.challenger_var or 0.0)
        variance += weight**2 * (var_a + var_b)
    tau2 = mixture_sd**2
    half_width = math.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance))
    )
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * d * d / (
        2 * variance * (variance + tau2)
    )
    pvalue = 1.0 if log_lambda <= 0 else math.exp(-log_lambda)
    relative = d / baseline if baseline > 0 else 0.0
    return Comparison(d, d - half_width, d + half_width, relative, min(1.0, pvalue))


def probability_challenger_better(
    champion_correct: int,
    champion_n: int,
    challenger_correct: int,
    challenger_n: int,
    *,
    seed: int,
    draws: int = 4000,
) -> float:
    """P(challenger accuracy > champion accuracy) under Beta(1 + correct, 1 + wrong) posteriors.

    Monte Carlo with a fixed seed, so a replayed decision gets the same number.
    """
    rng = np.random.default_rng(seed)
    champion = rng.beta(1 + champion_correct, 1 + champion_n - champion_correct, draws)
    challenger = rng.beta(1 + challenger_correct, 1 + challenger_n - challenger_correct, draws)
    return float(np.mean(challenger > champion))


def mcnemar_pvalue(only_challenger: int, only_champion: int) -> float:
    """One-sided exact McNemar test of paired answers on the same rows: the chance of at least
    ``only_challenger`` rows only the challenger got right among the rows exactly one of the
    two got right, were both equally accurate."""
    discordant = only_challenger + only_champion
    if discordant <= 0:
        return 1.0
    return float(binom.sf(only_challenger - 1, discordant, 0.5))


def mcnemar_bound(rows: int, challenger_accuracy: float, champion_accuracy: float) -> float:
    """McNemar's p when only the two accuracies on the same ``rows`` are known: taken at the
    most discordant pairing they allow (no row both got wrong), where the same difference is
    least significant, so the true p is at most this."""
    return mcnemar_pvalue(
        round(rows * (1 - champion_accuracy)), round(rows * (1 - challenger_accuracy))
    )
