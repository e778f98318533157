"""Read a user's CSV or Parquet file in bounded batches, whatever its size.

Only the columns asked for are read (Parquet prunes them on disk), ``BATCH_ROWS`` rows at a
time, so memory depends on the batch and the caller's sample, never on the file. CSV cells
are read as text: the caller decides what is a number, and a cell that is not one is
reported with its row and column (``DatasetError``) rather than silently becoming NaN.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

BATCH_ROWS = 16_384
SUFFIXES = (".csv", ".parquet")
_DIGEST_CHUNK = 1 << 20
_READ_BUFFER = 1 << 20


class DatasetError(ValueError):
    """The dataset file cannot be used as it is; the message names the file, row and column."""


@dataclass(frozen=True)
class Batch:
    """``frame`` holds data rows ``first_row`` .. ``first_row + len(frame) - 1`` (1-based)."""

    first_row: int
    frame: pd.DataFrame

    def row_number(self, position: int) -> int:
        return self.first_row + position


def check_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"dataset {path} not found")
    if path.suffix.lower() not in SUFFIXES:
        raise DatasetError(
            f"dataset {path}: unsupported file type '{path.suffix}' (use .csv or .parquet)"
        )


def columns(path: Path) -> list[str]:
    """The file's column names, without reading its rows."""
    check_file(path)
    if path.suffix.lower() == ".parquet":
        return list(_parquet(path).schema_arrow.names)
    try:
        return [str(name) for name in pd.read_csv(path, nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"dataset {path}: not a readable CSV file ({_line(error)})") from None


def batches(path: Path, wanted: Sequence[str], batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """The ``wanted`` columns of every row, ``batch_rows`` rows at a time."""
    present = set(columns(path))
    missing = [name for name in wanted if name not in present]
    if missing:
        raise DatasetError(f"dataset {path}: no column(s) {missing}")
    first_row = 1
    for frame in _frames(path, list(wanted), batch_rows):
        yield Batch(first_row, frame)
        first_row += len(frame)


def _frames(path: Path, wanted: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    if path.suffix.lower() == ".parquet":
        try:
            for record_batch in _parquet(path).iter_batches(batch_size=batch_rows, columns=wanted):
                yield record_batch.to_pandas()
        except pa.ArrowException as error:
            raise DatasetError(f"dataset {path}: unreadable Parquet ({_line(error)})") from None
        return
    # Every column is parsed (with usecols pandas would pass a row with extra fields), so a
    # ragged line fails with its line number.
    reader = pd.read_csv(path, dtype=str, chunksize=batch_rows)
    try:
        yield from (chunk[wanted] for chunk in reader)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DatasetError(f"dataset {path}: malformed CSV ({_line(error)})") from None


def _parquet(path: Path) -> pq.ParquetFile:
    # pre_buffer (the default) caches every column chunk read so far: ~the file's size in
    # memory by the last batch. Unbuffered, a batch costs its row group and no more.
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(f"dataset {path}: not a Parquet file ({_line(error)})") from None


def _line(error: BaseException) -> str:
    return " ".join(str(error).split())


def digest(path: Path) -> str:
    """SHA-256 of the file's bytes: the lineage a version records of the data it came from."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_DIGEST_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def numbers(batch: Batch, column: str, path: Path) -> pd.Series:
    """``column`` as float64; a value that is not a number raises with its row and column."""
    values = batch.frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise DatasetError(f"dataset {path}: column '{column}' holds booleans, not numbers")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        position = int(bad.to_numpy().argmax())
        raise DatasetError(
            f"dataset {path}: row {batch.row_number(position)}, column '{column}': "
            f"{values.iloc[position]!r} is not a number"
        )
    return parsed.astype("float64")


def texts(values: pd.Series) -> pd.Series:
    """Category and label values as the text the prediction log will hold (NaN stays NaN)."""
    return values.map(str, na_action="ignore").astype(object)
