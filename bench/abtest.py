"""A/B promotion: decision quality of the staged policy on replayed tests, and router speed.

1. Decision quality: ``relearn.abtest.simulate.decision_quality`` replays whole tests hour by
   hour against the real policy (default config: stages 10/25/50/100, dwell 24/48/72 h,
   >= 1,000 samples per arm, >= 2 % improvement, mSPRT alpha 0.05), 200 tests per row, a
   champion at 80 % accuracy, 400 labelled outcomes an hour, a 14-day horizon. Targets: A/A
   <= 5 % promoted; challenger 3 % worse: 0 promoted and >= 90 % rolled back; 5 % better:
   >= 80 % promoted. The same for a decay retraining's candidate, which starts at the 50 %
   stage (``abtest.decay_start_percent``), and the bandit policy's table for comparison.
2. Offline promotion (``abtest.offline_significance``): the share of a decay retraining's
   candidates promoted without a test (``policy.offline_promotion``) on simulated holdouts of
   100 / 300 / 1,000 rows, the decayed champion at 60 %, the candidate's answers independent
   of the champion's, 2,000 holdouts per cell. Targets: A/A and 3 % worse 0 %.
3. Router: the time of one arm choice (``SplitRouter.arm``, split cached) per call, p50 and
   p99 over 200,000 calls, against a baseline measured in the same run: the same decision
   with ``hashlib.sha256`` instead of CRC-32. Target: p99 <= 50 us.

    .venv/bin/python bench/abtest.py [--tests 200] [--calls 200000]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import numpy as np

from relearn.abtest import policy
from relearn.abtest.simulate import decision_quality
from relearn.config import ABTestConfig
from relearn.serving.router import Split, SplitRouter

TARGET_P99_US = 50.0


def _table(cfg: ABTestConfig, tests: int, *, after_decay: bool = False) -> None:
    started = time.perf_counter()
    table = decision_quality(cfg, tests=tests, seed=2026, after_decay=after_decay)
    seconds = time.perf_counter() - started
    start = f", a decay candidate (starts at {cfg.decay_start_percent} %)" if after_decay else ""
    print(f"policy {cfg.policy}{start}: {tests} tests per row in {seconds:.1f} s")
    print(
        f"  {'challenger':<12}{'promoted':>10}{'rolled back':>13}{'undecided':>11}{'median h':>10}"
    )
    for lift, row in table.items():
        print(
            f"  {lift:+.0%} {'':<8}{row['promoted']:>10.1%}{row['rolled_back']:>13.1%}"
            f"{row['running']:>11.1%}{row['median_hours']:>10}"
        )


def _offline(cfg: ABTestConfig, holdouts: int) -> None:
    rng = np.random.default_rng(2026)
    sizes = (100, 300, 1000)
    print(f"offline promotion (offline_significance {cfg.offline_significance:g}), promoted:")
    print(f"  {'challenger':<12}" + "".join(f"{f'{n} rows':>12}" for n in sizes))
    for lift in (0.0, -0.03, 0.05, 0.30):
        cells = []
        for rows in sizes:
            champion = rng.binomial(rows, 0.6, holdouts) / rows
            candidate = rng.binomial(rows, min(1.0, 0.6 + lift), holdouts) / rows
            promoted = sum(
                policy.offline_promotion({"accuracy": a, "n": rows}, {"accuracy": c}, cfg, 0.02)
                is not None
                for a, c in zip(candidate, champion, strict=True)
            )
            cells.append(f"{promoted / holdouts:>12.1%}")
        print(f"  {lift:+.0%} {'':<8}" + "".join(cells))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99)]


def _time_calls(choose, units: list[str]) -> list[float]:
    clock = time.perf_counter_ns
    timings = []
    for unit in units:
        started = clock()
        choose(unit)
        timings.append((clock() - started) / 1000)
    return timings


def _router(calls: int) -> None:
    split = Split("3f0c2a4e-test", 25)
    router = SplitRouter(lambda: split, ttl=5.0)
    units = [f"customer-{i}" for i in range(calls)]

    def sha_choice(unit: str) -> str:
        digest = hashlib.sha256(f"{split.test_id}:{unit}".encode()).digest()
        bucket = int.from_bytes(digest[:4], "big") % 10_000
        return "challenger" if bucket < split.traffic_percent * 100 else "champion"

    ours = _percentiles(_time_calls(router.arm, units))
    baseline = _percentiles(_time_calls(sha_choice, units))
    print(f"router arm choice over {calls:,} calls (split cached):")
    print(f"  SplitRouter.arm (CRC-32): p50 {ours[0]:.2f} us, p99 {ours[1]:.2f} us")
    print(f"  sha256 baseline:          p50 {baseline[0]:.2f} us, p99 {baseline[1]:.2f} us")
    verdict = "within" if ours[1] <= TARGET_P99_US else "OVER"
    print(f"  ratio p99 {baseline[1] / ours[1]:.2f}x; {verdict} the {TARGET_P99_US:g} us target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    _table(ABTestConfig(), args.tests)
    _table(ABTestConfig(), args.tests, after_decay=True)
    _table(ABTestConfig(policy="bandit"), args.tests)
    _offline(ABTestConfig(), 2000)
    _router(args.calls)


if __name__ == "__main__":
    main()
