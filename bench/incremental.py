"""Incremental training: does fine-tuning one day at a time, oldest first, beat one fit?

For every configured model of a kind that keeps learning (``torch_mlp``), a champion is trained
on the simulator's reference rows; then a week of traffic arrives under a scenario, and the
champion is fine-tuned on the week's retraining set the way ``prepare`` builds it (confident
errors, the same number of correct cases replayed, a validation split), either

- **at once**: one ``fit`` over the whole week (the default), or
- **by day**: ``fit_batches`` over the week's days in time order, the same epochs per day.

Both are scored on the next day's traffic (what the candidate will serve) and on the reference
distribution (what it must not forget). Scenarios: a gradual concept drift (the label function
turns a little every day), an abrupt concept shift on the first day, and a covariate shift on
the first day. Figures are means over ``--repeats`` seeds; by day's time is printed as a ratio
of at once's, measured in the same run. No servers are needed.

    .venv/bin/python bench/incremental.py [--rows-per-day 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from relearn.config import ModelConfig, ModelKind, load_config
from relearn.simulate.world import ConceptShift, CovariateShift, Drift, World
from relearn.training.factory import new_classifier
from relearn.training.incremental import daily_batches

if TYPE_CHECKING:
    from relearn.training.classifier import TabularClassifier

CONFIG = Path(__file__).resolve().parents[1] / "relearn.yaml"
START = datetime(2026, 5, 1, tzinfo=UTC)
DAYS = 7
CONFIDENCE = 0.7
REFERENCE_ROWS = 5000
EVAL_ROWS = 5000


def scenarios() -> dict[str, list[Drift]]:
    return {
        "gradual concept drift": [
            ConceptShift(START + timedelta(days=day), strength=0.15) for day in range(DAYS + 1)
        ],
        "abrupt concept shift": [ConceptShift(START, strength=1.0)],
        "covariate shift": [CovariateShift(START, features=0.5, shift_std=1.5)],
    }


@dataclass
class Scores:
    next_day: float
    reference: float
    seconds: float


def week(world: World, rows_per_day: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """A week of traffic with a per-row time stamp, and its true labels."""
    rng = np.random.default_rng(seed)
    stamps = [
        START + timedelta(days=day, seconds=float(s))
        for day in range(DAYS)
        for s in np.sort(rng.uniform(0, 86_400, rows_per_day))
    ]
    frame, labels = world.sample(len(stamps), stamps, rng)
    return frame.assign(predicted_at=pd.to_datetime(stamps, utc=True)), list(labels)


def retraining_set(
    champion: TabularClassifier, frame: pd.DataFrame, labels: list[str], seed: int
) -> tuple[pd.DataFrame, list[str], pd.DataFrame, list[str]]:
    """Confident errors plus as many replayed correct rows, split 80/20 (as ``prepare``)."""
    proba = champion.predict_proba(frame)
    predicted = np.asarray(champion.classes)[proba.argmax(axis=1)]
    truth = np.asarray(labels, dtype=object)
    errors = np.flatnonzero((predicted != truth) & (proba.max(axis=1) >= CONFIDENCE))
    correct = np.flatnonzero(predicted == truth)
    rng = np.random.default_rng(seed)
    replay = rng.choice(correct, size=min(len(errors), len(correct)), replace=False)
    chosen = np.sort(np.concatenate([errors, replay]))
    train, val = train_test_split(chosen, test_size=0.2, random_state=seed)
    train = np.sort(train)
    return (
        frame.iloc[train].reset_index(drop=True),
        truth[train].tolist(),
        frame.iloc[val].reset_index(drop=True),
        truth[val].tolist(),
    )


def accuracy(model: TabularClassifier, frame: pd.DataFrame, labels: list[str]) -> float:
    predicted = np.asarray(model.classes)[model.predict_proba(frame).argmax(axis=1)]
    return float(np.mean(predicted == np.asarray(labels, dtype=object)))


def compare(
    model_cfg: ModelConfig, champion: TabularClassifier, drifts: list[Drift], rows: int, seed: int
) -> dict[str, Scores]:
    world = World(model_cfg).with_drift(*drifts)
    frame, labels = week(world, rows, seed)
    train, train_y, val, val_y = retraining_set(champion, frame, labels, seed)
    next_day, next_y = world.sample(
        EVAL_ROWS, START + timedelta(days=DAYS, hours=12), np.random.default_rng(seed + 1)
    )
    reference = World(model_cfg).reference_frame(REFERENCE_ROWS * 2).iloc[REFERENCE_ROWS:]
    reference_y = reference[model_cfg.label].tolist()
    learning_rate = model_cfg.training.learning_rate * model_cfg.training.fine_tune_lr_factor
    results = {}
    for name in ("at once", "by day"):
        model = copy.deepcopy(champion)
        started = time.perf_counter()
        if name == "at once":
            model.fit(train, train_y, val_frame=val, val_labels=val_y, learning_rate=learning_rate)
        else:
            batches = daily_batches(train, train_y, train["predicted_at"])
            model.fit_batches(
                batches,
                val_frame=val,
                val_labels=val_y,
                epochs_per_batch=model_cfg.training.epochs,
                learning_rate=learning_rate,
            )
        seconds = time.perf_counter() - started
        results[name] = Scores(
            accuracy(model, next_day, list(next_y)),
            accuracy(model, reference, reference_y),
            seconds,
        )
    results["champion"] = Scores(
        accuracy(champion, next_day, list(next_y)), accuracy(champion, reference, reference_y), 0
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = [m for m in load_config(CONFIG).models if m.kind is ModelKind.TORCH_MLP]
    print(f"{'model / scenario':48} {'variant':9} {'next day':>9} {'reference':>10} {'time':>7}")
    for model_cfg in models:
        reference = World(model_cfg).reference_frame(REFERENCE_ROWS)
        champion = new_classifier(model_cfg)
        champion.fit(reference[model_cfg.feature_names], reference[model_cfg.label].tolist())
        for scenario, drifts in scenarios().items():
            runs = [
                compare(model_cfg, champion, drifts, args.rows_per_day, seed)
                for seed in range(args.repeats)
            ]
            base_seconds = np.mean([r["at once"].seconds for r in runs])
            for variant in ("champion", "at once", "by day"):
                next_day = np.mean([r[variant].next_day for r in runs])
                ref = np.mean([r[variant].reference for r in runs])
                ratio = np.mean([r[variant].seconds for r in runs]) / base_seconds
                timing = f"{ratio:6.2f}x" if variant != "champion" else ""
                label = f"{model_cfg.name} / {scenario}"
                print(f"{label:48} {variant:9} {next_day:9.3f} {ref:10.3f} {timing:>7}")
    print(
        "\nnext day: accuracy on the day after the window (the regime the candidate serves); "
        "reference: accuracy on pre-drift rows (forgetting); time: fit seconds / at once's."
    )


if __name__ == "__main__":
    main()
