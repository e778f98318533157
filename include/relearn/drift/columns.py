"""What building a profile and comparing a window share: reading feature columns the same
way, checking inputs, running per-feature jobs in parallel, and JSON-safe numbers.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from relearn.config import ModelConfig

OTHER = "__other__"
# Below this many rows the thread pool costs more than it saves.
PARALLEL_MIN_ROWS = 50_000


def run_jobs(jobs: list[Callable[[], Any]], rows: int, workers: int | None) -> list[Any]:
    """Run ``jobs`` in order, on a thread pool when the window is large enough to gain."""
    workers = usable_cpus() if workers is None else workers
    workers = min(workers, len(jobs))
    if workers <= 1 or rows < PARALLEL_MIN_ROWS:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relearn-drift") as pool:
        return list(pool.map(lambda job: job(), jobs))


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def numeric_values(column: pd.Series) -> np.ndarray:
    """A float64 array of the column without copying when it already is one."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def category_counts(
    values: Sequence[str] | np.ndarray | pd.Series, categories: Sequence[str]
) -> tuple[list[int], int]:
    """Counts per configured category then ``__other__``, and the number of missing values.

    Values are compared as strings, so a column read back as numbers still matches
    categories configured as ``"1"``, ``"2"``.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    observed = series.value_counts(dropna=True, sort=False)
    missing = int(len(series) - observed.sum())
    if pd.api.types.infer_dtype(observed.index, skipna=True) not in ("string", "empty"):
        observed = observed.groupby(observed.index.map(str)).sum()
    known = observed.reindex(list(categories), fill_value=0)
    counts = [int(n) for n in known.to_numpy()]
    return [*counts, int(observed.sum()) - sum(counts)], missing


def check_columns(frame: pd.DataFrame, model_cfg: ModelConfig) -> None:
    absent = [name for name in model_cfg.feature_names if name not in frame.columns]
    if absent:
        raise ValueError(f"missing feature column(s) {absent} for model {model_cfg.name}")


def check_length(values: Sequence[Any] | None, rows: int, what: str) -> None:
    if values is not None and len(values) != rows:
        raise ValueError(f"{what} has {len(values)} entries for {rows} rows")


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return finite_or_none(value)
    return value
