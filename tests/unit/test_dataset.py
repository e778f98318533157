"""The retraining dataset snapshot: its digest, and the partial loads train and evaluate use."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from relearn.config import load_config
from relearn.data.dataset import DIGEST_ROWS, SPLITS, RetrainingDataset

if TYPE_CHECKING:
    from relearn.config import ModelConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_cfg() -> ModelConfig:
    return load_config(ROOT / "relearn.yaml").model("churn")


def snapshot(model_cfg: ModelConfig, rows: int) -> pd.DataFrame:
    """A snapshot shaped as ``build_dataset`` writes it: features, label, split, bookkeeping."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            feature.name: (
                pd.Series(rng.choice(list(feature.categories), rows), dtype=object)
                if feature.categories
                else rng.normal(size=rows)
            )
            for feature in model_cfg.features
        }
    )
    frame[model_cfg.label] = pd.Series(rng.choice(model_cfg.classes, rows), dtype=str)
    frame["split"] = pd.Series(rng.choice(SPLITS, rows), dtype=str)
    frame["role"] = pd.Series(rng.choice(["error", "replay", "holdout"], rows), dtype=str)
    frame["prediction_id"] = pd.Series([f"id-{n}" for n in range(rows)], dtype=str)
    frame["predicted_at"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        np.arange(rows), unit="s"
    )
    return frame


def test_digest_hashes_slices_of_rows_as_one_frame(model_cfg: ModelConfig) -> None:
    """Hashed a slice at a time (bounded memory), the digest is still the whole frame's."""
    frame = snapshot(model_cfg, 2 * DIGEST_ROWS + 123)
    whole = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()

    assert RetrainingDataset(frame, model_cfg).digest == hashlib.sha256(whole).hexdigest()
    assert RetrainingDataset(frame.iloc[:0], model_cfg).digest == hashlib.sha256().hexdigest()


def test_a_partial_load_keeps_only_its_splits_and_the_model_columns(
    model_cfg: ModelConfig, tmp_path: Path
) -> None:
    frame = snapshot(model_cfg, 1_000)
    path = RetrainingDataset(frame, model_cfg).save(tmp_path / "snapshot.parquet")

    full = RetrainingDataset.load(path, model_cfg)
    learn = RetrainingDataset.load(path, model_cfg, splits=("train", "validation"))
    holdout = RetrainingDataset.load(path, model_cfg, splits=("holdout",))

    columns = [*model_cfg.feature_names, model_cfg.label, "split", "predicted_at"]
    assert list(learn.frame.columns) == columns
    assert set(holdout.frame["split"]) == {"holdout"}
    for split, dataset in (("train", learn), ("validation", learn), ("holdout", holdout)):
        expected = full.features(split).reset_index(drop=True)
        pd.testing.assert_frame_equal(dataset.features(split).reset_index(drop=True), expected)
        assert dataset.labels(split) == full.labels(split)
    assert learn.sizes == {**full.sizes, "holdout": 0}


def test_a_partial_load_holds_text_as_codes_and_shares_label_strings(
    model_cfg: ModelConfig, tmp_path: Path
) -> None:
    """A step's peak memory: a code per row for the label and the split, and labels that are
    one ``str`` per class rather than one per row."""
    frame = snapshot(model_cfg, 2_000)
    path = RetrainingDataset(frame, model_cfg).save(tmp_path / "snapshot.parquet")

    learn = RetrainingDataset.load(path, model_cfg, splits=("train", "validation"))

    for name in (model_cfg.label, "split"):
        assert isinstance(learn.frame[name].dtype, pd.CategoricalDtype), name
    labels = learn.labels("train")
    assert labels == frame.loc[frame["split"] == "train", model_cfg.label].tolist()
    assert len({id(label) for label in labels}) <= len(model_cfg.classes)


def test_a_partial_load_of_a_snapshot_without_prediction_times(
    model_cfg: ModelConfig, tmp_path: Path
) -> None:
    """Snapshots written before ``predicted_at`` was kept still load (incremental falls back)."""
    frame = snapshot(model_cfg, 100).drop(columns=["predicted_at"])
    path = RetrainingDataset(frame, model_cfg).save(tmp_path / "old.parquet")

    learn = RetrainingDataset.load(path, model_cfg, splits=("train",))

    assert "predicted_at" not in learn.frame.columns
    assert learn.labels("train") == frame.loc[frame["split"] == "train", "churned"].tolist()
