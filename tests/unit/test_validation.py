"""Great Expectations validation of a prediction window: quarantine per row, fail per batch."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pytest
from great_expectations.util import convert_to_json_serializable

from relearn.config import load_config
from relearn.validation import DataValidationError, build_suite, validate_window
from relearn.validation.frame import gx_frame
from relearn.validation.window import chunks

if TYPE_CHECKING:
    from collections.abc import Callable

    from relearn.config import ModelConfig

ROOT = Path(__file__).resolve().parents[2]
NOW = pd.Timestamp("2025-06-01 12:00", tz="UTC")
ROWS = 50
CLASSES = "['no', 'yes']"


@pytest.fixture(scope="module")
def model_cfg() -> ModelConfig:
    return load_config(ROOT / "relearn.yaml").model("churn")


def clean_frame() -> pd.DataFrame:
    """A valid window shaped like the store's output, with raw JSON-ish feature values.

    The index is deliberately not 0..n-1 so a mix-up of positions and labels shows.
    """
    i = np.arange(ROWS)
    predicted_at = NOW - pd.to_timedelta(24 + i, unit="h")
    return pd.DataFrame(
        {
            "prediction_id": [f"p{n:03d}" for n in i],
            "model_version": "3",
            "predicted_at": predicted_at,
            "outcome_at": predicted_at + pd.Timedelta(hours=6),
            "predicted_label": np.where(i % 2 == 0, "no", "yes"),
            "actual_label": np.where(i % 3 == 0, "yes", "no"),
            "confidence": 0.5 + (i % 10) / 20,
            # Raw values as decoded from JSON: ints and floats mixed in an object column.
            "tenure_months": np.array([int(n) if n % 2 else float(n) for n in i], dtype=object),
            "monthly_charges": 20.0 + i * 10.0,
            "support_calls": (i % 7).astype(float),
            "data_usage_gb": i * 3.5,
            "contract": [("monthly", "yearly", "two_year")[n % 3] for n in i],
            "region": [("north", "south", "east", "west")[n % 4] for n in i],
        },
        index=pd.Index(100 + 2 * i, name="row"),
    )


def ids(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["prediction_id"].dropna())


def reasons_by_row(report: Any) -> dict[int, list[str]]:
    return {int(row): list(reasons) for row, reasons in report.quarantined["reasons"].items()}


def label(position: int) -> int:
    """The clean frame's index label of the row at ``position``."""
    return 100 + 2 * position


def test_clean_window_is_entirely_valid(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    report = validate_window(frame, model_cfg, now=NOW)

    pd.testing.assert_frame_equal(report.valid, frame)
    assert report.quarantined.empty
    assert list(report.quarantined.columns) == [*frame.columns, "reasons"]
    assert report.usable
    assert report.problems == []
    assert report.result["success"] is True
    assert report.summary() == {
        "rows": ROWS,
        "valid": ROWS,
        "quarantined": 0,
        "usable": True,
        "problems": [],
        "failed_expectations": {},
    }


def _set(column: str, positions: list[int], value: Any) -> Callable[[pd.DataFrame], None]:
    def mutate(frame: pd.DataFrame) -> None:
        if not isinstance(frame[column].dtype, np.dtypes.ObjectDType) and isinstance(value, str):
            frame[column] = frame[column].astype(object)
        for position in positions:
            frame.iat[position, frame.columns.get_loc(column)] = value

    return mutate


def _future_prediction(frame: pd.DataFrame) -> None:
    frame.iat[13, frame.columns.get_loc("predicted_at")] = NOW + pd.Timedelta(hours=1)
    frame.iat[13, frame.columns.get_loc("outcome_at")] = NOW + pd.Timedelta(hours=2)


def _duplicate_ids(frame: pd.DataFrame) -> None:
    frame.iloc[[9, 10], frame.columns.get_loc("prediction_id")] = "p011"


# Each case damages its own rows (by position), so all of them can share one window and one
# GX run; rows 26.. stay clean.
HOSTILE_CASES: dict[str, tuple[Callable[[pd.DataFrame], None], dict[int, list[str]]]] = {
    "NaN confidence": (
        _set("confidence", [1], np.nan),
        {1: ["confidence is null or not a number"]},
    ),
    "negative confidence": (
        _set("confidence", [2, 3], -0.1),
        {2: ["confidence outside [0, 1]"], 3: ["confidence outside [0, 1]"]},
    ),
    "confidence above 1": (_set("confidence", [4], 1.5), {4: ["confidence outside [0, 1]"]}),
    "infinite confidence": (_set("confidence", [5], np.inf), {5: ["confidence outside [0, 1]"]}),
    "unknown actual label": (
        _set("actual_label", [6], "maybe"),
        {6: [f"actual_label not in classes {CLASSES}"]},
    ),
    "unknown predicted label": (
        _set("predicted_label", [7], "YES"),
        {7: [f"predicted_label not in classes {CLASSES}"]},
    ),
    "null actual label": (_set("actual_label", [8], None), {8: ["actual_label is null"]}),
    "duplicate ids": (
        _duplicate_ids,
        {row: ["prediction_id is duplicated"] for row in (9, 10, 11)},
    ),
    "null id": (_set("prediction_id", [12], None), {12: ["prediction_id is null"]}),
    "future predicted_at": (
        _future_prediction,
        {13: ["predicted_at is in the future", "outcome_at is in the future"]},
    ),
    "future outcome_at": (
        _set("outcome_at", [14], NOW + pd.Timedelta(minutes=1)),
        {14: ["outcome_at is in the future"]},
    ),
    "outcome before prediction": (
        _set("outcome_at", [15], NOW - pd.Timedelta(days=400)),
        {15: ["outcome_at is before predicted_at"]},
    ),
    "null predicted_at": (
        _set("predicted_at", [16], pd.NaT),
        {16: ["predicted_at is null or not a timestamp"]},
    ),
    "non-numeric feature": (
        _set("tenure_months", [17, 18], "abc"),
        {
            17: ["feature 'tenure_months' is not numeric"],
            18: ["feature 'tenure_months' is not numeric"],
        },
    ),
    "infinite feature": (
        _set("data_usage_gb", [19], -np.inf),
        {19: ["feature 'data_usage_gb' is not numeric"]},
    ),
    "feature above max": (
        _set("monthly_charges", [20], 1000.5),
        {20: ["feature 'monthly_charges' outside [0, 1000]"]},
    ),
    "feature below min": (
        _set("support_calls", [21], -1.0),
        {21: ["feature 'support_calls' outside [0, 100]"]},
    ),
    "unknown category": (
        _set("region", [22], "mars"),
        {22: ["feature 'region' not in categories ['north', 'south', 'east', 'west']"]},
    ),
    "null categorical feature": (
        _set("contract", [23], None),
        {23: ["feature 'contract' is null"]},
    ),
    "null numeric feature": (
        _set("tenure_months", [24], None),
        {24: ["feature 'tenure_months' is null"]},
    ),
    "NaN numeric feature": (
        _set("monthly_charges", [25], np.nan),
        {25: ["feature 'monthly_charges' is null"]},
    ),
}
EXPECTED_REASONS = {
    label(position): reasons
    for _, expected in HOSTILE_CASES.values()
    for position, reasons in expected.items()
}


@pytest.fixture(scope="module")
def hostile() -> tuple[pd.DataFrame, Any]:
    """The clean window with every hostile case applied, and its report (one GX run)."""
    frame = clean_frame()
    for mutate, _ in HOSTILE_CASES.values():
        mutate(frame)
    config = load_config(ROOT / "relearn.yaml").model("churn")
    return frame, validate_window(frame, config, now=NOW, raise_on_unusable=False)


@pytest.mark.parametrize("case", list(HOSTILE_CASES))
def test_hostile_rows_are_quarantined_with_their_reason(
    hostile: tuple[pd.DataFrame, Any], case: str
) -> None:
    _, report = hostile
    quarantined = reasons_by_row(report)
    for position, reasons in HOSTILE_CASES[case][1].items():
        assert quarantined.get(label(position)) == reasons


def test_only_hostile_rows_are_quarantined(hostile: tuple[pd.DataFrame, Any]) -> None:
    frame, report = hostile
    # The cases really use distinct rows: none overwrote another's.
    assert sum(len(expected) for _, expected in HOSTILE_CASES.values()) == 25
    assert len(EXPECTED_REASONS) == 25

    assert reasons_by_row(report) == EXPECTED_REASONS
    pd.testing.assert_frame_equal(report.valid, frame.drop(index=list(EXPECTED_REASONS)))
    pd.testing.assert_frame_equal(
        report.quarantined.drop(columns="reasons"), frame.loc[list(EXPECTED_REASONS)]
    )
    assert report.result["success"] is False
    # 25 of 50 bad rows is far above max_invalid_fraction.
    assert report.problems == [
        "25 of 50 rows (50.0%) failed validation, above the limit of 20.0% "
        "(reinforcement.max_invalid_fraction)"
    ]


def test_a_single_bad_row_leaves_the_window_usable(model_cfg: ModelConfig) -> None:
    mutate, expected = HOSTILE_CASES["non-numeric feature"]
    frame = clean_frame()
    mutate(frame)

    report = validate_window(frame, model_cfg, now=NOW)

    assert reasons_by_row(report) == {label(p): reasons for p, reasons in expected.items()}
    pd.testing.assert_frame_equal(report.valid, frame.drop(index=[label(17), label(18)]))
    assert report.usable
    assert report.result["success"] is False


def test_one_row_collects_every_reason_in_suite_order(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    for column, value in [
        ("confidence", 7.0),
        ("actual_label", "maybe"),
        ("tenure_months", "abc"),
        ("region", None),
    ]:
        _set(column, [30], value)(frame)

    report = validate_window(frame, model_cfg, now=NOW)

    assert reasons_by_row(report) == {
        label(30): [
            "confidence outside [0, 1]",
            f"actual_label not in classes {CLASSES}",
            "feature 'tenure_months' is not numeric",
            "feature 'region' is null",
        ]
    }


def test_numeric_strings_and_missing_outcome_time_are_accepted(model_cfg: ModelConfig) -> None:
    """Validation accepts what ``feature_frame`` accepts: "12" parses like 12."""
    frame = clean_frame()
    _set("tenure_months", [1], "12")(frame)
    _set("outcome_at", [2], pd.NaT)(frame)

    report = validate_window(frame, model_cfg, now=NOW)

    assert report.quarantined.empty
    assert len(report.valid) == ROWS


def test_nullable_feature_allows_nulls_but_not_garbage(model_cfg: ModelConfig) -> None:
    features = [
        f.model_copy(update={"nullable": True}) if f.name in ("tenure_months", "region") else f
        for f in model_cfg.features
    ]
    nullable_cfg = model_cfg.model_copy(update={"features": features})
    frame = clean_frame()
    _set("tenure_months", [1], None)(frame)
    _set("region", [2], None)(frame)
    _set("tenure_months", [3], "abc")(frame)

    report = validate_window(frame, nullable_cfg, now=NOW)

    assert reasons_by_row(report) == {label(3): ["feature 'tenure_months' is not numeric"]}


def test_input_frame_is_not_modified(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    _set("tenure_months", [3], "abc")(frame)
    before = frame.copy()

    validate_window(frame, model_cfg, now=NOW)

    pd.testing.assert_frame_equal(frame, before)


def test_naive_now_is_taken_as_utc(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    _set("outcome_at", [11], NOW + pd.Timedelta(minutes=1))(frame)

    report = validate_window(frame, model_cfg, now=datetime(2025, 6, 1, 12, 0))

    assert list(report.quarantined.index) == [label(11)]


def test_missing_feature_column_makes_the_batch_unusable(model_cfg: ModelConfig) -> None:
    frame = clean_frame().drop(columns=["region"])
    _set("confidence", [3], -1.0)(frame)

    with pytest.raises(DataValidationError, match="feature column 'region' is missing") as error:
        validate_window(frame, model_cfg, now=NOW)

    report = error.value.report
    assert not report.usable
    assert report.problems == ["feature column 'region' is missing from the window"]
    # The other checks still ran, so the report shows everything that is wrong.
    assert reasons_by_row(report) == {label(3): ["confidence outside [0, 1]"]}
    assert len(report.valid) == ROWS - 1


def test_missing_fixed_column_makes_the_batch_unusable(model_cfg: ModelConfig) -> None:
    frame = clean_frame().drop(columns=["actual_label"])

    report = validate_window(frame, model_cfg, now=NOW, raise_on_unusable=False)

    assert report.problems == ["column 'actual_label' is missing from the window"]


def test_empty_window_is_unusable(model_cfg: ModelConfig) -> None:
    frame = clean_frame().iloc[:0]

    with pytest.raises(DataValidationError, match="the window has no rows") as error:
        validate_window(frame, model_cfg, now=NOW)

    assert error.value.report.problems == ["the window has no rows"]
    assert error.value.report.valid.empty


def test_share_of_bad_rows_above_the_limit_makes_the_batch_unusable(
    model_cfg: ModelConfig,
) -> None:
    assert model_cfg.reinforcement.max_invalid_fraction == pytest.approx(0.2)
    frame = clean_frame()
    _set("confidence", list(range(11)), -1.0)(frame)

    with pytest.raises(DataValidationError, match=r"11 of 50 rows \(22\.0%\)") as error:
        validate_window(frame, model_cfg, now=NOW)

    assert "limit of 20.0%" in str(error.value)
    assert len(error.value.report.quarantined) == 11


def test_share_of_bad_rows_at_the_limit_is_still_usable(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    _set("confidence", list(range(10)), -1.0)(frame)

    report = validate_window(frame, model_cfg, now=NOW)

    assert report.usable
    assert len(report.quarantined) == 10
    assert len(report.valid) == 40


def test_raise_on_unusable_false_returns_the_report(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    _set("region", list(range(20)), "mars")(frame)

    report = validate_window(frame, model_cfg, now=NOW, raise_on_unusable=False)

    assert not report.usable
    assert len(report.problems) == 1
    assert "20 of 50 rows (40.0%)" in report.problems[0]
    summary = report.summary()
    assert summary["usable"] is False
    assert summary["quarantined"] == 20
    assert summary["failed_expectations"] == {
        "feature 'region' not in categories ['north', 'south', 'east', 'west']": 20
    }


def test_result_is_a_json_serialisable_gx_result(model_cfg: ModelConfig) -> None:
    frame = clean_frame()
    _set("confidence", [3], np.nan)(frame)
    _set("tenure_months", [4], "abc")(frame)
    _set("outcome_at", [5], NOW + pd.Timedelta(days=1))(frame)

    report = validate_window(frame, model_cfg, now=NOW)
    result = json.loads(json.dumps(report.result, allow_nan=False))

    assert result["suite_name"] == "relearn_churn_window"
    assert result["success"] is False
    assert result["rows"] == ROWS
    by_description = {item["description"]: item for item in result["results"]}
    confidence = by_description["confidence is null or not a number"]
    assert confidence["type"] == "expect_column_values_to_not_be_null"
    assert confidence["kwargs"] == {"column": "confidence"}
    assert confidence["success"] is False
    assert confidence["unexpected_count"] == 1
    assert confidence["unexpected_percent"] == pytest.approx(2.0)
    future = by_description["outcome_at is in the future"]
    assert future["kwargs"]["max_value"] == NOW.isoformat()
    assert future["unexpected_count"] == 1
    assert by_description["feature 'tenure_months' is not numeric"]["unexpected_count"] == 1
    assert by_description["feature 'region' is null"]["success"] is True
    failed = {item["description"] for item in result["results"] if not item["success"]}
    assert failed == {
        "confidence is null or not a number",
        "feature 'tenure_months' is not numeric",
        "outcome_at is in the future",
    }


def test_build_suite_describes_every_check(model_cfg: ModelConfig) -> None:
    suite = build_suite(model_cfg)

    descriptions = [expectation.description for expectation in suite.expectations]
    assert len(descriptions) == len(set(descriptions))
    assert suite.name == "relearn_churn_window"
    for expected in [
        "prediction_id is duplicated",
        "confidence outside [0, 1]",
        f"actual_label not in classes {CLASSES}",
        "predicted_at is in the future",
        "outcome_at is before predicted_at",
        "feature 'tenure_months' is not numeric",
        "feature 'data_usage_gb' outside [0, 5000]",
        "feature 'contract' not in categories ['monthly', 'yearly', 'two_year']",
        "feature 'region' is null",
    ]:
        assert expected in descriptions


def test_duplicate_index_labels_do_not_confuse_rows(model_cfg: ModelConfig) -> None:
    """GX reports positions; the report maps them back without relying on unique labels."""
    frame = clean_frame()
    frame.index = pd.Index([7] * ROWS)
    _set("confidence", [3, 4], -1.0)(frame)

    report = validate_window(frame, model_cfg, now=NOW)

    assert list(report.quarantined["prediction_id"]) == ["p003", "p004"]
    assert list(report.quarantined["reasons"]) == [["confidence outside [0, 1]"]] * 2
    assert len(report.valid) == ROWS - 2
    assert "p003" not in set(report.valid["prediction_id"])


NOT_NUMBERS = {
    "True": True,
    "False": False,
    "numpy True": np.True_,
    "10**400": 10**400,
    "-10**400": -(10**400),
    "'Infinity'": "Infinity",
    "'-inf'": "-inf",
    "'NaN'": "NaN",
    "'1e400'": "1e400",
    "[12]": [12],
    "{'v': 12}": {"v": 12},
}


@pytest.mark.parametrize("value", list(NOT_NUMBERS.values()), ids=list(NOT_NUMBERS))
def test_anything_but_a_finite_number_in_a_numeric_feature_is_quarantined(
    model_cfg: ModelConfig, value: Any
) -> None:
    """A boolean is not 1.0 and an int too large for a float is no crash: both are bad rows."""
    frame = clean_frame()
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    frame.iat[4, frame.columns.get_loc("tenure_months")] = value

    report = validate_window(frame, model_cfg, now=NOW)

    assert reasons_by_row(report) == {label(4): ["feature 'tenure_months' is not numeric"]}


def test_a_features_document_that_is_not_an_object_is_quarantined(model_cfg: ModelConfig) -> None:
    """The store reports the document's JSON type; anything but an object is a bad row."""
    frame = clean_frame()
    frame["features:json_type"] = "object"
    frame.iloc[[2, 3], frame.columns.get_loc("features:json_type")] = ["array", "null"]
    frame.iloc[[2, 3], [frame.columns.get_loc(f.name) for f in model_cfg.features]] = None

    report = validate_window(frame, model_cfg, now=NOW)

    reasons = reasons_by_row(report)
    assert set(reasons) == {label(2), label(3)}
    assert all("features is not a JSON object" in row for row in reasons.values())


def _gx_result_of_one_run(frame: pd.DataFrame, model_cfg: ModelConfig) -> dict[str, Any]:
    """GX's own result of one run over the whole window, in the stored result's fields."""
    suite = build_suite(model_cfg)
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("whole")
        .add_dataframe_asset("window")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": gx_frame(frame, model_cfg)})
    )
    result = batch.validate(
        suite,
        result_format={"result_format": "COMPLETE", "partial_unexpected_count": 20},
        expectation_parameters={"now": NOW},
    )
    fields = ("element_count", "missing_count", "unexpected_count", "unexpected_percent")
    return convert_to_json_serializable(
        {
            "success": result.success,
            "statistics": dict(result.statistics),
            "results": [
                {
                    "description": item.expectation_config.description,
                    "success": item.success,
                    **{name: item.result.get(name) for name in fields},
                    "partial_unexpected_list": item.result.get("partial_unexpected_list", []),
                }
                for item in result.results
            ],
        }
    )


def test_a_window_validated_in_chunks_gets_the_result_of_one_run(
    hostile: tuple[pd.DataFrame, Any], model_cfg: ModelConfig
) -> None:
    """GX runs on bounded chunks; merged, they store what one run over the window reports:
    counts, percentages, the first 20 unexpected values in row order, duplicates across chunks
    and the same quarantined rows and reasons."""
    frame = hostile[0].copy()
    frame["features:json_type"] = "object"  # every check of the suite runs
    _set("region", list(range(26, ROWS)), "mars")(frame)  # 25 unexpected: more than 20 kept
    _set("prediction_id", [40, 49], "p001")(frame)  # duplicates far apart, in other chunks
    whole = validate_window(frame, model_cfg, now=NOW, raise_on_unusable=False)

    chunked = validate_window(frame, model_cfg, now=NOW, raise_on_unusable=False, chunk_rows=7)

    assert len(chunks(frame, 7)) == math.ceil(ROWS / 7)
    one_run = _gx_result_of_one_run(frame, model_cfg)
    stored = chunked.result
    assert stored["success"] == one_run["success"]
    assert stored["statistics"] == one_run["statistics"]
    assert [
        {key: item[key] for key in one_run["results"][0]} for item in stored["results"]
    ] == one_run["results"]
    assert stored == whole.result
    assert reasons_by_row(chunked) == reasons_by_row(whole)
    assert reasons_by_row(chunked)[label(49)] == [
        "prediction_id is duplicated",
        "feature 'region' not in categories ['north', 'south', 'east', 'west']",
    ]
    pd.testing.assert_frame_equal(chunked.valid, whole.valid)
    pd.testing.assert_frame_equal(chunked.quarantined, whole.quarantined)
    assert chunked.problems == whole.problems


@pytest.mark.parametrize("dtype", ["str", "object"])
def test_every_row_of_an_id_is_in_one_chunk(dtype: str) -> None:
    """Text ids (the store's) are hashed, other columns factorized; both keep an id's rows
    together and put every row in exactly one chunk, in window order."""
    ids = pd.Series([f"id{n % 37}" for n in range(500)] + [None, None], dtype=dtype)
    frame = pd.DataFrame({"prediction_id": ids})

    parts = chunks(frame, 60)

    assert len(parts) == 9
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(frame)))
    assert all((np.diff(part) > 0).all() for part in parts)
    chunk_of = {position: n for n, part in enumerate(parts) for position in part.tolist()}
    for _, rows in frame.groupby("prediction_id").indices.items():
        assert len({chunk_of[row] for row in rows.tolist()}) == 1
