"""Reading a backfill file (CSV, Parquet, JSON Lines) in chunks of numbered rows.

A file is written by another team's service, so a row that cannot be read is that row's
error, never the whole file's: a JSON Lines line that is not a JSON object, a CSV line with
more fields than the header. Only a file of which no row can be read fails, in one line.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import is_numeric_dtype
from pandas.errors import ParserWarning

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Read as text whatever they look like: "007" is an id, not the number 7.
TEXT_COLUMNS = (
    "prediction_id",
    "model_name",
    "model_version",
    "unit_id",
    "predicted_label",
    "actual_label",
    "served_by",
)
_JSON_LINES = (".jsonl", ".ndjson")
_BOM = b"\xef\xbb\xbf"
_DECODER = msgspec.json.Decoder()
_FORMS = {
    "line": "a JSON Lines file holds one JSON object per line",
    "row": "a CSV file holds a header line, then lines of one value per header column",
}
_SKIPPED_LINE = re.compile(r"Skipping line (\d+): (.*)", re.DOTALL)


class IngestError(ValueError):
    """The file cannot be read at all (format, missing file, no model to ingest for)."""


@dataclass(frozen=True)
class BadRow:
    row: int
    model: str | None
    reasons: list[str]


@dataclass(frozen=True)
class Chunk:
    """Rows of the file as a frame with their row numbers, and the rows that could not be
    read (a JSON Lines line that is not a JSON object, a CSV line with more fields than the
    header). ``text_cells``: a CSV's, whose cells
    have no type (a column with one cell that is not a number reaches pandas as text)."""

    frame: pd.DataFrame
    rows: list[int]
    unreadable: list[BadRow] = field(default_factory=list)
    text_cells: bool = False

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.unreadable)


def _numbered(frames: Iterator[pd.DataFrame]) -> Iterator[Chunk]:
    first = 1
    for frame in frames:
        yield Chunk(frame, list(range(first, first + len(frame))))
        first += len(frame)


def chunks(path: Path, size: int) -> Iterator[Chunk]:
    """The file's chunks of ``size`` rows (a JSON Lines chunk: lines).

    :raises IngestError: the file, or its rest after the chunks given so far, cannot be read
        (not of its format, not UTF-8, empty); one line naming the file and where it stopped.
    """
    done = 0
    try:
        for chunk in _read(path, size):
            yield chunk
            last = [*chunk.rows[-1:], *(bad.row for bad in chunk.unreadable[-1:])]
            done = max([done, *last])  # both lists ascend
    except IngestError:
        raise
    except (ValueError, OSError, pa.ArrowException) as error:  # UnicodeDecodeError, ParserError
        where = f"after {unit_of(path)} {done}" if done else "at all"
        raise IngestError(
            f"{path}: cannot be read {where} ({' '.join(str(error).split())}): save it as "
            "UTF-8 CSV, Parquet or JSON Lines and ingest it again (rows already in the log "
            "are skipped)"
        ) from None


def _read(path: Path, size: int) -> Iterator[Chunk]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        parquet = pq.ParquetFile(path)
        yield from _numbered(batch.to_pandas() for batch in parquet.iter_batches(size))
    elif suffix == ".csv":
        yield from _csv_chunks(path, size)
    elif suffix in _JSON_LINES:
        yield from _json_lines(path, size)
    else:
        raise IngestError(f"{path}: unsupported file type '{suffix}' (use .csv, .parquet, .jsonl)")


def _csv_chunks(path: Path, size: int) -> Iterator[Chunk]:
    """Chunks of a CSV file. A line with more fields than the header is its row's error:
    pandas skips it with a warning naming the line, taken here as row line - 1 (exact unless
    a quoted cell before it spans lines); the rows after it keep their numbers."""
    text = dict.fromkeys(TEXT_COLUMNS, "string")
    reader = pd.read_csv(
        path, chunksize=size, dtype=text, keep_default_na=True, on_bad_lines="warn"
    )
    skipped: set[int] = set()
    row = 0
    with reader:
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                frame = next(reader, None)
            unreadable = _skipped_lines(caught)
            skipped.update(bad.row for bad in unreadable)
            if frame is None:
                if unreadable:
                    yield Chunk(pd.DataFrame(), [], unreadable, text_cells=True)
                return
            rows: list[int] = []
            while len(rows) < len(frame):
                row += 1
                if row not in skipped:
                    rows.append(row)
            yield Chunk(frame, rows, unreadable, text_cells=True)


def _skipped_lines(caught: list[warnings.WarningMessage]) -> list[BadRow]:
    """The lines pandas skipped as bad rows; any other warning is passed on as it was."""
    bad = []
    for warning in caught:
        skipped = _SKIPPED_LINE.match(str(warning.message))
        if warning.category is ParserWarning and skipped:
            line = int(skipped[1])
            bad.append(BadRow(line - 1, None, [f"line {line}: {skipped[2].strip()}"]))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return bad


def _json_lines(path: Path, size: int) -> Iterator[Chunk]:
    """Chunks of a JSON Lines file, decoded line by line: a line that is not a JSON object is
    that line's error, not the file's. Blank lines are skipped (and keep their numbers)."""
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    unreadable: list[BadRow] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(_BOM)
            if not line.strip():
                continue
            try:
                record = _DECODER.decode(line)
            except ValueError as error:  # msgspec.DecodeError, UnicodeDecodeError
                unreadable.append(BadRow(number, None, [f"not valid JSON: {error}"]))
            else:
                if isinstance(record, dict):
                    records.append(record)
                    rows.append(number)
                else:
                    unreadable.append(BadRow(number, None, ["not a JSON object"]))
            if len(records) + len(unreadable) >= size:
                yield Chunk(pd.DataFrame(records), rows, unreadable)
                records, rows, unreadable = [], [], []
    if records or unreadable:
        yield Chunk(pd.DataFrame(records), rows, unreadable)


def numbers_of_text(column: pd.Series) -> pd.Series:
    """A CSV column left as text because a cell is not a number: the numbers as numbers, the
    other cells as given, for the checks to reject their rows alone."""
    if is_numeric_dtype(column.dtype):
        return column
    parsed = pd.to_numeric(column, errors="coerce")
    unparsed = (parsed.isna() & column.notna()).to_numpy()
    if not unparsed.any():
        return parsed
    return parsed.astype(object).where(~unparsed, column.astype(object))


def check_readable(path: Path, chunk: Chunk) -> None:
    """A file of which no row of the first chunk could be read is not of its type at all (a
    CSV named .jsonl): one line naming the first, rather than one bad row per line."""
    if chunk.unreadable and not chunk.rows:
        first, unit = chunk.unreadable[0], unit_of(path)
        raise IngestError(
            f"{path}: no row could be read ({unit} {first.row}: {first.reasons[0]}): "
            f"{_FORMS[unit]} (name the file for its format: .csv, .parquet or .jsonl)"
        )


def unit_of(path: Path) -> str:
    """What a row number of this file counts: a JSON Lines file's rows are its lines."""
    return "line" if path.suffix.lower() in _JSON_LINES else "row"
