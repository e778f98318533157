"""Incoming prediction rows: normalised into a frame and screened by the model's checks.

A batch arrives as a frame with the columns of ``PREDICTION_COLUMNS`` (``features`` holding
one object per row) or, from a flat file, one column per configured feature instead of
``features``. Screening never raises on a row: each bad row is rejected with every reason,
and the good rows go on, ready for ``relearn.store.predictions.copy_predictions``.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from relearn.collect.checks import row_reasons
from relearn.serving.router import CHALLENGER_ARM, CHAMPION_ARM
from relearn.store.prediction_log import FEATURES_TYPE
from relearn.store.predictions import LoggedPrediction

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig

PREDICTION_COLUMNS = (
    "prediction_id",
    "model_version",
    "unit_id",
    "predicted_at",
    "features",
    "predicted_label",
    "confidence",
    "probabilities",
    "latency_ms",
    "served_by",
)
_TEXT_COLUMNS = ("prediction_id", "model_version", "unit_id", "predicted_label", "served_by")
REQUIRED = ("prediction_id", "model_version", "predicted_at", "predicted_label")
FEATURES = "features"
# The arm a row was served by (``GET /assignment`` tells a client); the champion by default.
ARMS = (CHAMPION_ARM, CHALLENGER_ARM)


@dataclass(frozen=True)
class Rejected:
    """A row that was not logged: its position in the batch (0-based) and every reason."""

    position: int
    prediction_id: str | None
    reasons: list[str]


@dataclass(frozen=True)
class Screened:
    """The rows of a batch that may be logged, and the ones that may not."""

    accepted: list[LoggedPrediction]
    rejected: list[Rejected]


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "string" if isinstance(value, str) else "scalar"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def parse_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from a UUID or its text; ``None`` for anything else (never raises)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _values(column: pd.Series) -> list[Any]:
    """A column as Python values, ``None`` where missing (NaN, NaT, ``pd.NA``)."""
    missing = column.isna().to_numpy()
    values = column.tolist()
    if missing.any():
        for position in missing.nonzero()[0].tolist():
            values[position] = None
    return values


def _documents(frame: pd.DataFrame, model_cfg: ModelConfig) -> list[Any]:
    """Each row's features document: the ``features`` column, or the flat feature columns."""
    if FEATURES in frame.columns:
        return frame[FEATURES].tolist()
    names = [name for name in model_cfg.feature_names if name in frame.columns]
    columns = [_values(frame[name]) for name in names]
    documents = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    return documents or [{} for _ in range(len(frame))]


def _flat(frame: pd.DataFrame, documents: list[Any], model_cfg: ModelConfig) -> pd.DataFrame:
    """The frame the checks read: base columns plus one column per configured feature.

    Flat feature columns keep their dtype (a float column is checked without a Python loop).
    """
    base = {name: frame[name] for name in PREDICTION_COLUMNS if name in frame.columns}
    flat = pd.DataFrame(base, index=frame.index).drop(columns=[FEATURES], errors="ignore")
    flat = flat.reset_index(drop=True)
    nested = FEATURES in frame.columns
    for feature in model_cfg.features:
        if not nested and feature.name in frame.columns:
            flat[feature.name] = frame[feature.name].reset_index(drop=True)
            continue
        values = [d.get(feature.name) if isinstance(d, dict) else None for d in documents]
        flat[feature.name] = pd.Series(values, dtype=object)
    flat[FEATURES_TYPE] = [_json_type(d) for d in documents]
    return flat


def _confidence(value: Any, probabilities: Any) -> Any:
    """The given confidence, else the highest probability (a number or the raw value)."""
    if not _missing(value) or not isinstance(probabilities, dict) or not probabilities:
        return value
    numbers = [p for p in probabilities.values() if isinstance(p, int | float)]
    return max(numbers) if len(numbers) == len(probabilities) else None


def _good_probabilities(value: Any, classes: set[str]) -> bool:
    return (
        isinstance(value, dict)
        and set(value) <= classes
        and all(
            isinstance(p, int | float) and not isinstance(p, bool) and 0.0 <= p <= 1.0
            for p in value.values()
        )
    )


def _add_extra_reasons(
    reasons: list[list[str]],
    columns: dict[str, list[Any]],
    ids: list[uuid.UUID | None],
    classes: set[str],
) -> None:
    """What the window checks do not cover because a window never lacks it (column-wise)."""
    probabilities_reason = f"probabilities must map classes {sorted(classes)} to numbers in [0, 1]"
    served_reason = f"served_by must be one of {list(ARMS)}"
    failing = (
        (
            "prediction_id is not a UUID",
            [
                p is None and r is not None
                for p, r in zip(ids, columns["prediction_id"], strict=True)
            ],
        ),
        (
            "model_version is missing",
            [v is None or str(v).strip() == "" for v in columns["model_version"]],
        ),
        (
            probabilities_reason,
            [
                p is not None and not _good_probabilities(p, classes)
                for p in columns["probabilities"]
            ],
        ),
        (
            "latency_ms must be a number >= 0",
            [
                v is not None
                and not (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0)
                for v in columns["latency_ms"]
            ],
        ),
        (served_reason, [v is not None and v not in ARMS for v in columns["served_by"]]),
    )
    for reason, flags in failing:
        for position in [i for i, flag in enumerate(flags) if flag]:
            reasons[position].append(reason)


def _plain(value: Any) -> Any:
    """JSON for the numpy scalars a Parquet or pandas column may hold; text for the rest."""
    return value.item() if hasattr(value, "item") else str(value)


_ENCODER = json.JSONEncoder(allow_nan=False, default=_plain)


def serialised(value: Any) -> str | None:
    """Strict JSON text of ``value``; ``None`` if Postgres could not store it (NaN, infinity,
    a NUL character)."""
    try:
        text = _ENCODER.encode(value)
    except (ValueError, TypeError):
        return None
    return None if "\\u0000" in text else text


def _column(flat: pd.DataFrame, name: str) -> list[Any]:
    """A column as Python values with ``None`` for missing, or all ``None`` when absent."""
    return _values(flat[name]) if name in flat.columns else [None] * len(flat)


def _has_nul(flat: pd.DataFrame) -> np.ndarray:
    """Rows with a NUL character in a text column (Postgres text cannot hold one)."""
    found = np.zeros(len(flat), dtype=bool)
    for name in _TEXT_COLUMNS:
        if name in flat.columns:
            found |= flat[name].astype(str).str.contains("\x00", regex=False).to_numpy()
    return found


def screen_predictions(frame: pd.DataFrame, model_cfg: ModelConfig, *, now: datetime) -> Screened:
    """Split a batch into rows to log and rows rejected with reasons (never raises on a row).

    A missing required column rejects every row with that reason, so a malformed file
    still reports all its rows instead of failing somewhere in the middle.
    """
    frame = frame.reset_index(drop=True)
    documents = _documents(frame, model_cfg)
    if "probabilities" in frame.columns:
        given = frame["confidence"] if "confidence" in frame.columns else [None] * len(frame)
        frame = frame.assign(
            confidence=[
                _confidence(c, p) for c, p in zip(given, frame["probabilities"], strict=True)
            ]
        )
    flat = _flat(frame, documents, model_cfg)
    missing = [name for name in (*REQUIRED, "confidence") if name not in flat.columns]
    reasons = row_reasons(flat, model_cfg, now)
    classes = set(model_cfg.classes)
    columns = {name: _column(flat, name) for name in PREDICTION_COLUMNS if name != FEATURES}
    times = pd.to_datetime(
        pd.Series(columns["predicted_at"], dtype=object),
        utc=True,
        errors="coerce",
        format="ISO8601",
    )
    columns["predicted_at"] = list(times.dt.to_pydatetime())
    nul = _has_nul(flat).tolist()
    ids = [parse_uuid(value) for value in columns["prediction_id"]]
    _add_extra_reasons(reasons, columns, ids, classes)
    accepted: list[LoggedPrediction] = []
    rejected: list[Rejected] = []
    for position, document in enumerate(documents):
        problems = [f"column '{name}' is missing" for name in missing] + reasons[position]
        probabilities = columns["probabilities"][position]
        features_json = serialised(document)
        if (
            features_json is None
            or (probabilities is not None and serialised(probabilities) is None)
            or nul[position]
        ):
            problems.append("a value holds NaN, infinity or a NUL character")
        if problems:
            pid = columns["prediction_id"][position]
            rejected.append(Rejected(position, None if pid is None else str(pid), problems))
            continue
        unit_id = columns["unit_id"][position]
        accepted.append(
            LoggedPrediction(
                prediction_id=ids[position],
                model_name=model_cfg.name,
                model_version=str(columns["model_version"][position]),
                unit_id=None if unit_id is None else str(unit_id) or None,
                predicted_at=columns["predicted_at"][position],
                features=document,
                predicted_label=str(columns["predicted_label"][position]),
                confidence=float(columns["confidence"][position]),
                probabilities=probabilities,
                latency_ms=columns["latency_ms"][position],
                served_by=columns["served_by"][position] or CHAMPION_ARM,
                features_json=features_json,
            )
        )
    return Screened(accepted, rejected)
