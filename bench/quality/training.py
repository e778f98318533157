"""One reinforcement run as the product's steps make it (window roles, dataset, fit, gate),
and the naive / oracle policies' from-scratch fit."""

from __future__ import annotations

import copy
import logging
import math
import zlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quality.log import Model
from relearn.data.dataset import build_dataset
from relearn.evaluation import classification_metrics
from relearn.gates import decide as gate
from relearn.training.factory import new_classifier

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.retraining.options import ReinforceOptions

_logger = logging.getLogger("quality.replay")


def _hash(text: str) -> int:
    """A stable hash (Python's ``hash`` of a str changes with every interpreter)."""
    return zlib.crc32(text.encode())


def window_roles(
    cfg: ModelConfig, rows: pd.DataFrame, options: ReinforceOptions, seed: int
) -> pd.DataFrame:
    """``load_window``'s roles: a hash bucket is the holdout, confident errors, replay."""
    rf, ratio = cfg.reinforcement, options.replay_ratio
    bucket = rows["prediction_id"].map(lambda r: _hash(f"{seed}:{r}") % 10_000 / 10_000)
    holdout = bucket < rf.holdout_fraction
    wrong = rows["predicted_label"] != rows["actual_label"]
    errors = ~holdout & wrong & (rows["confidence"] >= options.confidence_threshold)
    correct = rows.index[~holdout & ~wrong]
    order = rows.loc[correct, "prediction_id"].map(lambda r: _hash(f"{seed}:replay:{r}"))
    replay_index = order.sort_values().index[: math.ceil(ratio * errors.sum())]
    role = pd.Series("", index=rows.index, dtype=object)
    role[errors] = "error"
    role[replay_index] = "replay"
    recent = rows[holdout].sort_values("hour", ascending=False).index[: rf.max_holdout_rows]
    role[recent] = "holdout"
    return rows.assign(role=role)[role != ""]


def retrain(
    cfg: ModelConfig, champion: Model, rows: pd.DataFrame, options: ReinforceOptions
) -> tuple[Model | None, bool]:
    """One reinforcement run on labelled ``rows`` with ``options``: (candidate or None,
    blessed)."""
    if rows.empty:
        return None, False
    window = window_roles(cfg, rows, options, cfg.training.random_seed)
    if (window["role"] == "error").sum() < options.min_error_samples:
        return None, False
    holdout = window[window["role"] == "holdout"]
    if holdout.empty:
        return None, False
    dataset = build_dataset(
        window,
        cfg,
        confidence_threshold=options.confidence_threshold,
        seed=cfg.training.random_seed,
    )
    # relearn.retraining.train's starting point and learning rate
    if options.fine_tune:
        classifier = copy.deepcopy(champion.classifier)
        learning_rate = options.learning_rate * cfg.training.fine_tune_lr_factor
    else:
        classifier, learning_rate = new_classifier(cfg), options.learning_rate
    classifier.fit(
        dataset.features("train"),
        dataset.labels("train"),
        val_frame=dataset.features("validation"),
        val_labels=dataset.labels("validation"),
        epochs=options.epochs,
        learning_rate=learning_rate,
    )
    truth = dataset.labels("holdout")
    features = dataset.features("holdout")
    metrics = classification_metrics(truth, classifier.predict_proba(features), cfg.classes)
    champion_metrics = classification_metrics(
        truth, champion.classifier.predict_proba(features), cfg.classes
    )
    decision = gate(metrics, champion_metrics, cfg.gates)
    _logger.info(
        "retrain on %d rows (%d errors): holdout %d rows, accuracy %.3f vs champion %.3f: %s",
        len(rows),
        (window["role"] == "error").sum(),
        len(holdout),
        metrics["accuracy"],
        champion_metrics["accuracy"],
        "; ".join(decision.reasons) or "blessed",
    )
    gain = metrics["accuracy"] - champion_metrics["accuracy"]
    model = Model(
        classifier,
        reference_accuracy=metrics["accuracy"],
        gain=gain,
        holdout=metrics,
        champion_holdout=champion_metrics,
        against=champion.id,
    )
    return model, decision.blessed


def fit_all(cfg: ModelConfig, rows: pd.DataFrame) -> Model:
    """A model from scratch on every row given (naive and oracle)."""
    classifier = new_classifier(cfg)
    labels = rows["actual_label"].tolist()
    cut = int(len(rows) * (1 - cfg.training.validation_fraction))
    order = np.random.default_rng(cfg.training.random_seed).permutation(len(rows))
    train, val = rows.iloc[order[:cut]], rows.iloc[order[cut:]]
    classifier.fit(
        train[cfg.feature_names],
        [labels[i] for i in order[:cut]],
        val_frame=val[cfg.feature_names],
        val_labels=[labels[i] for i in order[cut:]],
    )
    return Model(classifier)
