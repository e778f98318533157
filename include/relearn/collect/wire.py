"""A batch of predictions as JSON bytes, decoded straight into columns.

The collection API's hot path: msgspec checks the body's shape while it parses (a few times
faster than building pydantic objects), and the rows become one list per column for
``relearn.collect.rows.screen_predictions``, never an object per row. The documented schema
(``relearn_airflow.api.schemas.PredictionBatch``) says what a good row holds; a body of the wrong
shape (not an object with a ``rows`` list of row objects, an unknown field, 0 or more than
``MAX_BATCH`` rows) is refused as a whole with the location of the first problem
(``rows.3``); every value is judged per row, even one of the wrong JSON type, so good rows
are kept.

JSON is read strictly: ``NaN``, ``Infinity`` or a number beyond a float's range is a
malformed body, not a value (Postgres could not store it anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import pandas as pd

from relearn.collect import MAX_BATCH

if TYPE_CHECKING:
    from datetime import datetime

_PATH = re.compile(r"`\$(?P<path>[^`]*)`")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


class _Prediction(msgspec.Struct, forbid_unknown_fields=True):
    # Every value is judged per row by ``relearn.collect.rows`` (a label of the wrong type, a
    # missing version or an unknown arm rejects its row, not the batch); only the shape of
    # the body (an object with a list of row objects with known fields) is checked here.
    prediction_id: Any = None
    features: Any = None
    # Integer labels, versions and unit ids are common in other languages' JSON (classes
    # [0, 1], MLflow's version numbers, user ids); they are stored as their text.
    predicted_label: Any = None
    model_version: Any = None
    confidence: Any = None
    probabilities: Any = None
    unit_id: Any = None
    latency_ms: Any = None
    # ISO 8601 text, parsed with the batch (a malformed time rejects its row, not the batch).
    predicted_at: Any = None
    # ``None``: the arm serving ``model_version`` (``relearn.collect.rows``).
    served_by: Any = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    rows: Annotated[list[_Prediction], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_DECODER = msgspec.json.Decoder(_Batch)
_FIELDS = _Prediction.__struct_fields__
_TEXT_OR_INTEGER = ("predicted_label", "model_version", "unit_id")


@dataclass(frozen=True)
class WireError(ValueError):
    """The body is not a batch of predictions: ``location`` names the first bad field."""

    location: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        return f"{'.'.join(map(str, self.location))}: {self.message}"


def _location(message: str) -> tuple[str | int, ...]:
    """``$.rows[3].confidence`` in msgspec's message as ``("rows", 3, "confidence")``."""
    found = _PATH.search(message)
    if found is None:
        return ()
    return tuple(name or int(index) for name, index in _STEP.findall(found.group("path")))


def decode_predictions(body: bytes, *, now: datetime) -> pd.DataFrame:
    """The batch as a frame with one column per field (``predicted_at`` defaults to ``now``).

    :raises WireError: malformed JSON, a body or row that is not an object, an unknown field,
        or a batch of 0 or more than ``MAX_BATCH`` rows.
    """
    try:
        batch = _DECODER.decode(body)
    except msgspec.ValidationError as error:
        text = str(error)
        raise WireError(_location(text), text.split(" - at ")[0]) from None
    except msgspec.DecodeError as error:
        raise WireError((), f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise WireError((), "the body is nested too deeply to be a batch of predictions") from None
    rows = batch.rows
    columns = {name: [getattr(row, name) for row in rows] for name in _FIELDS}
    for name in _TEXT_OR_INTEGER:
        columns[name] = [str(value) if type(value) is int else value for value in columns[name]]
    default = now.isoformat()
    # A time that is not text (a number, an object) is no time: NaT, rejected by the checks.
    columns["predicted_at"] = [
        default if at is None else at if type(at) is str else pd.NaT
        for at in columns["predicted_at"]
    ]
    return pd.DataFrame(columns, dtype=object)
