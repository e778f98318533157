"""Great Expectations validation of a window of logged predictions before it is retrained on.

A window comes from producers Relearn does not control, so every row is checked against the
model's configuration before it can reach training: rows failing any row-level expectation are
quarantined (with the reasons) instead of failing the run, and only batch-level problems
(missing columns, no rows, too many bad rows) make the whole window unusable.

The checks are a GX expectation suite (``build_suite``) so the validation result is a real GX
result the user can open. GX cannot express "this object column holds finite numbers", so the
suite runs on a prepared copy of the window (``_gx_frame``) with a few derived columns named
``<feature>:number`` and ``<feature>:is_number``; the colon cannot occur in a configured name.

``great_expectations`` costs seconds to import, so it is imported inside the functions only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relearn.config import FeatureType
from relearn.data.window import BASE_COLUMNS

if TYPE_CHECKING:
    from datetime import datetime
    from types import ModuleType

    import great_expectations as gx
    import pandas as pd

    from relearn.config import Feature, ModelConfig

logger = logging.getLogger(__name__)

(
    PREDICTION_ID,
    MODEL_VERSION,
    PREDICTED_AT,
    OUTCOME_AT,
    PREDICTED_LABEL,
    ACTUAL_LABEL,
    CONFIDENCE,
) = BASE_COLUMNS
REQUIRED_COLUMNS = tuple(BASE_COLUMNS)
REASONS = "reasons"
# Suite parameter holding the validation run's time, so one suite serves every run.
NOW_PARAMETER = "now"
# Values of a failing expectation kept in the stored result; the full list can be 200k long.
PARTIAL_UNEXPECTED_COUNT = 20


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


@dataclass(frozen=True)
class _Check:
    """One row-level expectation with the reason a failing row gets and the inputs it reads."""

    reason: str
    expectation: str
    kwargs: dict[str, Any]
    inputs: tuple[str, ...]


def _check(reason: str, expectation: str, source: str | None = None, **kwargs: Any) -> _Check:
    """``source`` names the input column when the expectation reads a derived column."""
    names = ("column", "column_A", "column_B")
    inputs = (source,) if source else tuple(kwargs[name] for name in names if name in kwargs)
    return _Check(reason, expectation, kwargs, inputs)


def _checks(model_cfg: ModelConfig) -> list[_Check]:
    """The row-level checks, in the order their reasons are listed."""
    classes = list(model_cfg.classes)
    checks = [
        _check(f"{PREDICTION_ID} is null", "ExpectColumnValuesToNotBeNull", column=PREDICTION_ID),
        _check(
            f"{PREDICTION_ID} is duplicated", "ExpectColumnValuesToBeUnique", column=PREDICTION_ID
        ),
        _check(
            f"{CONFIDENCE} is null or not a number",
            "ExpectColumnValuesToNotBeNull",
            column=CONFIDENCE,
        ),
        _check(
            f"{CONFIDENCE} outside [0, 1]",
            "ExpectColumnValuesToBeBetween",
            column=CONFIDENCE,
            min_value=0.0,
            max_value=1.0,
        ),
    ]
    for column in (PREDICTED_LABEL, ACTUAL_LABEL):
        checks.append(_check(f"{column} is null", "ExpectColumnValuesToNotBeNull", column=column))
        checks.append(
            _check(
                f"{column} not in classes {classes}",
                "ExpectColumnValuesToBeInSet",
                column=column,
                value_set=classes,
            )
        )
    checks.append(
        _check(
            f"{PREDICTED_AT} is null or not a timestamp",
            "ExpectColumnValuesToNotBeNull",
            column=PREDICTED_AT,
        )
    )
    for column in (PREDICTED_AT, OUTCOME_AT):
        checks.append(
            _check(
                f"{column} is in the future",
                "ExpectColumnValuesToBeBetween",
                column=column,
                max_value={"$PARAMETER": NOW_PARAMETER},
            )
        )
    checks.append(
        _check(
            f"{OUTCOME_AT} is before {PREDICTED_AT}",
            "ExpectColumnPairValuesAToBeGreaterThanB",
            column_A=OUTCOME_AT,
            column_B=PREDICTED_AT,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
    )
    for feature in model_cfg.features:
        checks += _feature_checks(feature)
    return checks


def _feature_checks(feature: Feature) -> list[_Check]:
    name = feature.name
    checks: list[_Check] = []
    if not feature.nullable:
        checks.append(
            _check(f"feature '{name}' is null", "ExpectColumnValuesToNotBeNull", column=name)
        )
    if feature.type is FeatureType.CATEGORICAL:
        categories = list(feature.categories)
        checks.append(
            _check(
                f"feature '{name}' not in categories {categories}",
                "ExpectColumnValuesToBeInSet",
                column=name,
                value_set=categories,
            )
        )
        return checks
    checks.append(
        _check(
            f"feature '{name}' is not numeric",
            "ExpectColumnValuesToBeInSet",
            source=name,
            column=f"{name}:is_number",
            value_set=[True],
        )
    )
    if feature.min is not None or feature.max is not None:
        low = "-inf" if feature.min is None else f"{feature.min:g}"
        high = "inf" if feature.max is None else f"{feature.max:g}"
        checks.append(
            _check(
                f"feature '{name}' outside [{low}, {high}]",
                "ExpectColumnValuesToBeBetween",
                source=name,
                column=f"{name}:number",
                min_value=feature.min,
                max_value=feature.max,
            )
        )
    return checks


def _import_gx() -> ModuleType:
    """Import GX quietly: no usage statistics, no INFO chatter in every task log."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations

    # GX pins this module's logger to INFO, announcing a temp directory for every context.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return great_expectations


def _context(gx_module: ModuleType) -> Any:
    """A fresh in-memory context; GX needs an active one even to build an ExpectationSuite."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx_module.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _suite(gx_module: ModuleType, name: str, checks: list[_Check]) -> gx.ExpectationSuite:
    suite = gx_module.ExpectationSuite(name=name)
    for check in checks:
        expectation_class = getattr(gx_module.expectations, check.expectation)
        suite.add_expectation(expectation_class(**check.kwargs, description=check.reason))
    return suite


def _suite_name(model_cfg: ModelConfig) -> str:
    return f"relearn_{model_cfg.name}_window"


def build_suite(model_cfg: ModelConfig) -> gx.ExpectationSuite:
    """The row-level expectations for ``model_cfg``'s windows (run on ``_gx_frame`` output).

    Each expectation's ``description`` is the reason a failing row is quarantined with. The
    not-in-the-future checks compare against the suite parameter ``now`` (pass it as
    ``expectation_parameters={"now": ...}`` when validating).
    """
    gx_module = _import_gx()
    _context(gx_module)
    return _suite(gx_module, _suite_name(model_cfg), _checks(model_cfg))


def _utc(moment: datetime) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _timestamps(column: pd.Series) -> pd.Series:
    import pandas as pd

    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC")
    return pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")


def _gx_frame(frame: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """The columns the suite reads, on a 0..n-1 index so GX's unexpected indices are positions.

    Confidence becomes float (unparseable -> NaN, caught as null), timestamps UTC, categorical
    values ``str`` as ``feature_frame`` maps them; numeric features keep their raw column (for
    the null check) plus ``:number`` (the finite value or NaN) and ``:is_number`` (True/False,
    None where the raw value is null) so that "abc" fails once, as not numeric.
    """
    import numpy as np
    import pandas as pd

    index = pd.RangeIndex(len(frame))
    columns: dict[str, Any] = {}
    for name in REQUIRED_COLUMNS:
        if name not in frame.columns:
            continue
        column = frame[name].reset_index(drop=True)
        if name == CONFIDENCE:
            column = pd.Series(_floats(column), index=index)
        elif name in (PREDICTED_AT, OUTCOME_AT):
            column = _timestamps(column)
        columns[name] = column
    for feature in model_cfg.features:
        if feature.name not in frame.columns:
            continue
        raw = frame[feature.name].reset_index(drop=True)
        if feature.type is FeatureType.CATEGORICAL:
            columns[feature.name] = raw.map(str, na_action="ignore").astype(object)
            continue
        values = _floats(raw)
        finite = np.isfinite(values)
        columns[feature.name] = raw
        columns[f"{feature.name}:number"] = pd.Series(np.where(finite, values, np.nan), index=index)
        is_number = np.where(raw.isna().to_numpy(), None, finite).astype(object)
        columns[f"{feature.name}:is_number"] = pd.Series(is_number, index=index, dtype=object)
    return pd.DataFrame(columns, index=index)


def _floats(column: pd.Series) -> Any:
    import numpy as np
    import pandas as pd

    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _missing_columns(frame: pd.DataFrame, model_cfg: ModelConfig) -> list[str]:
    problems = [
        f"column '{name}' is missing from the window"
        for name in REQUIRED_COLUMNS
        if name not in frame.columns
    ]
    problems += [
        f"feature column '{name}' is missing from the window"
        for name in model_cfg.feature_names
        if name not in frame.columns
    ]
    return problems


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


def _compact_result(gx_result: Any, suite_name: str, rows: int, now: pd.Timestamp) -> dict:
    """The GX result without the per-row lists (which can be as long as the window)."""
    from great_expectations.util import convert_to_json_serializable

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


def _row_reasons(gx_result: Any, rows: int) -> tuple[Any, list[list[str]], list[str]]:
    """Positions of rows failing >= 1 expectation, each such row's reasons in suite order, and
    the checks that could not run at all (a batch problem: they must not pass rows silently)."""
    import numpy as np

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
    import numpy as np
    import pandas as pd

    moment = _utc(now)
    gx_module = _import_gx()
    problems = _missing_columns(frame, model_cfg)
    present = set(frame.columns)
    checks = [c for c in _checks(model_cfg) if set(c.inputs) <= present]
    rows = len(frame)
    if rows == 0:
        problems.append("the window has no rows")

    suite_name = _suite_name(model_cfg)
    context = _context(gx_module)
    suite = _suite(gx_module, suite_name, checks)
    gx_result = _run_suite(context, suite, _gx_frame(frame, model_cfg), moment)
    bad_positions, reasons, broken = _row_reasons(gx_result, rows)
    problems += broken

    keep = np.ones(rows, dtype=bool)
    keep[bad_positions] = False
    valid = frame.iloc[np.flatnonzero(keep)]
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
        result=_compact_result(gx_result, suite_name, rows, moment),
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
