"""Forgetting after a fine-tune: accuracy on the old inputs and on the new, per replay ratio.

The champion (v1 of a demo model, trained as ``relearn bootstrap`` does) serves three days of
drifted traffic; the window's roles are chosen as ``load_window`` does
(``quality.replay.window_roles``), ``build_dataset`` splits them and the champion is
fine-tuned as the ``train`` step does. Printed per replay ratio and drift draw: the change
(points) of accuracy on 4,000 fresh pre-drift rows ("reference") and on 4,000 drifted rows
("new"). After a concept shift the old labels are wrong by definition, so only "new" counts.

    cd bench && ../.venv/bin/python -m quality.forgetting [--ratios 1 3 5 10]
"""

from __future__ import annotations

import argparse
import copy
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from quality.training import window_roles
from relearn.bootstrap import simulated_reference, train_v1
from relearn.config import load_config
from relearn.data.dataset import build_dataset
from relearn.evaluation import classification_metrics
from relearn.retraining.options import ReinforceOptions
from relearn.simulate.world import ConceptShift, CovariateShift, World

ROOT = Path(__file__).resolve().parents[2]
SHIFT = datetime(2026, 6, 1, tzinfo=UTC)
DRAWS = {
    "covariate 50 % of features, 1.0 sd": CovariateShift(SHIFT, 0.5, 1.0),
    "covariate 50 %, 2.0 sd": CovariateShift(SHIFT, 0.5, 2.0),
    "covariate 25 %, 1.5 sd": CovariateShift(SHIFT, 0.25, 1.5),
    "covariate 75 %, 1.0 sd": CovariateShift(SHIFT, 0.75, 1.0),
    "concept shift 1.0": ConceptShift(SHIFT, 1.0),
}


def _accuracy(classifier, frame, labels, cfg) -> float:
    proba = classifier.predict_proba(frame)
    return classification_metrics(list(labels), proba, cfg.classes)["accuracy"]


def _window(world: World, champion, cfg, rng: np.random.Generator, per_hour: int = 60):
    """Three days of the champion's logged predictions, outcomes in, with their roles."""
    n = 3 * 24 * per_hour
    hours = np.sort(rng.uniform(0, 72, n))
    frame, labels = world.sample(n, [SHIFT + timedelta(hours=float(h)) for h in hours], rng)
    proba = champion.predict_proba(frame)
    best = proba.argmax(axis=1)
    rows = frame.assign(
        predicted_label=np.asarray(cfg.classes, dtype=object)[best],
        actual_label=labels,
        confidence=proba[np.arange(n), best],
        prediction_id=[f"p{i}" for i in range(n)],
        hour=hours,
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="churn")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.0, 3.0, 5.0, 10.0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(ROOT / "relearn.yaml").model(args.model)
    base = World(cfg)
    champion = train_v1(cfg, simulated_reference(cfg)).classifier
    reference = base.sample(4000, SHIFT - timedelta(days=30), np.random.default_rng(99))
    print(f"model {args.model}: accuracy change in points after fine-tuning v1 (reference / new)")
    print("| drift | " + " | ".join(f"replay {r:g}" for r in args.ratios) + " |")
    print("|---|" + "---|" * len(args.ratios))
    for name, drift in DRAWS.items():
        world = base.with_drift(drift)
        new = world.sample(4000, SHIFT + timedelta(days=4), np.random.default_rng(98))
        logged = _window(world, champion, cfg, np.random.default_rng(41))
        cells = []
        for ratio in args.ratios:
            dataset = build_dataset(
                window_roles(
                    cfg,
                    logged,
                    ReinforceOptions.from_config(cfg, replay_ratio=ratio),
                    cfg.training.random_seed,
                ),
                cfg,
                confidence_threshold=cfg.reinforcement.confidence_threshold,
                seed=cfg.training.random_seed,
            )
            tuned = copy.deepcopy(champion)
            tuned.fit(
                dataset.features("train"),
                dataset.labels("train"),
                val_frame=dataset.features("validation"),
                val_labels=dataset.labels("validation"),
                learning_rate=cfg.training.learning_rate * cfg.training.fine_tune_lr_factor,
            )
            deltas = [
                100 * (_accuracy(tuned, *part, cfg) - _accuracy(champion, *part, cfg))
                for part in (reference, new)
            ]
            cells.append(
                f"- / {deltas[1]:+.1f}"
                if isinstance(drift, ConceptShift)
                else f"{deltas[0]:+.1f} / {deltas[1]:+.1f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
