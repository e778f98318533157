"""The row-level checks of ``relearn.validation`` evaluated directly on a frame, per row.

A window validated for retraining runs these checks through Great Expectations; a request of
10,000 rows cannot wait for a GX context, so this module reads the same ``Check`` list
(``relearn.validation.checks.model_checks``) and computes each expectation's unexpected rows
with pandas, on the same prepared frame (``relearn.validation.frame.gx_frame``). The reasons
are the checks' own, so a producer sees exactly the words the quarantine would use.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from relearn.validation.checks import NOW_PARAMETER, model_checks
from relearn.validation.frame import gx_frame, utc

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.validation.checks import Check


def _parameter(value: Any, now: pd.Timestamp) -> Any:
    if isinstance(value, dict) and value.get("$PARAMETER") == NOW_PARAMETER:
        return now
    return value


def _not_null(data: pd.DataFrame, kwargs: dict[str, Any], now: pd.Timestamp) -> np.ndarray:
    return data[kwargs["column"]].isna().to_numpy()


def _in_set(data: pd.DataFrame, kwargs: dict[str, Any], now: pd.Timestamp) -> np.ndarray:
    column = data[kwargs["column"]]
    allowed = set(kwargs["value_set"])
    try:
        inside = column.isin(allowed).to_numpy()
    except TypeError:  # an unhashable value (a list): test each value on its own
        inside = np.fromiter(
            (_member(value, allowed) for value in column), dtype=bool, count=len(column)
        )
    return ~inside & column.notna().to_numpy()


def _member(value: Any, allowed: set[Any]) -> bool:
    try:
        return value in allowed
    except TypeError:
        return False


def _between(data: pd.DataFrame, kwargs: dict[str, Any], now: pd.Timestamp) -> np.ndarray:
    column = data[kwargs["column"]]
    present = column.notna()
    bad = pd.Series(False, index=column.index)
    low, high = (_parameter(kwargs.get(key), now) for key in ("min_value", "max_value"))
    if low is not None:
        bad |= present & (column < low)
    if high is not None:
        bad |= present & (column > high)
    return bad.to_numpy()


def _pair_greater(data: pd.DataFrame, kwargs: dict[str, Any], now: pd.Timestamp) -> np.ndarray:
    first, second = data[kwargs["column_A"]], data[kwargs["column_B"]]
    both = first.notna() & second.notna()
    smaller = first <= second if not kwargs.get("or_equal") else first < second
    return (both & smaller).to_numpy()


# By class name: importing great_expectations here, before ``relearn.validation`` quietens
# its loggers, would print GX's import chatter in every CLI run. A check of a new type fails
# loudly here (KeyError) until it has an evaluator.
_EVALUATORS: dict[str, Callable[[pd.DataFrame, dict[str, Any], pd.Timestamp], np.ndarray]] = {
    "ExpectColumnValuesToNotBeNull": _not_null,
    "ExpectColumnValuesToBeInSet": _in_set,
    "ExpectColumnValuesToBeBetween": _between,
    "ExpectColumnPairValuesAToBeGreaterThanB": _pair_greater,
}


# Judged over the batch, not per row: ``relearn.collect.rows`` logs the first row of a
# prediction id and rejects a later one naming it (a window from the log never repeats one).
_BATCH_CHECKS = frozenset({"ExpectColumnValuesToBeUnique"})


def applicable_checks(model_cfg: ModelConfig, columns: set[str]) -> list[Check]:
    """The model's per-row checks whose inputs are all present (an absent outcome is not
    checked)."""
    return [
        check
        for check in model_checks(model_cfg)
        if set(check.inputs) <= columns and check.expectation.__name__ not in _BATCH_CHECKS
    ]


def checked_frame(frame: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """The prepared frame the checks read (``gx_frame``): confidence as float, times UTC."""
    return gx_frame(frame, model_cfg)


def row_reasons(
    checked: pd.DataFrame, columns: set[str], model_cfg: ModelConfig, now: datetime
) -> defaultdict[int, list[str]]:
    """By position in ``checked`` (from ``checked_frame`` of a frame with ``columns``), the
    reasons of every failed check in the checks' order; good rows have no entry (a batch of
    10,000 good rows allocates nothing per row)."""
    moment = utc(now)
    reasons: defaultdict[int, list[str]] = defaultdict(list)
    for check in applicable_checks(model_cfg, columns):
        evaluate = _EVALUATORS[check.expectation.__name__]
        for position in np.flatnonzero(evaluate(checked, check.kwargs, moment)).tolist():
            reasons[position].append(check.reason)
    return reasons
