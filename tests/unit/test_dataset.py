"""The retraining dataset snapshot: its digest, and the partial loads train and evaluate use."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from relearn.config import load_config
from relearn.data import dataset as dataset_module
from relearn.data.dataset import (
    DIGEST_ROWS,
    SPLITS,
    RetrainingDataset,
    build_dataset,
    count_high_confidence_errors,
)
from relearn.data.window import ERROR

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


def test_a_snapshot_is_written_in_row_groups_with_the_whole_frames_schema(
    model_cfg: ModelConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encoded a slice at a time, the file reads back as the one ``to_parquet`` writes, also
    when a slice's text column is all null (its own schema would say "null")."""
    monkeypatch.setattr(dataset_module, "SAVE_ROWS", 1_000)
    frame = snapshot(model_cfg, 3_500)
    frame.loc[:1_500, "contract"] = None
    path = RetrainingDataset(frame, model_cfg).save(tmp_path / "sliced.parquet")
    frame.to_parquet(tmp_path / "whole.parquet", index=False)

    assert pq.ParquetFile(path).num_row_groups == 4
    assert pq.read_schema(path).equals(pq.read_schema(tmp_path / "whole.parquet"), True)
    pd.testing.assert_frame_equal(
        pd.read_parquet(path), pd.read_parquet(tmp_path / "whole.parquet")
    )


def _window(model_cfg: ModelConfig, rows: int, *, categorical: bool) -> pd.DataFrame:
    """A validated window shaped as ``load_window`` returns it (or with text labels)."""
    rng = np.random.default_rng(5)
    frame = snapshot(model_cfg, rows).drop(columns=[model_cfg.label, "split"])
    text = "category" if categorical else "str"
    frame["predicted_label"] = pd.Series(rng.choice(model_cfg.classes, rows), dtype=text)
    # Categories in an order that is not the labels' sorted order.
    actual = pd.Series(rng.choice(model_cfg.classes, rows), dtype=str)
    frame["actual_label"] = (
        actual.astype(pd.CategoricalDtype(sorted(model_cfg.classes, reverse=True)))
        if categorical
        else actual
    )
    frame["confidence"] = rng.uniform(0.5, 1, rows)
    frame["role"] = frame["role"].astype(text)
    return frame


def test_the_dataset_is_the_same_whatever_the_windows_text_dtypes(model_cfg: ModelConfig) -> None:
    """Categorical labels and roles (as ``load_window`` reads them) select, split and snapshot
    exactly the rows text columns do; the window's columns are consumed on the way."""
    datasets = []
    for categorical in (False, True):
        valid = _window(model_cfg, 5_000, categorical=categorical)
        errors = count_high_confidence_errors(valid, 0.7)
        datasets.append(build_dataset(valid, model_cfg, confidence_threshold=0.7, seed=3))
        assert list(valid.columns) == []
        assert errors == (datasets[-1].frame["role"] == "error").sum() > 0
    text, codes = datasets
    pd.testing.assert_frame_equal(codes.frame, text.frame)
    assert codes.digest == text.digest
    assert str(codes.frame["role"].dtype) == "str"


@pytest.mark.parametrize(
    ("predicted", "actual", "correct"),
    [
        (
            pd.Series(["a", "b", "a"], dtype="str"),
            pd.Series(["a", None, "b"], dtype=object),
            [1, 0, 0],
        ),
        (pd.Series([1, 2, 1]), pd.Series(["1", "2", None], dtype=object), [1, 1, 0]),
        (pd.Series(["x", "y"], dtype="category"), pd.Series([None, None], dtype=object), [0, 0]),
        (pd.Series(pd.Categorical([1, 2])), pd.Series(["1", "1"], dtype="str"), [1, 0]),
    ],
)
def test_labels_of_any_storage_are_compared_as_text(predicted, actual, correct) -> None:
    """A service may log integer labels, and a column of missing outcomes is ``object``:
    the comparison must not depend on how pandas stores either column."""
    frame = pd.DataFrame({"predicted_label": predicted, "actual_label": actual})
    frame["role"], frame["confidence"] = ERROR, 0.9
    assert count_high_confidence_errors(frame, 0.7) == len(correct) - sum(correct)
