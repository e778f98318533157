"""Turn a validated window into the dataset a retraining run trains and judges on.

The snapshot is one Parquet file (features, label, ``split``, ``role``, ``prediction_id``)
with a content digest, so a run's lineage names exactly the rows it learned from and
``relearn train --dataset`` can replay it outside Airflow.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals
from sklearn.model_selection import train_test_split

from relearn.data.memory import release_unused
from relearn.data.window import ERROR, HOLDOUT, REPLAY
from relearn.training.preprocessing import feature_frame

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)

TRAIN, VALIDATION = "train", "validation"
SPLITS = (TRAIN, VALIDATION, HOLDOUT)
# Rows hashed at a time for the digest.
DIGEST_ROWS = 50_000
# Rows decoded at a time when a step loads some splits of a snapshot.
LOAD_ROWS = 65_536
# Rows per row group of a snapshot, encoded at a time.
SAVE_ROWS = 100_000


@dataclass(frozen=True)
class RetrainingDataset:
    """Rows with canonical feature dtypes, the label column and their split."""

    frame: pd.DataFrame
    model_cfg: ModelConfig

    def part(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == split]

    def features(self, split: str) -> pd.DataFrame:
        """The split's feature columns (only they are copied, not the whole rows)."""
        return self.frame.loc[self.frame["split"] == split, self.model_cfg.feature_names]

    def labels(self, split: str) -> list[str]:
        """The split's labels, one ``str`` object per class shared by its rows: ``tolist`` of
        a text column makes a ``str`` per row (570k of them for a week's training split)."""
        codes, classes = pd.factorize(
            self.frame.loc[self.frame["split"] == split, self.model_cfg.label]
        )
        texts = np.array([*(str(label) for label in classes), np.nan], dtype=object)
        return texts[codes].tolist()  # code -1 (a missing label): the NaN

    @property
    def sizes(self) -> dict[str, int]:
        counts = self.frame["split"].value_counts()
        return {split: int(counts.get(split, 0)) for split in SPLITS}

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the content (row order and values), independent of the file format.

        The SHA-256 of every row's hash in order, fed a slice of rows at a time: a row's hash
        depends on that row only, and hashing a text column makes a Python string per value
        (700k of them at once were the step's peak).
        """
        digest = hashlib.sha256()
        for start in range(0, len(self.frame), DIGEST_ROWS):
            rows = self.frame.iloc[start : start + DIGEST_ROWS]
            digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> Path:
        """Written ``SAVE_ROWS`` rows at a time, one row group each: the file of a whole window
        encoded at once (one row group) cost 90 MB at the step's peak."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # The whole frame's schema: a slice whose text column is all null would infer "null".
        schema = pa.Schema.from_pandas(self.frame, preserve_index=False)
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, max(len(self.frame), 1), SAVE_ROWS):
                rows = self.frame.iloc[start : start + SAVE_ROWS]
                writer.write_table(pa.Table.from_pandas(rows, schema, preserve_index=False))
        return path

    @classmethod
    def load(
        cls, path: Path, model_cfg: ModelConfig, *, splits: Sequence[str] | None = None
    ) -> RetrainingDataset:
        """The snapshot at ``path``; with ``splits``, only their rows and the columns a model
        reads (features, label, ``split``, ``predicted_at``), in snapshot order.

        Training needs no holdout and judging only the holdout: neither holds the whole window
        (ids, roles) in memory. A partial dataset's ``digest`` is not the snapshot's.
        """
        if splits is None:
            return cls(pd.read_parquet(path), model_cfg)
        schema = pq.read_schema(path)
        wanted = [*model_cfg.feature_names, model_cfg.label, "split", "predicted_at"]
        columns = [name for name in wanted if name in schema.names]
        # Read as a stream of batches (no pre-buffered file, one thread), each filtered as it
        # comes: the whole file is never decoded at once. The label and the split are read
        # dictionary-encoded, as pandas categoricals: a small code per row instead of its
        # text (features keep their stored types: the holdout's consumers read them as such).
        text = [
            name
            for name in (model_cfg.label, "split")
            if name in schema.names
            and (
                pa.types.is_string(schema.field(name).type)
                or pa.types.is_large_string(schema.field(name).type)
            )
        ]
        parquet = pq.ParquetFile(path, read_dictionary=text, pre_buffer=False)
        kept = pa.array(list(splits), type=pa.string())
        batches = [
            batch.filter(pc.is_in(batch.column("split").cast(pa.string()), value_set=kept))
            for batch in parquet.iter_batches(
                batch_size=LOAD_ROWS, columns=columns, use_threads=False
            )
        ]
        read = parquet.schema_arrow
        table = pa.Table.from_batches(batches, pa.schema([read.field(name) for name in columns]))
        del batches
        frame = table.to_pandas()
        del table
        release_unused()
        return cls(frame, model_cfg)


def _error_mask(valid: pd.DataFrame, confidence_threshold: float) -> np.ndarray:
    wrong = ~_correct(valid)
    sure = (valid["confidence"] >= confidence_threshold).to_numpy(dtype=bool)
    return (valid["role"] == ERROR).to_numpy(dtype=bool) & wrong & sure


def _correct(valid: pd.DataFrame) -> np.ndarray:
    """Predicted label == actual label (a missing label equals nothing), compared as codes over
    both columns' labels, text or categorical: pandas compares categoricals only with the same
    categories, and as objects the labels would be a Python string per row (80 MB)."""
    names = ("predicted_label", "actual_label")
    predicted, actual = (_text_categorical(valid[name]) for name in names)
    labels = union_categoricals([predicted, actual]).categories
    predicted, actual = (pd.Categorical(c, categories=labels).codes for c in (predicted, actual))
    return (predicted == actual) & (predicted >= 0)


def _text_categorical(column: pd.Series) -> pd.Categorical:
    """The labels as a categorical of text, missing ones missing: ``union_categoricals``
    refuses categories of different types (``str`` against ``object``, or integers)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        values = column.array
        return values.rename_categories(values.categories.astype("str"))
    return pd.Categorical(column.astype("str"))


def count_high_confidence_errors(valid: pd.DataFrame, confidence_threshold: float) -> int:
    """Wrong predictions the model was sure about: the lessons of the window."""
    return int(_error_mask(valid, confidence_threshold).sum())


def build_dataset(
    valid: pd.DataFrame,
    model_cfg: ModelConfig,
    *,
    confidence_threshold: float,
    seed: int,
) -> RetrainingDataset:
    """Errors + replay split into train/validation (stratified by label), plus the holdout.

    ``valid`` is consumed: each of its columns is dropped once copied into the snapshot, so
    the window and the snapshot (about 100 MB each for 700k rows) are never both whole in
    memory. Rows are chosen by position and copied once, into the snapshot.
    """
    errors = np.flatnonzero(_error_mask(valid, confidence_threshold))
    correct = _correct(valid)
    replay = np.flatnonzero((valid["role"] == REPLAY).to_numpy(dtype=bool) & correct)
    holdout = np.flatnonzero((valid["role"] == HOLDOUT).to_numpy(dtype=bool))
    kept = {*model_cfg.feature_names, "actual_label", "role", "prediction_id", "predicted_at"}
    _drop(valid, [name for name in valid.columns if name not in kept])  # read by the masks only
    learn = np.concatenate([errors, replay])
    # Stratified on codes numbered in the labels' sorted order, as scikit-learn numbers the
    # labels it is given (the same split): 700k label strings for its ``np.unique`` held 65 MB.
    codes, uniques = pd.factorize(valid["actual_label"].iloc[learn])
    labels = np.argsort(np.argsort(np.asarray(uniques, dtype=object)))[codes]
    stratify = labels if np.bincount(labels).min() >= 2 else None
    train, validation = train_test_split(
        learn,
        test_size=model_cfg.training.validation_fraction,
        random_state=seed,
        stratify=stratify,
    )
    del codes, uniques, labels, stratify, correct
    release_unused()  # the split's working arrays: before the snapshot's copies
    positions = np.concatenate([train, validation, holdout])
    index = pd.RangeIndex(len(positions))
    rows = valid[model_cfg.feature_names].take(positions).set_axis(index)
    _drop(valid, model_cfg.feature_names)
    frame = feature_frame(rows, model_cfg)
    del rows
    release_unused()
    frame[model_cfg.label] = _take(valid, "actual_label", positions, index).astype(str)
    frame["split"] = pd.Series(
        np.repeat(np.array(SPLITS, dtype=object), [len(train), len(validation), len(holdout)]),
        dtype=str,
    )
    frame["role"] = _take(valid, "role", positions, index).astype(str)  # as text in the snapshot
    for column in ("prediction_id", "predicted_at"):
        frame[column] = _take(valid, column, positions, index)
    _drop(valid, list(valid.columns))
    dataset = RetrainingDataset(frame, model_cfg)
    log.info(
        "%s dataset: %d errors + %d replay -> %s (digest %s)",
        model_cfg.name,
        len(errors),
        len(replay),
        dataset.sizes,
        dataset.digest[:12],
    )
    return dataset


def _take(valid: pd.DataFrame, column: str, positions: np.ndarray, index: pd.Index) -> pd.Series:
    """The rows at ``positions`` of ``valid[column]``, which is dropped from ``valid``."""
    taken = valid[column].take(positions).set_axis(index)
    _drop(valid, [column])
    return taken


def _drop(valid: pd.DataFrame, columns: list[str]) -> None:
    """Drop copied columns and hand their memory back before the next copy allocates."""
    valid.drop(columns=columns, inplace=True)
    release_unused()
