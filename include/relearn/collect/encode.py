"""Strict JSON text of incoming documents, column by column, for the log's JSONB columns.

Postgres cannot store NaN, infinity or a NUL character in JSONB, and a reader could not tell
NaN from a real null, so a document holding one is refused (``None``), never altered.

msgspec writes a document about ten times faster than ``json``, but writes NaN and infinity
as ``null``: a text holding ``null`` (rare: a missing value of a nullable feature) is checked
again by the strict standard encoder. Flat files (one column per feature) never build a
document object per row: each feature column is written as JSON text at once and the texts
are joined.
"""

from __future__ import annotations

import json
import re
from itertools import repeat
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import pandas as pd


def _plain(value: Any) -> Any:
    """JSON for the numpy scalars a Parquet or pandas column may hold; text for the rest."""
    return value.item() if hasattr(value, "item") else str(value)


_FAST = msgspec.json.Encoder(enc_hook=_plain)
_STRICT = json.JSONEncoder(allow_nan=False, default=_plain)
_NUL = "\\u0000"
# What JSON must escape inside a string: quote, backslash, control characters.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _strict(value: Any) -> str | None:
    try:
        text = _STRICT.encode(value)
    except (ValueError, TypeError):
        return None
    return None if _NUL in text else text


def json_text(value: Any) -> str | None:
    """Strict JSON text of ``value``; ``None`` if Postgres could not store it."""
    try:
        text = _FAST.encode(value).decode()
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return _strict(value)
    if "null" in text:
        return _strict(value)
    return None if _NUL in text else text


def json_texts(values: Iterable[Any]) -> list[str | None]:
    return [json_text(value) for value in values]


def _plain_strings(values: list[Any]) -> list[str] | None:
    """JSON texts of a column of strings and nulls that need no escape (the usual categorical
    column), without encoding each value; ``None`` when the column is anything else."""
    if not set(map(type, values)) <= {str, type(None)}:
        return None
    strings = [value for value in values if value is not None]
    if _NEEDS_ESCAPE.search("".join(strings)):
        return None
    return ["null" if value is None else f'"{value}"' for value in values]


def _column_texts(column: pd.Series) -> tuple[list[str], np.ndarray]:
    """One feature column as JSON texts (missing -> ``null``) and where a value is unstorable."""
    missing = column.isna().to_numpy()
    if is_bool_dtype(column.dtype) and not missing.any():
        return np.where(column.to_numpy(dtype=bool), "true", "false").tolist(), missing
    if is_integer_dtype(column.dtype) and not missing.any():
        return column.to_numpy().astype(str).tolist(), missing
    if is_float_dtype(column.dtype):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        # Arrow writes the shortest text that reads back as the same float (as repr does,
        # "3" for 3.0), twice as fast as repr per value; NaN is missing -> null.
        texts = pc.cast(pa.array(values, from_pandas=True), pa.string())
        return pc.fill_null(texts, "null").to_pylist(), np.isinf(values)
    values = column.to_numpy(dtype=object, copy=True)
    values[missing] = None
    plain = _plain_strings(values.tolist())
    if plain is not None:
        return plain, np.zeros(len(plain), dtype=bool)
    texts = json_texts(values.tolist())
    unstorable = np.fromiter((text is None for text in texts), dtype=bool, count=len(texts))
    return ["null" if text is None else text for text in texts], unstorable


def flat_documents(frame: pd.DataFrame, names: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The ``features`` JSON text of each row from one column per feature (``names``), and
    the rows holding a value Postgres cannot store (infinity, NUL)."""
    unstorable = np.zeros(len(frame), dtype=bool)
    parts: list[Iterable[str]] = []
    for position, name in enumerate(names):
        texts, bad = _column_texts(frame[name])
        unstorable |= bad
        key = json.dumps(name)
        parts += [repeat(("{" if position == 0 else ",") + key + ":"), texts]
    if not parts:
        return ["{}"] * len(frame), unstorable
    parts.append(repeat("}"))
    # The keys repeat without end; the value columns set the length.
    return list(map("".join, zip(*parts, strict=False))), unstorable
