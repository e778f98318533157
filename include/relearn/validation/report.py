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


def compact_result(gx_result: Any, suite_name: str, rows: int, now: pd.Timestamp) -> dict:
    """The GX result without the per-row lists (which can be as long as the window)."""
    results = []
    for item in gx_result.results:
        config = item.expectation_config
        values = item.result or {}
        kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
        exception = item.exception_info or {}
        results.append(
            {
                "type": config.type,
                "description": config.description,
                "kwargs": kwargs,
                "success": bool(item.success),
                "element_count": values.get("element_count"),
                "missing_count": values.get("missing_count"),
                "unexpected_count": values.get("unexpected_count", 0),
                "unexpected_percent": values.get("unexpected_percent"),
                "partial_unexpected_list": values.get("partial_unexpected_list", []),
                "exception": exception.get("exception_message")
                if exception.get("raised_exception")
                else None,
            }
        )
    compact = {
        "suite_name": suite_name,
        "success": bool(gx_result.success),
        "evaluated_at": now.isoformat(),
        "rows": rows,
        "statistics": dict(gx_result.statistics),
        "great_expectations_version": gx_result.meta.get("great_expectations_version"),
        "results": results,
    }
    return convert_to_json_serializable(compact)


def row_reasons(gx_result: Any, rows: int) -> tuple[Any, list[list[str]], list[str]]:
    """Positions of rows failing >= 1 expectation, each such row's reasons in suite order, and
    the checks that could not run at all (a batch problem: they must not pass rows silently)."""
    failures: list[tuple[str, Any]] = []
    broken: list[str] = []
    for item in gx_result.results:
        exception = item.exception_info or {}
        if exception.get("raised_exception"):
            broken.append(
                f"check '{item.expectation_config.description}' could not run: "
                f"{exception.get('exception_message')}"
            )
            continue
        if item.success:
            continue
        positions = np.asarray(item.result.get("unexpected_index_list") or [], dtype=np.int64)
        failures.append((item.expectation_config.description, positions))
    bad = np.zeros(rows, dtype=bool)
    for _, positions in failures:
        bad[positions] = True
    bad_positions = np.flatnonzero(bad)
    reasons: list[list[str]] = [[] for _ in bad_positions]
    for reason, positions in failures:
        for slot in np.searchsorted(bad_positions, positions).tolist():
            reasons[slot].append(reason)
    return bad_positions, reasons, broken
