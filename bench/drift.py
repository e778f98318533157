"""Drift check at scale: 1,000,000 current rows against a profile of a 1,000,000-row reference.

The model has 20 numeric and 3 categorical features (a synthetic config; ``churn`` has only
six). The reference is the simulator's pre-drift data; the current window comes from the same
world with a covariate shift of 0.3 sd on a quarter of the numeric features. Predicted labels
and confidences are stand-ins (the true labels and a Beta(5, 2) draw), since only their
distributions matter here.

Printed, in one process:

1. ``build_profile`` seconds (the once-per-model-version cost) and its peak RSS;
2. ``compare`` seconds, single-threaded and with the thread pool, and its peak RSS;
3. a straightforward numpy + scipy check of the same window in the same run (per numeric
   feature ``scipy.stats.ks_2samp`` and ``wasserstein_distance`` on the full arrays and a
   ``np.histogram`` PSI; per categorical feature ``value_counts`` + ``scipy.stats.chisquare``),
   its seconds and the ratio;
4. how far our KS statistic and Wasserstein distance, which use the profile's 20,000-value
   reference sample, are from the same statistics on the full reference.

Peak RSS is ``VmHWM`` from ``/proc/self/status``, reset before each measured step through
``/proc/self/clear_refs`` (so data generation does not count); where the reset is not
permitted the figure is the process's peak so far and says so. The two data frames stay
resident throughout, and memory freed by earlier steps is reused without raising RSS, so
for ``compare`` the peak allocation traced by ``tracemalloc`` (numpy reports its arrays to
it) is printed as well.

Target: <= 1.5 s for ``compare`` on 1M x 23.

Then, per model of ``relearn.yaml`` with a simulated world (``--part quality``; ``bench/
drift_quality.py`` has the code): calibration, importance-weighted drift alarms and
confidence-based performance estimation, each against its target.

    .venv/bin/python bench/drift.py [--part all|scale|quality] [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

# A sibling script: ``python bench/drift.py`` puts bench/ on sys.path.
from drift_quality import quality
from scipy import stats as scipy_stats

from relearn.config import FeatureType, ModelConfig
from relearn.drift import build_profile, compare
from relearn.simulate.world import CovariateShift, World, wide_model_config

TARGET_SECONDS = 1.5
START = datetime(2025, 3, 1, tzinfo=UTC)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def psi_from_counts(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    e = np.maximum(expected / expected.sum(), eps)
    a = np.maximum(actual / actual.sum(), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def baseline(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cfg: ModelConfig,
    ref_pred: tuple[np.ndarray, np.ndarray],
    cur_pred: tuple[np.ndarray, np.ndarray],
) -> dict[str, dict[str, float]]:
    """The obvious implementation: scipy on the full arrays, every time, no profile."""
    out: dict[str, dict[str, float]] = {}
    for feature in cfg.features:
        ref = reference[feature.name]
        cur = current[feature.name]
        if feature.type is FeatureType.NUMERIC:
            r, c = ref.to_numpy(), cur.to_numpy()
            ks = scipy_stats.ks_2samp(r, c)
            edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            psi = psi_from_counts(np.histogram(r, edges)[0], np.histogram(c, edges)[0])
            w1 = scipy_stats.wasserstein_distance(r, c) / r.std()
            out[feature.name] = {
                "ks": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "psi": psi,
                "wasserstein": w1,
            }
        else:
            ref_counts = ref.value_counts().reindex(feature.categories, fill_value=0)
            cur_counts = cur.value_counts().reindex(feature.categories, fill_value=0)
            expected = ref_counts.to_numpy() / ref_counts.sum() * cur_counts.sum()
            chi2 = scipy_stats.chisquare(cur_counts.to_numpy(), expected)
            out[feature.name] = {
                "chi2": float(chi2.statistic),
                "psi": psi_from_counts(ref_counts.to_numpy(), cur_counts.to_numpy()),
            }
    classes = list(cfg.classes)
    ref_mix = pd.Series(ref_pred[0]).value_counts().reindex(classes, fill_value=0).to_numpy()
    cur_mix = pd.Series(cur_pred[0]).value_counts().reindex(classes, fill_value=0).to_numpy()
    edges = np.unique(np.quantile(ref_pred[1], np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    out["prediction"] = {
        "class_psi": psi_from_counts(ref_mix, cur_mix),
        "confidence_psi": psi_from_counts(
            np.histogram(ref_pred[1], edges)[0], np.histogram(cur_pred[1], edges)[0]
        ),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=("all", "scale", "quality"), default="all")
    args = parser.parse_args()
    failures = 0
    if args.part in ("all", "scale"):
        scale(args)
    if args.part in ("all", "quality"):
        failures = quality()
    return 1 if failures else 0


def scale(args: argparse.Namespace) -> None:
    """The 1M-row timing part."""

    cfg = wide_model_config()
    shift = CovariateShift(start=START, features=0.25, shift_std=0.3)
    world = World(cfg)
    started = time.perf_counter()
    reference = world.reference_frame(args.rows).drop(columns=[cfg.label])
    rng = np.random.default_rng(2025)
    current, labels = world.with_drift(shift).sample(args.rows, START + timedelta(hours=1), rng)
    ref_labels = world.sample(args.rows, START - timedelta(hours=1), rng)[1]
    ref_pred = (ref_labels, rng.beta(5, 2, args.rows))
    cur_pred = (labels, rng.beta(5, 2, args.rows))
    shifted = world.covariate_features(shift)
    print(
        f"data: {args.rows:,} reference + {args.rows:,} current rows x {len(cfg.features)} "
        f"features ({sum(f.type is FeatureType.NUMERIC for f in cfg.features)} numeric), "
        f"generated in {time.perf_counter() - started:.1f} s; shifted by 0.3 sd: {shifted}"
    )

    exact_peak = reset_peak()

    def memory(resident: float) -> str:
        peak = peak_rss_mb()
        if not exact_peak:
            return f"peak RSS {peak:.0f} MB (process peak: clear_refs not permitted)"
        extra = max(0.0, peak - resident)
        return f"peak RSS {peak:.0f} MB, +{extra:.0f} MB over the data already resident"

    resident = rss_mb()
    profile, build_seconds = timed(
        build_profile,
        reference,
        cfg,
        predicted_labels=ref_pred[0],
        confidences=ref_pred[1],
        accuracy=0.9,
    )
    print(f"build_profile: {build_seconds:.3f} s, {memory(resident)}")

    kwargs = {"predicted_labels": cur_pred[0], "confidences": cur_pred[1]}
    serial = [timed(compare, profile, current, cfg, workers=1, **kwargs)[1] for _ in range(2)]
    reset_peak()
    resident = rss_mb()
    runs = [timed(compare, profile, current, cfg, **kwargs) for _ in range(args.repeats)]
    compare_memory = memory(resident)
    report = runs[-1][0]
    ours = statistics.median(seconds for _, seconds in runs)
    print(
        f"compare (1 thread):  {min(serial):.3f} s best of {len(serial)}\n"
        f"compare (pool):      {ours:.3f} s median of {args.repeats} "
        f"({', '.join(f'{s:.3f}' for _, s in runs)})\n  {compare_memory}"
    )
    tracemalloc.start()
    compare(profile, current, cfg, **kwargs)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"  peak allocation inside compare (tracemalloc, numpy arrays included): {traced:.0f} MB")
    print(
        f"  verdict {report.verdict}, score {report.score:.3f}, drifted: "
        f"{report.drifted_features}; prediction drifted: {report.prediction.drifted}"
    )

    reset_peak()
    resident = rss_mb()
    naive, naive_seconds = timed(baseline, reference, current, cfg, ref_pred, cur_pred)
    print(
        f"straightforward numpy+scipy: {naive_seconds:.3f} s\n  {memory(resident)}\n"
        f"ratio: {naive_seconds / ours:.1f}x faster "
        f"({'within' if ours <= TARGET_SECONDS else 'OVER'} the {TARGET_SECONDS} s target)"
    )

    numeric = [f.name for f in cfg.features if f.type is FeatureType.NUMERIC]

    def gaps(key: str) -> list[float]:
        return [abs(report.feature(n).stats[key] - naive[n][key]) for n in numeric]

    ks_diff, w_diff, psi_diff = gaps("ks"), gaps("wasserstein"), gaps("psi")
    ks_flag = sum(
        (report.feature(n).stats["ks"] >= 0.1) != (naive[n]["ks"] >= 0.1) for n in numeric
    )
    print(
        f"reference sample ({profile.sample_size:,}) vs full reference ({args.rows:,}), "
        "numeric features:\n"
        f"  |KS diff|          max {max(ks_diff):.5f}, mean {statistics.mean(ks_diff):.5f}\n"
        f"  |Wasserstein diff| max {max(w_diff):.5f}, mean {statistics.mean(w_diff):.5f} "
        "(in reference sd)\n"
        f"  |PSI diff|         max {max(psi_diff):.2e} (both from whole-reference bin counts)\n"
        f"  features whose KS >= 0.1 decision differs: {ks_flag}"
    )


if __name__ == "__main__":
    sys.exit(main())
