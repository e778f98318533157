"""The row-level checks of a model's windows, as a Great Expectations expectation suite.

GX cannot express "this object column holds finite numbers", so the suite runs on a prepared
copy of the window (``relearn.validation.frame``) with a few derived columns named
``<feature>:number`` and ``<feature>:is_number``; the colon cannot occur in a configured name.
Each expectation's ``description`` is the reason a failing row is quarantined with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
from great_expectations import expectations as gxe
from great_expectations.data_context.types.base import ProgressBarsConfig

from relearn.config import Feature, FeatureType, ModelConfig
from relearn.store.prediction_log import BASE_COLUMNS, FEATURES_TYPE

# GX pins this module's logger to INFO, announcing a temp directory for every context.
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

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
# Suite parameter holding the validation run's time, so one suite serves every run.
NOW_PARAMETER = "now"


@dataclass(frozen=True)
class Check:
    """One row-level expectation with the reason a failing row gets and the inputs it reads."""

    reason: str
    expectation: type[gxe.Expectation]
    kwargs: dict[str, Any]
    inputs: tuple[str, ...]


def _check(
    reason: str, expectation: type[gxe.Expectation], source: str | None = None, **kwargs: Any
) -> Check:
    """``source`` names the input column when the expectation reads a derived column."""
    names = ("column", "column_A", "column_B")
    inputs = (source,) if source else tuple(kwargs[name] for name in names if name in kwargs)
    return Check(reason, expectation, kwargs, inputs)


def model_checks(model_cfg: ModelConfig) -> list[Check]:
    """The row-level checks, in the order their reasons are listed."""
    classes = list(model_cfg.classes)
    not_null, in_set, between = (
        gxe.ExpectColumnValuesToNotBeNull,
        gxe.ExpectColumnValuesToBeInSet,
        gxe.ExpectColumnValuesToBeBetween,
    )
    checks = [
        _check(f"{PREDICTION_ID} is null", not_null, column=PREDICTION_ID),
        _check(
            f"{PREDICTION_ID} is duplicated", gxe.ExpectColumnValuesToBeUnique, column=PREDICTION_ID
        ),
        _check(f"{CONFIDENCE} is null or not a number", not_null, column=CONFIDENCE),
        _check(
            f"{CONFIDENCE} outside [0, 1]", between, column=CONFIDENCE, min_value=0.0, max_value=1.0
        ),
    ]
    for column in (PREDICTED_LABEL, ACTUAL_LABEL):
        checks.append(_check(f"{column} is null", not_null, column=column))
        checks.append(
            _check(f"{column} not in classes {classes}", in_set, column=column, value_set=classes)
        )
    checks.append(
        _check(f"{PREDICTED_AT} is null or not a timestamp", not_null, column=PREDICTED_AT)
    )
    for column in (PREDICTED_AT, OUTCOME_AT):
        checks.append(
            _check(
                f"{column} is in the future",
                between,
                column=column,
                max_value={"$PARAMETER": NOW_PARAMETER},
            )
        )
    checks.append(
        _check(
            f"{OUTCOME_AT} is before {PREDICTED_AT}",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB,
            column_A=OUTCOME_AT,
            column_B=PREDICTED_AT,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
    )
    checks.append(
        _check("features is not a JSON object", in_set, column=FEATURES_TYPE, value_set=["object"])
    )
    for feature in model_cfg.features:
        checks += _feature_checks(feature)
    return checks


def _feature_checks(feature: Feature) -> list[Check]:
    name = feature.name
    checks: list[Check] = []
    if not feature.nullable:
        checks.append(
            _check(f"feature '{name}' is null", gxe.ExpectColumnValuesToNotBeNull, column=name)
        )
    if feature.type is FeatureType.CATEGORICAL:
        categories = list(feature.categories)
        checks.append(
            _check(
                f"feature '{name}' not in categories {categories}",
                gxe.ExpectColumnValuesToBeInSet,
                column=name,
                value_set=categories,
            )
        )
        return checks
    checks.append(
        _check(
            f"feature '{name}' is not numeric",
            gxe.ExpectColumnValuesToBeInSet,
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
                gxe.ExpectColumnValuesToBeBetween,
                source=name,
                column=f"{name}:number",
                min_value=feature.min,
                max_value=feature.max,
            )
        )
    return checks


def new_context() -> Any:
    """A fresh in-memory context; GX needs an active one even to build an ExpectationSuite."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def make_suite(name: str, checks: list[Check]) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=name)
    for check in checks:
        suite.add_expectation(check.expectation(**check.kwargs, description=check.reason))
    return suite


def suite_name(model_cfg: ModelConfig) -> str:
    return f"relearn_{model_cfg.name}_window"


def build_suite(model_cfg: ModelConfig) -> gx.ExpectationSuite:
    """The row-level expectations for ``model_cfg``'s windows (run on ``gx_frame`` output).

    The not-in-the-future checks compare against the suite parameter ``now`` (pass it as
    ``expectation_parameters={"now": ...}`` when validating).
    """
    new_context()
    return make_suite(suite_name(model_cfg), model_checks(model_cfg))
