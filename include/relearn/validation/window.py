"""``validate_window``: run a model's suite on a window and judge whether the batch is usable."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from relearn.validation.checks import (
    NOW_PARAMETER,
    make_suite,
    model_checks,
    new_context,
    suite_name,
)
from relearn.validation.frame import gx_frame, missing_columns, utc
from relearn.validation.report import (
    REASONS,
    DataValidationError,
    ValidationReport,
    compact_result,
    row_reasons,
)

if TYPE_CHECKING:
    from datetime import datetime

    import great_expectations as gx

    from relearn.config import ModelConfig

logger = logging.getLogger(__name__)

# Values of a failing expectation kept in the stored result; the full list can be 200k long.
PARTIAL_UNEXPECTED_COUNT = 20


def _run_suite(
    context: Any, suite: gx.ExpectationSuite, data: pd.DataFrame, now: pd.Timestamp
) -> Any:
    batch_definition = (
        context.data_sources.add_pandas("relearn")
        .add_dataframe_asset("window")
        .add_batch_definition_whole_dataframe("whole_window")
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
    return batch.validate(
        suite,
        result_format={
            "result_format": "COMPLETE",
            "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
            "return_unexpected_index_query": False,
        },
        expectation_parameters={NOW_PARAMETER: now},
    )


def validate_window(
    frame: pd.DataFrame,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    raise_on_unusable: bool = True,
) -> ValidationReport:
    """Split ``frame`` into valid and quarantined rows and judge whether the batch is usable.

    Row-level failures only quarantine rows; a missing column, an empty window or a quarantined
    share above ``reinforcement.max_invalid_fraction`` are batch problems. With a missing
    column the remaining checks still run, so the report shows everything that is wrong.

    :raises DataValidationError: the batch is unusable and ``raise_on_unusable`` is set.
    """
    moment = utc(now)
    problems = missing_columns(frame, model_cfg)
    present = set(frame.columns)
    checks = [c for c in model_checks(model_cfg) if set(c.inputs) <= present]
    rows = len(frame)
    if rows == 0:
        problems.append("the window has no rows")

    name = suite_name(model_cfg)
    context = new_context()  # before the suite: GX needs an active context to build one
    suite = make_suite(name, checks)
    gx_result = _run_suite(context, suite, gx_frame(frame, model_cfg), moment)
    bad_positions, reasons, broken = row_reasons(gx_result, rows)
    problems += broken

    keep = np.ones(rows, dtype=bool)
    keep[bad_positions] = False
    # No bad row (the usual case): the frame itself, not a copy of a window of 700k rows.
    valid = frame.iloc[np.flatnonzero(keep)] if len(bad_positions) else frame
    quarantined = frame.iloc[bad_positions].copy()
    # A 1-D object array: pandas would turn equal-length lists into a 2-D array, and an
    # array (unlike a Series) is not aligned on a possibly non-unique index.
    quarantined[REASONS] = pd.Series(reasons, dtype=object).to_numpy()

    limit = model_cfg.reinforcement.max_invalid_fraction
    if rows and len(bad_positions) / rows > limit:
        problems.append(
            f"{len(bad_positions)} of {rows} rows ({len(bad_positions) / rows:.1%}) failed "
            f"validation, above the limit of {limit:.1%} (reinforcement.max_invalid_fraction)"
        )
    report = ValidationReport(
        valid=valid,
        quarantined=quarantined,
        problems=problems,
        result=compact_result(gx_result, name, rows, moment),
    )
    summary = report.summary()
    logger.info(
        "validated window of model %s: %s rows, %s valid, %s quarantined, failed: %s",
        model_cfg.name,
        summary["rows"],
        summary["valid"],
        summary["quarantined"],
        summary["failed_expectations"],
    )
    if problems:
        message = f"window of model '{model_cfg.name}' is unusable: " + "; ".join(problems)
        if raise_on_unusable:
            raise DataValidationError(message, report)
        logger.warning("%s", message)
    return report
