"""``TorchMLPClassifier``: a small MLP that can keep learning from where it stopped.

Unlike a refit-from-scratch model, a second ``fit`` continues from the current weights with
the preprocessor frozen, which is what lets a retraining run fine-tune the champion on
recent mistakes instead of starting over.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import joblib
import torch
from torch import nn

from relearn.config import ModelKind
from relearn.training.adam import Adam
from relearn.training.classifier import TabularClassifier, TrainingHistory, validation_metrics
from relearn.training.preprocessing import build_preprocessor

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

DROPOUT = 0.1
PREPROCESSOR_FILE = "preprocessor.joblib"
WEIGHTS_FILE = "weights.pt"
# Mini-batches whose shuffled rows are gathered at once in an epoch.
_GATHER_BATCHES = 512


def build_network(input_units: int, hidden_units: list[int], n_classes: int) -> nn.Sequential:
    """Linear -> ReLU -> Dropout per hidden layer, then a linear layer of class logits."""
    layers: list[nn.Module] = []
    width = input_units
    for units in hidden_units:
        layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(DROPOUT)]
        width = units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class TorchMLPClassifier(TabularClassifier):
    """An MLP trained with Adam on cross-entropy, early-stopped on validation loss.

    Training is deterministic for ``training.random_seed``: weights are initialised, batches
    shuffled and dropout drawn from RNGs seeded per ``fit`` (the process-wide torch RNG is
    left untouched). Fitting an already fitted instance fine-tunes it: the preprocessor is
    kept and the default learning rate is ``learning_rate * fine_tune_lr_factor``.
    """

    kind = ModelKind.TORCH_MLP

    def __init__(self, model_cfg: ModelConfig) -> None:
        super().__init__(model_cfg)
        self.preprocessor: ColumnTransformer | None = None
        self.network: nn.Sequential | None = None

    @property
    def is_fitted(self) -> bool:
        return self.preprocessor is not None and self.network is not None

    def _fit(
        self,
        features: pd.DataFrame,
        y: np.ndarray,
        validation: tuple[pd.DataFrame, list[str]] | None,
        *,
        epochs: int | None,
        learning_rate: float | None,
    ) -> TrainingHistory:
        params = self.model_cfg.training
        fine_tune = self.is_fitted
        if learning_rate is None:
            factor = params.fine_tune_lr_factor if fine_tune else 1.0
            learning_rate = params.learning_rate * factor
        if epochs is None:
            epochs = params.epochs
        threads = torch.get_num_threads()
        # One thread: faster for networks this small, and the same arithmetic on every host.
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(params.random_seed)
                if not fine_tune:
                    self.preprocessor = build_preprocessor(self.model_cfg).fit(features)
                    self.network = build_network(
                        len(self.preprocessor.get_feature_names_out()),
                        params.hidden_units,
                        len(self.classes),
                    )
                log.info(
                    "%s %s: %d rows, %d validation rows, up to %d epochs, learning rate %g",
                    "fine-tuning" if fine_tune else "training",
                    self.model_cfg.name,
                    len(features),
                    0 if validation is None else len(validation[0]),
                    epochs,
                    learning_rate,
                )
                return self._train(features, y, validation, epochs, learning_rate)
        finally:
            torch.set_num_threads(threads)

    def _train(
        self,
        features: pd.DataFrame,
        y: np.ndarray,
        validation: tuple[pd.DataFrame, list[str]] | None,
        epochs: int,
        learning_rate: float,
    ) -> TrainingHistory:
        preprocessor, network = self._parts()
        params = self.model_cfg.training
        x = _inputs(preprocessor, features)
        targets = torch.from_numpy(y)
        val = None if validation is None else (_inputs(preprocessor, validation[0]), validation[1])
        optimizer = Adam(network.parameters(), lr=learning_rate)
        loss_fn = nn.CrossEntropyLoss()
        shuffle = torch.Generator().manual_seed(params.random_seed)
        history = TrainingHistory()
        best_loss, best_state, stale = math.inf, None, 0
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            network.train()
            total = 0.0
            order = torch.randperm(len(x), generator=shuffle)
            # Shuffled rows are gathered a chunk of whole batches at a time, then batches are
            # contiguous views: the same rows in the same order as indexing each batch, without
            # a gather per step (slower) or a shuffled copy of the whole input per epoch (on
            # top of the input at the step's memory peak).
            for chunk in order.split(params.batch_size * _GATHER_BATCHES):
                chunk_x, chunk_targets = x[chunk], targets[chunk]
                for batch_x, batch_targets in zip(
                    chunk_x.split(params.batch_size),
                    chunk_targets.split(params.batch_size),
                    strict=True,
                ):
                    optimizer.zero_grad()
                    loss = loss_fn(network(batch_x), batch_targets)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(batch_x)
            entry: dict[str, float] = {"epoch": epoch, "train_loss": total / len(x)}
            if val is not None:
                val_x, val_labels = val
                entry.update(validation_metrics(val_labels, _proba(network, val_x), self.classes))
            entry["seconds"] = time.perf_counter() - started
            history.epochs.append(entry)
            _log_epoch(self.model_cfg.name, entry, epochs)
            if val is None:
                continue
            if entry["val_loss"] < best_loss:
                best_loss, stale = entry["val_loss"], 0
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
                history.best_epoch = epoch
            else:
                stale += 1
                if stale >= params.patience:
                    log.info(
                        "%s: early stop after epoch %d, no val_loss improvement for %d epochs; "
                        "keeping epoch %d",
                        self.model_cfg.name,
                        epoch,
                        stale,
                        history.best_epoch,
                    )
                    break
        if best_state is None:
            history.best_epoch = len(history.epochs)
        else:
            network.load_state_dict(best_state)
        network.eval()
        return history

    def _parts(self) -> tuple[ColumnTransformer, nn.Sequential]:
        if self.preprocessor is None or self.network is None:
            raise RuntimeError(f"{type(self).__name__} for '{self.model_cfg.name}' is not fitted")
        return self.preprocessor, self.network

    def _predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        preprocessor, network = self._parts()
        return _proba(network, _inputs(preprocessor, features))

    def _save_artifacts(self, directory: Path) -> None:
        preprocessor, network = self._parts()
        joblib.dump(preprocessor, directory / PREPROCESSOR_FILE)
        torch.save(network.state_dict(), directory / WEIGHTS_FILE)

    def _load_artifacts(self, directory: Path) -> None:
        preprocessor: ColumnTransformer = joblib.load(directory / PREPROCESSOR_FILE)
        network = build_network(
            len(preprocessor.get_feature_names_out()),
            self.model_cfg.training.hidden_units,
            len(self.classes),
        )
        network.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
        network.eval()
        self.preprocessor, self.network = preprocessor, network


def _inputs(preprocessor: ColumnTransformer, features: pd.DataFrame) -> torch.Tensor:
    return torch.from_numpy(preprocessor.transform(features))


def _proba(network: nn.Sequential, x: torch.Tensor) -> np.ndarray:
    """Softmax in float64, so each row sums to 1 to float64 precision."""
    network.eval()
    with torch.no_grad():
        return torch.softmax(network(x).double(), dim=1).numpy()


def _log_epoch(model_name: str, entry: dict[str, float], epochs: int) -> None:
    if "val_loss" in entry:
        log.info(
            "%s epoch %d/%d: train_loss %.4f, val_loss %.4f, val_accuracy %.3f, val_f1 %.3f "
            "(%.2fs)",
            model_name,
            entry["epoch"],
            epochs,
            entry["train_loss"],
            entry["val_loss"],
            entry["val_accuracy"],
            entry["val_f1"],
            entry["seconds"],
        )
    else:
        log.info(
            "%s epoch %d/%d: train_loss %.4f (%.2fs)",
            model_name,
            entry["epoch"],
            epochs,
            entry["train_loss"],
            entry["seconds"],
        )
