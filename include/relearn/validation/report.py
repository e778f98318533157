"""The outcome of validating a window: valid and quarantined rows, problems, the GX result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from great_expectations.util import convert_to_json_serializable

if TYPE_CHECKING:
    import pandas as pd

REASONS = "reasons"


class DataValidationError(ValueError):
    """The batch is unusable; ``.report`` is the ValidationReport."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable despite the extra argument (tracebacks may cross process boundaries).
        return type(self), (str(self), self.report)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of ``validate_window``: which rows may be trained on, and why the others not.

    ``valid`` keeps the input's index and columns; ``quarantined`` adds a ``reasons`` column
    (a list of human-readable strings per row); ``result`` is a JSON-serialisable summary of
    the GX validation result for storing as an artifact.
    """

    valid: pd.DataFrame
    quarantined: pd.DataFrame
    problems: list[str]
    result: dict[str, Any] = field(repr=False)

    @property
    def usable(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """Small JSON-friendly counts for logs, run parameters and task return values."""
        failed = {
            item["description"]: item["unexpected_count"]
            for item in self.result.get("results", [])
            if not item["success"]
        }
        return {
            "rows": len(self.valid) + len(self.quarantined),
            "valid": len(self.valid),
            "quarantined": len(self.quarantined),
            "usable": self.usable,
            "problems": list(self.problems),
            "failed_expectations": failed,
        }


@dataclass
class CheckResult:
    """One expectation's result over every chunk of a window, merged as one GX run gives it.

    GX reports a map expectation's counts, its first ``partial`` unexpected values in row
    order and (with ``COMPLETE``) every unexpected row; summing chunks whose rows partition
    the window, and keeping the earliest values, is the whole window's result.
    """

    type: str
    description: str
    kwargs: dict[str, Any]
    partial: int
    success: bool = True
    element_count: int | None = 0
    missing_count: int | None = 0
    unexpected_count: int = 0
    exception: str | None = None
    raised: bool = False
    positions: list[np.ndarray] = field(default_factory=list, repr=False)
    values: list[tuple[int, Any]] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, item: Any, partial: int) -> CheckResult:
        config = item.expectation_config
        kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
        return cls(config.type, config.description, kwargs, partial)

    def add(self, item: Any, rows: np.ndarray) -> None:
        """Merge one chunk's result; ``rows`` maps the chunk's positions to the window's."""
        exception = item.exception_info or {}
        self.success = self.success and bool(item.success)
        if exception.get("raised_exception"):
            if not self.raised:
                self.raised, self.exception = True, exception.get("exception_message")
            return
        values = item.result or {}
        self.element_count = _plus(self.element_count, values.get("element_count"))
        self.missing_count = _plus(self.missing_count, values.get("missing_count"))
        self.unexpected_count += values.get("unexpected_count", 0)
        local = np.asarray(values.get("unexpected_index_list") or [], dtype=np.int64)
        self.positions.append(rows[local])
        # The chunk's rows are in window order: its first values are the only candidates.
        unexpected = values.get("unexpected_list") or []
        firsts = rows[local[: self.partial]].tolist()
        self.values += zip(firsts, unexpected[: self.partial], strict=True)

    @property
    def unexpected_positions(self) -> np.ndarray:
        return np.concatenate(self.positions) if self.positions else np.empty(0, np.int64)

    def as_dict(self) -> dict[str, Any]:
        """The stored form of one expectation's result (GX's own fields and formulas)."""
        if self.raised:
            counts: dict[str, Any] = {"element_count": None, "missing_count": None}
            counts.update(unexpected_count=0, unexpected_percent=None, partial_unexpected_list=[])
        else:
            earliest = sorted(self.values, key=lambda pair: pair[0])[: self.partial]
            counts = {
                "element_count": self.element_count,
                "missing_count": self.missing_count,
                "unexpected_count": self.unexpected_count,
                "unexpected_percent": self._unexpected_percent(),
                "partial_unexpected_list": [value for _, value in earliest],
            }
        return {
            "type": self.type,
            "description": self.description,
            "kwargs": self.kwargs,
            "success": self.success,
            **counts,
            "exception": self.exception,
        }

    def _unexpected_percent(self) -> float | None:
        """As GX's ``_format_map_output``: unexpected over the non-missing rows."""
        total = self.element_count or 0
        if total == 0:
            return None
        if self.missing_count is None:
            return self.unexpected_count / total * 100
        nonnull = total - self.missing_count
        return self.unexpected_count / nonnull * 100 if nonnull > 0 else None


def _plus(total: int | None, value: int | None) -> int | None:
    return None if total is None or value is None else total + value


def compact_result(
    check_results: list[CheckResult],
    suite_name: str,
    rows: int,
    now: pd.Timestamp,
    version: str | None,
) -> dict:
    """The GX result without the per-row lists (which can be as long as the window)."""
    successful = sum(check.success for check in check_results)
    evaluated = len(check_results)
    compact = {
        "suite_name": suite_name,
        "success": successful == evaluated,
        "evaluated_at": now.isoformat(),
        "rows": rows,
        # GX's statistics (``calc_validation_statistics``), over the merged results.
        "statistics": {
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "unsuccessful_expectations": evaluated - successful,
            "success_percent": successful / evaluated * 100 if evaluated else None,
        },
        "great_expectations_version": version,
        "results": [check.as_dict() for check in check_results],
    }
    return convert_to_json_serializable(compact)


def row_reasons(
    check_results: list[CheckResult], rows: int
) -> tuple[Any, list[list[str]], list[str]]:
    """Positions of rows failing >= 1 expectation, each such row's reasons in suite order, and
    the checks that could not run at all (a batch problem: they must not pass rows silently)."""
    failures: list[tuple[str, Any]] = []
    broken: list[str] = []
    for check in check_results:
        if check.raised:
            broken.append(f"check '{check.description}' could not run: {check.exception}")
            continue
        if check.success:
            continue
        failures.append((check.description, check.unexpected_positions))
    bad = np.zeros(rows, dtype=bool)
    for _, positions in failures:
        bad[positions] = True
    bad_positions = np.flatnonzero(bad)
    reasons: list[list[str]] = [[] for _ in bad_positions]
    for reason, positions in failures:
        for slot in np.searchsorted(bad_positions, positions).tolist():
            reasons[slot].append(reason)
    return bad_positions, reasons, broken
