"""``validate_window``: run a model's suite on a window and judge whether the batch is usable."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relearn.data.memory import release_unused
from relearn.validation.checks import (
    NOW_PARAMETER,
    PREDICTION_ID,
    make_suite,
    model_checks,
    new_context,
    suite_name,
)
from relearn.validation.frame import gx_frame, missing_columns, utc
from relearn.validation.report import (
    REASONS,
    CheckResult,
    DataValidationError,
    ValidationReport,
    compact_result,
    row_reasons,
)

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.validation.checks import Check

logger = logging.getLogger(__name__)

# Values of a failing expectation kept in the stored result; the full list can be 200k long.
PARTIAL_UNEXPECTED_COUNT = 20
# Rows per GX run. GX's working memory grows with the frame it validates (about 450 MB for a
# 700k-row window, 150 MB for 100k rows, 110 MB for 50k), so a window is validated in chunks of
# about this many rows (a row's chunk follows a hash of its id, so sizes vary a little) and the
# results merged: the same result, quarantine and problems as one run over the whole window.
# Halving 100k cost 8 % more time; 25k cost 60 %.
CHUNK_ROWS = 50_000
_HASH_SLICE = 20_000


def chunks(frame: pd.DataFrame, chunk_rows: int) -> list[np.ndarray]:
    """Row positions of each GX run, ascending, every position in exactly one chunk.

    All rows of one prediction id fall in the same chunk, so the uniqueness check sees every
    duplicate of an id.
    """
    count = max(1, math.ceil(len(frame) / chunk_rows))
    if count == 1:
        return [np.arange(len(frame))]
    if PREDICTION_ID in frame.columns:
        chunk_of = _id_keys(frame[PREDICTION_ID]) % count
    else:
        chunk_of = np.arange(len(frame)) % count
    return [np.flatnonzero(chunk_of == chunk) for chunk in range(count)]


def _id_keys(ids: pd.Series) -> np.ndarray:
    """An integer per row, equal for equal ids (as the uniqueness check compares them).

    The store's ids are a text column: hashed a slice at a time, since ``factorize`` of 700k
    distinct strings holds 150 MB. Any other column: ``factorize``, pandas' own equality
    (``1 == 1.0``), which a hash of each value's text would not give.
    """
    if not isinstance(ids.dtype, pd.StringDtype):
        return pd.factorize(ids)[0]
    return np.concatenate(
        [
            pd.util.hash_array(ids.iloc[start : start + _HASH_SLICE].to_numpy(dtype=object))
            for start in range(0, len(ids), _HASH_SLICE)
        ]
    )


def _run_suite(
    model_cfg: ModelConfig,
    frame: pd.DataFrame,
    checks: list[Check],
    now: pd.Timestamp,
    chunk_rows: int,
) -> tuple[list[CheckResult], str | None]:
    """Each expectation's result merged over the chunks, and the GX version that ran them."""
    context = new_context()  # before the suite: GX needs an active context to build one
    suite = make_suite(suite_name(model_cfg), checks)
    batch_definition = (
        context.data_sources.add_pandas("relearn")
        .add_dataframe_asset("window")
        .add_batch_definition_whole_dataframe("whole_window")
    )
    check_results: list[CheckResult] = []
    version = None
    for rows in chunks(frame, chunk_rows):
        data = gx_frame(frame.iloc[rows], model_cfg)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
        result = batch.validate(
            suite,
            result_format={
                "result_format": "COMPLETE",
                "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
                "return_unexpected_index_query": False,
            },
            expectation_parameters={NOW_PARAMETER: now},
        )
        del batch, data
        release_unused()  # this chunk's working memory, before the next chunk's
        if not check_results:
            check_results = [
                CheckResult.of(item, PARTIAL_UNEXPECTED_COUNT) for item in result.results
            ]
            version = result.meta.get("great_expectations_version")
        for check, item in zip(check_results, result.results, strict=True):
            check.add(item, rows)
    return check_results, version


def validate_window(
    frame: pd.DataFrame,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    raise_on_unusable: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> ValidationReport:
    """Split ``frame`` into valid and quarantined rows and judge whether the batch is usable.

    Row-level failures only quarantine rows; a missing column, an empty window or a quarantined
    share above ``reinforcement.max_invalid_fraction`` are batch problems. GX runs on
    about ``chunk_rows`` rows at a time (``chunks``), which bounds its memory. With a missing
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

    check_results, version = _run_suite(model_cfg, frame, checks, moment, chunk_rows)
    bad_positions, reasons, broken = row_reasons(check_results, rows)
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
        result=compact_result(check_results, suite_name(model_cfg), rows, moment, version),
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
