"""Decision quality of the whole loop: how much of the achievable accuracy Relearn recovers.

Replays ``--days`` (21) days of a demo model's traffic per scenario (no drift, abrupt concept
shift, gradual concept drift, covariate shift, recurring change; the change on day
``--change-day``) and per outcome delay (6 h and 48 h) through the core's decision steps
(``bench/quality/replay.py``: window selection, fine-tune / from-scratch training, gates,
drift performance check, A/B policy hour by hour), for these policies:

- ``none``: the v1 champion forever (the baseline);
- ``relearn``: as configured (daily fine-tune of the champion, drift-triggered retrains, a
  previous champion's comeback, staged A/B test, a decay candidate proven on its holdout
  promoted at once); ``no-comeback`` (only when named): the
  same with ``drift.comeback_versions`` 0, ``no-offline`` with
  ``abtest.offline_significance`` 0; ``scratch``: the same from scratch;
  ``bandit``: the bandit A/B policy;
- ``naive``: from scratch daily on the last 7 days of labels, promoted blindly;
- ``oracle``: from scratch daily on every labelled row of the regime in force, promoted at once.

Accuracy is each served model's accuracy on a fresh 2,000-row sample of that day's traffic
(the same sample for every policy), weighted by the hour's traffic split. Printed per
scenario, delay and policy: mean accuracy from the change on, the recovery ratio
(policy - none) / (oracle - none) ("-" when the oracle gains < 1 point), hours from the change
until the hourly accuracy first recovers 95 % of the oracle's gain, promotions, bad
promotions (the promoted model's mean accuracy over the following 7 days below the replaced
one's by > 0.5 point; "while serving": over the days until the next promotion, at most those
7) and A/B rollbacks.

    .venv/bin/python bench/decision_quality.py [--quick] [--model churn] [--trace]

``--trace`` logs every retraining's gate verdict and every A/B step that is not a hold.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from quality.chart import draw
from quality.log import Model, Predictions
from quality.replay import PolicySpec, Trace, run_policy
from quality.traffic import SCENARIOS, make_days

from relearn.bootstrap import simulated_reference, train_v1
from relearn.config import load_config

ROOT = Path(__file__).resolve().parents[1]

POLICIES = (
    PolicySpec("none", "none"),
    PolicySpec("relearn", "relearn"),
    PolicySpec("no-comeback", "relearn", comeback=False),
    PolicySpec("no-offline", "relearn", offline=False),
    PolicySpec("scratch", "relearn", fine_tune=False),
    PolicySpec("bandit", "relearn", ab_policy="bandit"),
    PolicySpec("naive", "naive"),
    PolicySpec("oracle", "oracle"),
)
BAD_PROMOTION_MARGIN = 0.005
MIN_ORACLE_GAIN = 0.01


def _hourly(trace: Trace, preds: Predictions) -> np.ndarray:
    values = []
    for hour, (champion, challenger, share) in enumerate(trace.hours):
        day = hour // 24
        accuracy = preds.accuracy(trace.models[champion], day)
        if challenger is not None:
            accuracy += share * (preds.accuracy(trace.models[challenger], day) - accuracy)
        values.append(accuracy)
    return np.asarray(values)


def _worse(trace: Trace, preds: Predictions, old: int, new: int, span: range) -> int:
    """1 if ``new`` scored below ``old`` by more than the margin over the days of ``span``."""
    before = np.mean([preds.accuracy(trace.models[old], d) for d in span])
    after = np.mean([preds.accuracy(trace.models[new], d) for d in span])
    return int(after < before - BAD_PROMOTION_MARGIN)


def _bad_promotions(trace: Trace, preds: Predictions, days: int) -> tuple[int, int]:
    """Promotions whose model did worse than the one it replaced: over the following week
    (the issue's definition), and over the days it actually served (until the next
    promotion, at most that week)."""
    week_bad = served_bad = 0
    ends = [hour for hour, _, _ in trace.promotions[1:]] + [days * 24]
    for (hour, old, new), end in zip(trace.promotions, ends[: len(trace.promotions)], strict=True):
        first = hour // 24
        week = range(first, min(days, first + 7))
        served = range(first, max(first + 1, min(week.stop, math.ceil(end / 24))))
        week_bad += _worse(trace, preds, old, new, week)
        served_bad += _worse(trace, preds, old, new, served)
    return week_bad, served_bad


def replay(
    cfg, scenario, delay: float, args, v1: Model, charted: dict[str, dict[str, np.ndarray]]
) -> list[dict]:
    """The table's rows of one scenario and delay; its hourly accuracies go to ``charted``."""
    days = make_days(cfg, scenario, args.days, args.change_day, args.per_hour, args.seed)
    share = [scenario.share(d, args.change_day) for d in range(args.days)]
    preds = Predictions(cfg, days)
    traces = {}
    for spec in (p for p in POLICIES if p.name in args.policies):
        started = time.perf_counter()
        traces[spec.name] = run_policy(cfg, spec, days, delay, v1, preds, share)
        seconds = time.perf_counter() - started
        _progress(f"{scenario.name}, delay {delay:g} h, {spec.name}: {seconds:.0f} s")
    after = slice(args.change_day * 24, None)
    whole = {name: _hourly(trace, preds) for name, trace in traces.items()}
    charted[f"{scenario.name}, outcomes {delay:g} h late"] = whole
    hourly = {name: values[after] for name, values in whole.items()}
    base, best = hourly["none"], hourly["oracle"]
    gain = best.mean() - base.mean()
    rows = []
    for name, trace in traces.items():
        mean = hourly[name].mean()
        recovered = hourly[name] - base >= 0.95 * (best - base)
        hit = np.flatnonzero(recovered & (best - base >= MIN_ORACLE_GAIN))
        bad = _bad_promotions(trace, preds, args.days)
        rows.append(
            {
                "scenario": scenario.name,
                "delay": delay,
                "policy": name,
                "accuracy": mean,
                "recovery": (mean - base.mean()) / gain if gain >= MIN_ORACLE_GAIN else None,
                "hours_to_95": int(hit[0]) if len(hit) and gain >= MIN_ORACLE_GAIN else None,
                "promotions": len(trace.promotions),
                "bad": bad[0],
                "bad_served": bad[1],
                "rollbacks": trace.rollbacks,
                "retrains": trace.retrains,
                "blessed": trace.blessed,
            }
        )
    return rows


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


HEADER = (
    "| scenario | delay | policy | accuracy after | recovery | h to 95 % | promotions | bad "
    "| bad while serving | rollbacks | retrains (blessed) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        print(
            f"| {r['scenario']} | {r['delay']:g} h | {r['policy']} | {r['accuracy']:.3f} "
            f"| {_cell(r['recovery'], '.2f')} | {_cell(r['hours_to_95'], 'd')} "
            f"| {r['promotions']} | {r['bad']} | {r['bad_served']} | {r['rollbacks']} "
            f"| {r['retrains']} ({r['blessed']}) |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 scenarios, 10 days, 30 rows/h, 6 h")
    parser.add_argument("--model", default="churn")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--change-day", type=int, default=7)
    parser.add_argument("--per-hour", type=int, help="(the model's simulation rate)")
    parser.add_argument("--delays", type=float, nargs="+", default=[6.0, 48.0])
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=None)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--trace", action="store_true", help="log retrains and A/B decisions")
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=[p.name for p in POLICIES],
        default=[p.name for p in POLICIES if not p.name.startswith("no-")],
        help="(none and oracle are always replayed: the ratios need them; no-comeback / "
        "no-offline: relearn with drift.comeback_versions / abtest.offline_significance 0, "
        "only when named)",
    )
    parser.add_argument("--chart", type=Path, help="also draw the daily accuracies (PNG)")
    args = parser.parse_args(argv)
    args.policies = {*args.policies, "none", "oracle"}
    scenarios = args.scenarios or list(SCENARIOS)
    if args.quick:
        args.days, args.change_day, args.per_hour, args.delays = 10, 3, 30, [6.0]
        scenarios = args.scenarios or ["no drift", "abrupt concept"]
    logging.basicConfig(level=logging.WARNING)
    if args.trace:
        logging.getLogger("quality.replay").setLevel(logging.INFO)
    cfg = load_config(ROOT / "relearn.yaml").model(args.model)
    if args.per_hour is None:
        args.per_hour = round(cfg.simulation.predictions_per_hour)
    started = time.perf_counter()
    trained = train_v1(cfg, simulated_reference(cfg))
    v1 = Model(trained.classifier, reference_accuracy=trained.metrics["accuracy"])
    print(
        f"model {args.model} ({cfg.kind}), {args.days} days, change on day {args.change_day}, "
        f"{args.per_hour} predictions/h, seed {args.seed}\n\n{HEADER}",
        flush=True,
    )
    charted: dict[str, dict[str, np.ndarray]] = {}
    for name in scenarios:
        for delay in args.delays:
            print_rows(replay(cfg, SCENARIOS[name], delay, args, v1, charted))
    if args.chart:
        draw(charted, args.change_day, args.chart)
        _progress(f"chart written to {args.chart}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
