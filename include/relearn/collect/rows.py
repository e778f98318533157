"""Incoming prediction rows: normalised into a frame and screened by the model's checks.

A batch arrives as a frame with the columns of ``PREDICTION_COLUMNS`` (``features`` holding
one object per row) or, from a flat file, one column per configured feature instead of
``features``. Screening never raises on a row: each bad row is rejected with every reason,
and the good rows go on, ready for ``relearn.store.predictions.copy_predictions``.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from itertools import compress
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from relearn.collect.arms import ARMS, ArmVersions, served_by
from relearn.collect.checks import checked_frame, row_reasons
from relearn.collect.encode import flat_documents, json_text, json_texts
from relearn.collect.probabilities import (
    ROUNDING,
    confidence_or_probability,
    disagreements,
    good_probabilities,
)
from relearn.config import FeatureType
from relearn.store.columns import PREDICTION_COLUMNS
from relearn.store.prediction_log import FEATURES_TYPE
from relearn.store.predictions import PredictionColumns
from relearn.validation.checks import CONFIDENCE, PREDICTED_AT

if TYPE_CHECKING:
    from collections import defaultdict
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from relearn.config import ModelConfig

_TEXT_COLUMNS = ("prediction_id", "model_version", "unit_id", "predicted_label", "served_by")
REQUIRED = ("prediction_id", "model_version", "predicted_at", "predicted_label", "confidence")
FEATURES = "features"
# Exactly these types (``bool`` is a subclass of ``int`` but not a number here).
_PLAIN_NUMBERS = {float, int, type(None)}
_UNSTORABLE = "a value holds NaN, infinity or a NUL character"
# The first instant Postgres's timestamptz can hold; pandas can hold earlier ones.
_FIRST_STORABLE_TIME = pd.Timestamp("0001-01-01", tz="UTC")
_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CANONICAL_UUID = re.compile(_UUID_TEXT + r"\Z")
_CANONICAL_LINE = f"^{_UUID_TEXT}$"


@dataclass(frozen=True)
class Rejected:
    """A row that was not logged: its position in the batch (0-based) and every reason."""

    position: int
    prediction_id: str | None
    reasons: list[str]


@dataclass(frozen=True)
class Screened:
    """The rows of a batch that may be logged (column-wise), and the ones that may not."""

    accepted: PredictionColumns
    rejected: list[Rejected]


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "string" if isinstance(value, str) else "scalar"


def parse_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from a UUID or its text; ``None`` for anything else (never raises)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _canonical_id(value: Any) -> str | None:
    """The canonical text of a UUID (as Postgres prints it); ``None`` if it is no UUID."""
    if isinstance(value, str) and _CANONICAL_UUID.match(value):
        return value
    parsed = parse_uuid(value)
    return None if parsed is None else str(parsed)


def _canonical_ids(values: list[Any]) -> list[str | None]:
    """``_canonical_id`` of each value; a column already in canonical form (what every UUID
    library prints) is recognised by one vectorised match instead of a regex call per value."""
    if values and _all_text(values):
        canonical = pc.match_substring_regex(pa.array(values, type=pa.string()), _CANONICAL_LINE)
        if pc.all(canonical).as_py():
            return values
    return [_canonical_id(value) for value in values]


def _all_text(values: list[Any]) -> bool:
    return set(map(type, values)) == {str}


def _values(column: pd.Series) -> list[Any]:
    """A column as Python values, ``None`` where missing (NaN, NaT, ``pd.NA``)."""
    missing = column.isna().to_numpy()
    values = column.tolist()
    if missing.any():
        for position in missing.nonzero()[0].tolist():
            values[position] = None
    return values


def _documents(frame: pd.DataFrame, model_cfg: ModelConfig) -> list[Any] | None:
    """Each row's features document when the batch has a ``features`` column; ``None`` for a
    flat batch (one column per feature), whose documents are written column-wise."""
    return frame[FEATURES].tolist() if FEATURES in frame.columns else None


def _flat(frame: pd.DataFrame, documents: list[Any] | None, model_cfg: ModelConfig) -> pd.DataFrame:
    """The frame the checks read: base columns plus one column per configured feature.

    Flat feature columns keep their dtype (a float column is checked without a Python loop).
    """
    base = {name: frame[name] for name in PREDICTION_COLUMNS if name in frame.columns}
    flat = pd.DataFrame(base, index=frame.index).drop(columns=[FEATURES], errors="ignore")
    flat = flat.reset_index(drop=True)
    for feature in model_cfg.features:
        if documents is None:
            if feature.name in frame.columns:
                flat[feature.name] = frame[feature.name].reset_index(drop=True)
            continue
        name = feature.name
        values = [d.get(name) if type(d) is dict else None for d in documents]
        flat[name] = _feature_column(values, feature.type is FeatureType.NUMERIC)
    if documents is None:
        flat[FEATURES_TYPE] = "object"
    else:
        flat[FEATURES_TYPE] = [_json_type(d) for d in documents]
    return flat


def _feature_column(values: list[Any], numeric: bool) -> pd.Series:
    """A feature's values from the documents; a numeric feature holding only numbers (or
    nothing) as float64, so the checks read it without a Python loop. Anything else (a
    string, a bool, an int beyond float range) stays as given, for the checks to judge."""
    if numeric and set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            return pd.Series([math.nan if v is None else v for v in values], dtype="float64")
        except OverflowError:
            pass
    return pd.Series(values, dtype=object)


def _not_text_or_integer(value: Any) -> bool:
    """Neither text nor an integer (kept as its text: a version number); a bool is no integer."""
    return not isinstance(value, str | int | np.integer) or isinstance(value, bool)


# The largest latency the log's REAL column stores; a larger one would fail the whole COPY.
MAX_LATENCY_MS = 3.4028234e38


def _good_latency(value: Any) -> bool:
    """A number in [0, MAX_LATENCY_MS] (an integer too big for a float is none)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return 0 <= float(value) <= MAX_LATENCY_MS
    except OverflowError:
        return False


def _flags(values: list[Any], bad: Callable[[Any], bool]) -> list[int]:
    """Positions of the non-missing values for which ``bad`` holds."""
    return [i for i, value in enumerate(values) if value is not None and bad(value)]


def _bad_latencies(column: pd.Series | None, values: list[Any]) -> list[int]:
    """Positions of latencies that are not numbers in [0, MAX_LATENCY_MS]; a numeric column
    without a loop."""
    if column is None:
        return []
    if is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype):
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        bad = (numbers < 0) | (numbers > MAX_LATENCY_MS)  # NaN (missing) compares False
        return np.flatnonzero(bad).tolist()
    return _flags(values, lambda v: not _good_latency(v))


def _add_extra_reasons(
    reasons: defaultdict[int, list[str]],
    columns: dict[str, list[Any]],
    ids: list[str | None],
    classes: set[str],
    latency: pd.Series | None,
    confidences: np.ndarray,
) -> None:
    """What the window checks do not cover because a window never lacks it (column-wise)."""
    bad_sum, not_top, bad_confidence = disagreements(
        columns["probabilities"], columns["predicted_label"], confidences, classes
    )
    probabilities_reason = f"probabilities must map classes {sorted(classes)} to numbers in [0, 1]"
    served_reason = f"served_by must be one of {list(ARMS)}"
    given_ids = columns["prediction_id"]
    failing = (
        (
            "prediction_id is not a UUID",
            [i for i, pid in enumerate(ids) if pid is None and given_ids[i] is not None],
        ),
        (
            "model_version is missing",
            [i for i, v in enumerate(columns["model_version"]) if v is None or not str(v).strip()],
        ),
        *(
            (f"{name} must be text or an integer", _flags(columns[name], _not_text_or_integer))
            for name in ("model_version", "unit_id")
        ),
        (
            probabilities_reason,
            _flags(columns["probabilities"], lambda p: not good_probabilities(p, classes)),
        ),
        (
            "latency_ms must be a number from 0 to 3.4e38",
            _bad_latencies(latency, columns["latency_ms"]),
        ),
        (served_reason, _flags(columns["served_by"], lambda v: v not in ARMS)),
        (f"probabilities must sum to 1 (within {ROUNDING:g} per class)", bad_sum),
        ("predicted_label must be a most probable class", not_top),
        (
            f"confidence must be the probability of predicted_label (within {ROUNDING:g})",
            bad_confidence,
        ),
    )
    for reason, positions in failing:
        for position in positions:
            reasons[position].append(reason)


def _column(flat: pd.DataFrame, name: str) -> list[Any]:
    """A column as Python values with ``None`` for missing, or all ``None`` when absent."""
    return _values(flat[name]) if name in flat.columns else [None] * len(flat)


def _has_nul(columns: dict[str, list[Any]]) -> np.ndarray:
    """Rows with a NUL character in a text column (Postgres text cannot hold one)."""
    size = len(columns["prediction_id"])
    found = np.zeros(size, dtype=bool)
    for name in _TEXT_COLUMNS:
        values = columns[name]
        texts = values if _all_text(values) else [str(v) for v in values]
        if "\x00" in "".join(texts):
            found |= np.fromiter(("\x00" in t for t in texts), dtype=bool, count=size)
    return found


def _repeats(ids: list[str | None], reasons: defaultdict[int, list[str]]) -> dict[int, int]:
    """Each later row of a prediction id -> the row of that id that is logged: the first one
    without another reason (the log keeps one row per id, the first it was sent). Ids are
    compared canonically, so a respelt UUID (braces, case, no dashes) is a repeat too."""
    if len(set(ids)) == len(ids):
        return {}
    kept: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for position, pid in enumerate(ids):
        if pid is None:
            continue
        if pid in kept:
            repeats[position] = kept[pid]
        elif position not in reasons:
            kept[pid] = position
    return repeats


def _before_year_one(checked: pd.DataFrame) -> list[int]:
    """Times pandas can hold but Postgres cannot (before 0001-01-01 UTC, e.g. year 1 at +14:00)."""
    times = checked.get(PREDICTED_AT)
    if times is None or not isinstance(times.dtype, pd.DatetimeTZDtype):  # absent: reported
        return []
    return np.flatnonzero((times < _FIRST_STORABLE_TIME).fillna(False).to_numpy()).tolist()


def _times(column: pd.Series) -> list[str]:
    """UTC timestamps as ISO 8601 text for COPY (``NaT`` rows are rejected before use)."""
    values = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    return [text + "Z" for text in np.datetime_as_string(values, unit="us").tolist()]


def _accepted(
    model_cfg: ModelConfig,
    keep: list[bool],
    columns: dict[str, list[Any]],
    checked: pd.DataFrame,
    ids: list[str | None],
    documents: tuple[list[str], list[str | None]],
) -> PredictionColumns:
    """The kept rows in the form COPY reads (every check has passed for them)."""
    features, probabilities = documents
    mask = np.array(keep, dtype=bool)
    times = _times(checked[PREDICTED_AT][mask]) if mask.any() else []
    return PredictionColumns(
        model_name=model_cfg.name,
        prediction_id=list(compress(ids, keep)),  # type: ignore[arg-type]
        model_version=[str(v) for v in compress(columns["model_version"], keep)],
        unit_id=[None if u is None else str(u) or None for u in compress(columns["unit_id"], keep)],
        predicted_at=times,
        features=list(compress(features, keep)),
        predicted_label=[str(v) for v in compress(columns["predicted_label"], keep)],
        confidence=checked[CONFIDENCE].to_numpy()[mask].tolist() if mask.any() else [],
        probabilities=list(compress(probabilities, keep)),
        latency_ms=list(compress(columns["latency_ms"], keep)),
        served_by=list(compress(columns["served_by"], keep)),
    )


def screen_predictions(
    frame: pd.DataFrame,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    rows: Sequence[int] | None = None,
    arms: ArmVersions | None = None,
) -> Screened:
    """Split a batch into rows to log and rows rejected with reasons (never raises on a row).

    ``rows``: the numbers a file gives the frame's rows, for a reason naming another row
    (a repeated prediction id names the row that is logged); ``None``: the index from 0.
    ``arms``: the model's live A/B test, which decides the arm of a row that does not say it.

    Every step works on whole columns; the only loops are comprehensions over one column's
    values. A missing required column rejects every row with that reason, so a malformed
    file still reports all its rows instead of failing somewhere in the middle.
    """
    frame = frame.reset_index(drop=True)
    size = len(frame)
    documents = _documents(frame, model_cfg)
    classes = set(model_cfg.classes)
    if "probabilities" in frame.columns:
        given = frame["confidence"] if "confidence" in frame.columns else [None] * size
        labels = frame["predicted_label"] if "predicted_label" in frame.columns else [None] * size
        frame = frame.assign(
            confidence=[
                confidence_or_probability(c, p, label, classes)
                for c, p, label in zip(given, frame["probabilities"], labels, strict=True)
            ]
        )
    flat = _flat(frame, documents, model_cfg)
    missing = [f"column '{name}' is missing" for name in REQUIRED if name not in flat.columns]
    checked = checked_frame(flat, model_cfg)
    reasons = row_reasons(checked, set(flat.columns), model_cfg, now)
    columns = {name: _column(flat, name) for name in PREDICTION_COLUMNS if name != FEATURES}
    ids = _canonical_ids(columns["prediction_id"])
    latency = flat["latency_ms"] if "latency_ms" in flat.columns else None
    confidences = (
        checked[CONFIDENCE].to_numpy(dtype="float64")
        if CONFIDENCE in checked.columns
        else np.full(size, np.nan)
    )
    _add_extra_reasons(reasons, columns, ids, classes, latency, confidences)
    columns["served_by"] = served_by(columns["served_by"], columns["model_version"], arms)
    for position in _before_year_one(checked):
        reasons[position].append("predicted_at is before year 1 in UTC (Postgres cannot store it)")
    if documents is None:
        names = [name for name in model_cfg.feature_names if name in frame.columns]
        features, unstorable = flat_documents(frame, names)
    else:
        texts = json_texts(documents)
        features = ["" if text is None else text for text in texts]
        unstorable = np.fromiter((text is None for text in texts), dtype=bool, count=size)
    given_probabilities = columns["probabilities"]
    probabilities = [None if p is None else json_text(p) for p in given_probabilities]
    unstorable |= _has_nul(columns)
    for position, (text, given_value) in enumerate(
        zip(probabilities, given_probabilities, strict=True)
    ):
        if text is None and given_value is not None:
            unstorable[position] = True
    for position in np.flatnonzero(unstorable).tolist():
        reasons[position].append(_UNSTORABLE)
    for position, first in _repeats(ids, reasons).items():
        where = f"index {first}" if rows is None else f"row {rows[first]}"
        reasons[position].append(f"prediction_id repeats that of {where}, which is logged")
    given_ids = columns["prediction_id"]
    bad = range(size) if missing else sorted(reasons)
    rejected = [
        Rejected(p, None if given_ids[p] is None else str(given_ids[p]), missing + reasons[p])
        for p in bad
    ]
    keep = [True] * size
    for position in bad:
        keep[position] = False
    accepted = _accepted(model_cfg, keep, columns, checked, ids, (features, probabilities))
    return Screened(accepted, rejected)
