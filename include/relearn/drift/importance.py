"""How much each feature moves a model's predictions: the weights of the drift score.

Permutation importance on the reference rows, measured on the predictions rather than on
labels: shuffle one feature's column (breaking its link with the rest of the row), and see
how far the predicted probabilities move (mean total-variation distance between the
original and the shuffled row's class distribution). It needs nothing but ``predict_proba``,
so it works for every model kind and schema, including a model imported from elsewhere, and
it measures exactly what the drift score should weigh: how much a change of that feature
changes what the model says. Shares sum to 1.
"""

from __future__ import annotations

import logging
import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

# Enough rows for shares stable to about a percentage point; 2 x features predict calls.
DEFAULT_ROWS = 2000
DEFAULT_REPEATS = 2


def permutation_importance(
    features: pd.DataFrame,
    model_cfg: ModelConfig,
    predict: Callable[[pd.DataFrame], np.ndarray],
    *,
    rows: int = DEFAULT_ROWS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> dict[str, float]:
    """Each configured feature's share of the prediction change (shares sum to 1).

    A model that no shuffle moves at all (a constant model) gets equal shares.
    """
    if len(features) == 0:
        raise ValueError("cannot measure feature importance on zero rows")
    rng = np.random.default_rng([seed % 2**64, zlib.crc32(model_cfg.name.encode())])
    picked = rng.choice(len(features), size=min(rows, len(features)), replace=False)
    sample = features.iloc[np.sort(picked)][model_cfg.feature_names].reset_index(drop=True)
    base = np.asarray(predict(sample), dtype=np.float64)
    change: dict[str, float] = {}
    for name in model_cfg.feature_names:
        moved = 0.0
        for _ in range(repeats):
            shuffled = sample.copy()
            shuffled[name] = sample[name].to_numpy()[rng.permutation(len(sample))]
            proba = np.asarray(predict(shuffled), dtype=np.float64)
            moved += 0.5 * float(np.abs(proba - base).sum(axis=1).mean())
        change[name] = moved / repeats
    total = sum(change.values())
    if total <= 0:
        log.warning("%s: no feature moves the predictions; equal weights", model_cfg.name)
        return {name: 1 / len(change) for name in change}
    shares = {name: value / total for name, value in change.items()}
    log.info(
        "%s: permutation importance on %d reference rows: %s",
        model_cfg.name,
        len(sample),
        ", ".join(f"{n} {s:.3f}" for n, s in sorted(shares.items(), key=lambda i: -i[1])),
    )
    return shares
