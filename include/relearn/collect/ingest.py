"""Backfills: predictions or outcomes from a CSV, Parquet or JSON Lines file into the log.

The file is read in chunks (memory stays flat whatever its size); each chunk is screened by
the same checks as the HTTP API, column-wise, and its good rows are written by Postgres COPY
(``relearn.store.predictions.copy_predictions``), one transaction per chunk and model, while
the next chunk is screened. Bad rows are reported with their row number (1 = the first data
row; in JSON Lines, the line number) and every reason; good rows are kept, also beside a line
that is not JSON or a CSV cell that is not a number. Re-running a file is harmless: known ids
and first outcomes stay as they are.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg2.errors import DeadlockDetected

from relearn.collect.files import (
    TEXT_COLUMNS,
    BadRow,
    Chunk,
    IngestError,
    check_readable,
    chunks,
    numbers_of_text,
    unit_of,
)
from relearn.collect.record import PredictionReceipt, log_screened, record_outcomes
from relearn.collect.rows import (
    REQUIRED,
    Rejected,
    Screened,
    parse_uuid,
    screen_predictions,
)
from relearn.config import FeatureType
from relearn.services import utcnow
from relearn.validation.frame import utc

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime
    from pathlib import Path

    from relearn.config import ModelConfig, RelearnConfig

log = logging.getLogger(__name__)

# Measured with bench/collect.py: chunks this small keep screening and writing overlapped
# over most of a file; two writers let Postgres use the second core while this one screens.
CHUNK_ROWS = 25_000
_WRITERS = 2
# Two writers can deadlock on an id the file repeats in two chunks in crossed order; Postgres
# aborts one transaction, whose retry then finds the other's rows in the log.
_DEADLOCK_RETRIES = 3
MODEL_COLUMN = "model_name"
_JSON_COLUMNS = ("features", "probabilities")
# Numbers besides the numeric features: a CSV cell that is not one leaves them text to pandas.
_NUMBER_COLUMNS = ("confidence", "latency_ms")


class IngestKind(StrEnum):
    PREDICTIONS = "predictions"
    OUTCOMES = "outcomes"


@dataclass
class IngestReport:
    """Counts per outcome and every bad row (``row`` numbers from 1, the first data row; in a
    JSON Lines file, where a row is a line, ``unit`` is "line" and ``row`` the line number)."""

    unit: str = "row"
    rows: int = 0
    logged: int = 0
    repeated: int = 0
    already_labelled: int = 0
    unknown: int = 0
    bad: list[BadRow] = field(default_factory=list)


def _decoded(value: Any) -> Any:
    """A JSON document given as text (CSV, Parquet strings) as its value; other values as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _normalised(chunk: pd.DataFrame) -> pd.DataFrame:
    """JSON text decoded, ids and labels as text; numeric columns keep their dtype."""
    for name in _JSON_COLUMNS:
        if name in chunk.columns:
            chunk[name] = [_decoded(value) for value in chunk[name].astype(object)]
    for name in TEXT_COLUMNS:
        if name in chunk.columns:
            column = chunk[name]
            values = column.astype(object).where(column.notna(), None)
            # Text already (a CSV's columns are read as such); a Parquet or JSON Lines column
            # may hold numbers (an object column is judged per value).
            text = isinstance(column.dtype, pd.StringDtype)
            chunk[name] = values if text else values.map(_text, na_action="ignore")
    return chunk


def _text(value: Any) -> str:
    """A value as text; an integral float as its integer: a column of integers with a null in
    it reaches pandas as floats, and unit 42 or class 1 must not become "42.0" or "1.0"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _by_model(
    chunk: pd.DataFrame, config: RelearnConfig, model: str | None, rows: list[int]
) -> Iterator[tuple[ModelConfig | None, pd.DataFrame, list[int]]]:
    """The chunk's rows per model with their file row numbers; unknown models as ``None``."""
    if model is not None or MODEL_COLUMN not in chunk.columns:
        name = model or (config.model_names[0] if len(config.models) == 1 else None)
        if name is None:
            raise IngestError(
                f"the file has no '{MODEL_COLUMN}' column: name the model with --model "
                f"(configured: {', '.join(config.model_names)})"
            )
        yield config.model(name), chunk, rows
        return
    for name, group in chunk.groupby(chunk[MODEL_COLUMN].fillna(""), sort=False):
        positions = [rows[i] for i in group.index]
        known = name in config.model_names
        yield (config.model(name) if known else None), group.reset_index(drop=True), positions


def _outcomes(chunk: pd.DataFrame) -> list[tuple[str, str, datetime | None]]:
    ids = chunk.get("prediction_id", pd.Series([None] * len(chunk)))
    labels = chunk.get("actual_label", pd.Series([None] * len(chunk)))
    if "outcome_at" in chunk.columns:
        times = pd.to_datetime(chunk["outcome_at"], utc=True, errors="coerce", format="ISO8601")
        moments = [None if pd.isna(t) else utc(t).to_pydatetime() for t in times]
    else:
        moments = [None] * len(chunk)
    return list(zip(ids, labels, moments, strict=True))


@dataclass(frozen=True)
class _Group:
    """One model's rows of a chunk, ready to write: screened predictions, or parsed outcomes
    (outcomes are screened as they are attached: their checks need the log)."""

    model_cfg: ModelConfig
    rows: list[int]
    predictions: Screened | None = None
    outcomes: list[tuple[str, str, datetime | None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    """A chunk after the CPU work: its groups per model and the rows of unknown models."""

    groups: list[_Group]
    bad: list[BadRow]


def ingest_file(
    database_url: str,
    config: RelearnConfig,
    kind: IngestKind,
    path: Path,
    *,
    model: str | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Screen and write every row of ``path``; bad rows are reported, never fatal.

    :raises IngestError: the file is missing or of an unknown type, or no model is named.
    """
    if path.is_dir():
        raise IngestError(
            f"{path} is a directory: ingest its .csv, .parquet or .jsonl files one by one"
        )
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if model is not None:
        config.model(model)  # a ConfigError naming the configured models
    report = IngestReport(unit=unit_of(path))
    moment = now or utcnow()
    sender = f"ingest:{path.name}"
    # A pipeline of two stages: this thread reads and screens the next chunks while writer
    # threads have the earlier ones written (psycopg2 waits for Postgres without the GIL), so
    # Python and the server work at the same time. Reports are merged in file order; at most
    # one screened chunk per writer waits for them (memory stays at a few chunks).
    # Outcomes have one writer: the first outcome of a prediction wins in file order.
    writers = _WRITERS if kind is IngestKind.PREDICTIONS else 1
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="ingest-writer") as writer:
        pending: deque[Future[IngestReport]] = deque()
        try:
            for chunk in chunks(path, CHUNK_ROWS):
                if report.rows == 0:
                    check_readable(path, chunk)
                    _check_header(path, kind, chunk.frame)
                report.rows += chunk.size
                prepared = _prepare(config, kind, chunk, model, moment)
                pending.append(writer.submit(_write, database_url, prepared, moment, sender))
                if len(pending) >= writers + 1:
                    _merge(report, pending.popleft().result(), path)
            while pending:
                _merge(report, pending.popleft().result(), path)
        except BaseException:
            writer.shutdown(cancel_futures=True)  # no chunk is written after a failed one
            raise
    return report


def _check_header(path: Path, kind: IngestKind, chunk: pd.DataFrame) -> None:
    """A file without a required column fails at once, with one line and nothing written
    (rather than one bad row per row). JSON Lines chunks may still lack one later: their rows
    are then rejected with that reason."""
    needed = REQUIRED if kind is IngestKind.PREDICTIONS else ("prediction_id", "actual_label")
    has = set(chunk.columns)
    if "probabilities" in has:  # a confidence is derived from the probabilities
        has.add("confidence")
    missing = [name for name in needed if name not in has]
    if missing:
        raise IngestError(
            f"{path}: no column {', '.join(repr(name) for name in missing)}: {kind} files "
            f"need {', '.join(needed)} (see `relearn ingest --help`)"
        )


def _merge(report: IngestReport, part: IngestReport, path: Path) -> None:
    report.logged += part.logged
    report.repeated += part.repeated
    report.already_labelled += part.already_labelled
    report.unknown += part.unknown
    report.bad += part.bad
    log.info("%s: %s rows read, %s bad so far", path.name, report.rows, len(report.bad))


def _prepare(
    config: RelearnConfig,
    kind: IngestKind,
    chunk: Chunk,
    model: str | None,
    now: datetime,
) -> _Prepared:
    """The CPU side of a chunk: normalised, split per model, predictions screened."""
    prepared = _Prepared([], list(chunk.unreadable))
    if not chunk.rows:
        return prepared
    frame = _normalised(chunk.frame.reset_index(drop=True))
    for model_cfg, group, rows in _by_model(frame, config, model, chunk.rows):
        if model_cfg is None:
            reason = f"unknown model (configured: {', '.join(config.model_names)})"
            prepared.bad.extend(BadRow(row, None, [reason]) for row in rows)
        elif kind is IngestKind.PREDICTIONS:
            if chunk.text_cells:
                numeric = [f.name for f in model_cfg.features if f.type is FeatureType.NUMERIC]
                for name in {*_NUMBER_COLUMNS, *numeric} & set(group.columns):
                    group[name] = numbers_of_text(group[name])
            screened = screen_predictions(group, model_cfg, now=now, rows=rows)
            screened.accepted.copy_text  # noqa: B018 -- rendered here, not in the writer
            prepared.groups.append(_Group(model_cfg, rows, predictions=screened))
        else:
            prepared.groups.append(_Group(model_cfg, rows, outcomes=_outcomes(group)))
    return prepared


def _logged(
    database_url: str, model_cfg: ModelConfig, screened: Screened, rows: int, sender: str
) -> PredictionReceipt:
    """``log_screened``, written again when Postgres broke a deadlock with another writer."""
    for _ in range(_DEADLOCK_RETRIES - 1):
        try:
            return log_screened(database_url, model_cfg, screened, rows=rows, sender=sender)
        except DeadlockDetected:
            log.warning("model %s: a chunk met another on a repeated id; again", model_cfg.name)
    return log_screened(database_url, model_cfg, screened, rows=rows, sender=sender)


def _write(database_url: str, prepared: _Prepared, now: datetime, sender: str) -> IngestReport:
    """The database side of a chunk: one transaction per model; its counts and bad rows."""
    part = IngestReport(bad=list(prepared.bad))
    for group in prepared.groups:
        model_cfg, rows = group.model_cfg, group.rows
        rejected: list[Rejected]
        if group.predictions is not None:
            receipt = _logged(database_url, model_cfg, group.predictions, len(rows), sender)
            part.logged += receipt.logged
            part.repeated += receipt.repeated
            rejected = receipt.rejected
        else:
            given = group.outcomes
            outcome = record_outcomes(database_url, model_cfg, given, sender=sender, now=now)
            part.logged += len(outcome.result.attached)
            part.already_labelled += len(outcome.result.already_labelled)
            part.unknown += len(outcome.result.unknown)
            position = {parse_uuid(pid): i for i, (pid, _, _) in reversed(list(enumerate(given)))}
            reason = f"no prediction of model '{model_cfg.name}' has this id (ingest it first)"
            rejected = outcome.rejected + [
                Rejected(position[pid], str(pid), [reason]) for pid in outcome.result.unknown
            ]
        part.bad += [BadRow(rows[r.position], model_cfg.name, r.reasons) for r in rejected]
    part.bad.sort(key=lambda bad: bad.row)  # groups per model interleave in the file
    return part
