"""Screening of incoming prediction rows: the same verdicts and reasons as the GX validation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from relearn.collect.ingest import _normalised
from relearn.collect.rows import _UNSTORABLE as UNSTORABLE
from relearn.collect.rows import _documents, _flat, screen_predictions
from relearn.collect.wire import WireError, decode_predictions
from relearn.config import load_config
from relearn.store.predictions import PredictionColumns
from relearn.validation import validate_window
from tests.conftest import ROOT

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def model_cfg():
    return load_config(ROOT / "relearn.yaml").model("churn")


def _row(**changes):
    row = {
        "prediction_id": str(uuid.uuid4()),
        "model_version": "1",
        "unit_id": "u",
        "predicted_at": NOW - timedelta(hours=1),
        "features": {
            "tenure_months": 12,
            "monthly_charges": 50.0,
            "support_calls": 1,
            "data_usage_gb": 10.0,
            "contract": "monthly",
            "region": "north",
        },
        "predicted_label": "no",
        "confidence": 0.9,
        "probabilities": None,
        "latency_ms": 1.0,
    }
    features = changes.pop("features", {})
    row["features"] = None if features is None else {**row["features"], **features}
    return {**row, **changes}


HOSTILE = [
    _row(),
    _row(features={"tenure_months": True}),
    _row(features={"tenure_months": 10**400}),
    _row(features={"monthly_charges": "12"}),
    _row(features={"monthly_charges": "abc"}),
    _row(features={"support_calls": [1]}),
    _row(features={"contract": "weekly", "region": None}),
    _row(features=None),
    _row(confidence=float("nan")),
    _row(confidence=-0.1),
    _row(predicted_label=None),
    _row(predicted_at=NOW + timedelta(days=1)),
    _row(predicted_at="not a time"),
]


def test_reasons_equal_the_window_validations(model_cfg):
    frame = pd.DataFrame(HOSTILE, dtype=object)
    screened = screen_predictions(frame, model_cfg, now=NOW)
    flat = _flat(frame, _documents(frame, model_cfg), model_cfg)
    report = validate_window(flat, model_cfg, now=NOW, raise_on_unusable=False)
    expected = {
        position: list(reasons)
        for position, reasons in zip(
            report.quarantined.index, report.quarantined["reasons"], strict=True
        )
    }
    assert {r.position: r.reasons for r in screened.rejected} == expected
    assert screened.accepted.prediction_id == [
        HOSTILE[0]["prediction_id"],
        HOSTILE[3]["prediction_id"],
    ]


def test_collection_only_checks(model_cfg):
    frame = pd.DataFrame(
        [
            _row(prediction_id="42"),
            _row(model_version=" "),
            _row(probabilities={"no": 0.1, "maybe": 0.9}),
            _row(latency_ms=-1.0),
            _row(served_by="canary"),
            _row(confidence=None, predicted_label="yes", probabilities={"no": 0.25, "yes": 0.75}),
            _row(model_version=True, unit_id=1.5),
            _row(latency_ms=10**400),  # no float can hold it: used to fail the whole batch
            _row(latency_ms=1e39),  # beyond the log's REAL column: the COPY would fail
        ],
        dtype=object,
    )
    screened = screen_predictions(frame, model_cfg, now=NOW)
    reasons = {r.position: r.reasons for r in screened.rejected}
    assert reasons.pop(7) == reasons.pop(8) == ["latency_ms must be a number from 0 to 3.4e38"]
    assert reasons == {
        0: ["prediction_id is not a UUID"],
        1: ["model_version is missing"],
        2: ["probabilities must map classes ['no', 'yes'] to numbers in [0, 1]"],
        3: ["latency_ms must be a number from 0 to 3.4e38"],
        4: ["served_by must be one of ['champion', 'challenger']"],
        6: ["model_version must be text or an integer", "unit_id must be text or an integer"],
    }
    assert screened.accepted.confidence == [0.75]


def test_probabilities_label_and_confidence_must_agree(model_cfg):
    """A new user logged all of these and had them stored (finding 5)."""
    frame = pd.DataFrame(
        [
            _row(predicted_label="yes", confidence=0.7, probabilities={"no": 0.7, "yes": 0.3}),
            _row(predicted_label="no", confidence=0.3, probabilities={"no": 0.3, "yes": 0.1}),
            _row(predicted_label="yes", confidence=0.3, probabilities={"no": 0.2, "yes": 0.8}),
            _row(predicted_label="yes", confidence=0.6, probabilities={"no": 0.6}),
            # within the tolerance, a tie, and a map of one class leaving the label the rest
            _row(predicted_label="no", confidence=0.8, probabilities={"no": 0.8004, "yes": 0.2}),
            _row(predicted_label="yes", confidence=0.5, probabilities={"no": 0.5, "yes": 0.5}),
            _row(predicted_label="yes", confidence=None, probabilities={"no": 0.3}),
            _row(predicted_label="yes", confidence=None, probabilities={"no": 0.2, "yes": 0.8}),
            # rounded to two decimals by the client: they agree (main accepted them)
            _row(
                predicted_label="no", confidence=0.83, probabilities={"no": 0.8312, "yes": 0.1688}
            ),
            _row(predicted_label="no", confidence=0.83, probabilities={"no": 0.83, "yes": 0.16}),
            # no class at all: rejected as such, not a failure of the whole batch
            _row(predicted_label=["no"], confidence=None, probabilities={"no": 0.9, "yes": 0.1}),
        ],
        dtype=object,
    )
    screened = screen_predictions(frame, model_cfg, now=NOW)
    reasons = {r.position: r.reasons for r in screened.rejected}
    assert reasons == {
        0: [
            "predicted_label must be a most probable class",
            "confidence must be the probability of predicted_label (within 0.005)",
        ],
        1: ["probabilities must sum to 1 (within 0.005 per class)"],
        2: ["confidence must be the probability of predicted_label (within 0.005)"],
        3: ["predicted_label must be a most probable class"],
        10: ["confidence is null or not a number", "predicted_label not in classes ['no', 'yes']"],
    }
    # no confidence given: the label's probability (the rest of a map that lacks only it)
    assert screened.accepted.confidence == pytest.approx([0.8, 0.5, 0.7, 0.8, 0.83, 0.83])


def test_rows_postgres_could_not_store_are_rejected_not_the_batch(model_cfg):
    same = uuid.uuid4()
    frame = pd.DataFrame(
        [
            # pandas holds year 0; Postgres has no year 0, and COPY would fail the whole batch
            _row(predicted_at="0001-01-01T00:00:00+14:00"),
            # one UUID in two spellings: Postgres would see one id
            _row(prediction_id=str(same)),
            _row(prediction_id="{" + str(same).upper() + "}"),
            _row(),
        ],
        dtype=object,
    )
    screened = screen_predictions(frame, model_cfg, now=NOW)
    reasons = {r.position: r.reasons for r in screened.rejected}
    assert reasons == {
        0: ["predicted_at is before year 1 in UTC (Postgres cannot store it)"],
        2: ["prediction_id repeats that of index 1, which is logged"],
    }
    assert screened.accepted.prediction_id == [str(same), frame["prediction_id"][3]]


def test_a_repeated_id_logs_its_first_good_row_and_names_it_in_the_others(model_cfg):
    """Both rows of a repeated id were rejected; a new user expected one logged (finding 6)."""
    once, bad_first = str(uuid.uuid4()), str(uuid.uuid4())
    frame = pd.DataFrame(
        [
            _row(prediction_id=once),
            _row(),
            _row(prediction_id=once, predicted_label="yes"),
            _row(prediction_id=bad_first, confidence=2.0),  # rejected: the next one is logged
            _row(prediction_id=bad_first),
            _row(prediction_id=once),
        ],
        dtype=object,
    )
    screened = screen_predictions(frame, model_cfg, now=NOW, rows=[11, 12, 13, 14, 15, 16])
    reasons = {r.position: r.reasons for r in screened.rejected}
    assert reasons == {
        2: ["prediction_id repeats that of row 11, which is logged"],
        3: ["confidence outside [0, 1]"],
        5: ["prediction_id repeats that of row 11, which is logged"],
    }
    assert screened.accepted.prediction_id == [once, frame["prediction_id"][1], bad_first]
    assert screened.accepted.predicted_label == ["no", "no", "no"]


@pytest.mark.parametrize(
    "column", ["prediction_id", "model_version", "predicted_at", "predicted_label", "confidence"]
)
def test_a_missing_required_column_rejects_every_row_with_that_reason(model_cfg, column):
    """A backfill file without, e.g., a time column is reported row by row, never a crash."""
    frame = pd.DataFrame([_row(), _row()]).drop(columns=[column, "probabilities"])
    screened = screen_predictions(frame, model_cfg, now=NOW)
    assert len(screened.accepted.prediction_id) == 0
    assert [f"column '{column}' is missing" in r.reasons for r in screened.rejected] == [True] * 2


def test_a_body_nested_too_deeply_is_a_clear_error():
    body = b'{"rows": [{"features": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    with pytest.raises(WireError, match="nested too deeply"):
        decode_predictions(body, now=NOW)


def test_flat_and_nested_batches_give_the_same_rows(model_cfg):
    """A file (one column per feature) and a request (a features object) are screened alike;
    NaN, infinity and NUL are refused, a missing nullable value is a JSON null."""
    rows = [
        _row(),
        _row(features={"monthly_charges": float("inf")}),
        _row(features={"region": "no\x00rth"}),
        _row(unit_id="tab\there", model_version="back\\slash"),
    ]
    nested = pd.DataFrame(rows, dtype=object)
    flat = pd.DataFrame(
        [{**{k: v for k, v in r.items() if k != "features"}, **r["features"]} for r in rows]
    )
    for frame in (nested, flat):
        screened = screen_predictions(frame, model_cfg, now=NOW)
        reasons = {r.position: r.reasons for r in screened.rejected}
        assert reasons[1] == ["feature 'monthly_charges' is not numeric", UNSTORABLE], reasons
        assert reasons[2][-1] == UNSTORABLE
        accepted = screened.accepted
        assert accepted.prediction_id == [rows[0]["prediction_id"], rows[3]["prediction_id"]]
        assert [json.loads(f) for f in accepted.features] == [rows[0]["features"]] * 2
        assert accepted.unit_id == ["u", "tab\there"]
        assert accepted.predicted_at == ["2026-07-01T11:00:00.000000Z"] * 2


def test_copy_text_escapes_only_what_copy_needs():
    rows = PredictionColumns(
        model_name="m",
        prediction_id=[str(uuid.UUID(int=1))],
        model_version=["v\\1"],
        unit_id=[None],
        predicted_at=["2026-07-01T11:00:00.000000Z"],
        features=['{"a":"x\\ny"}'],
        predicted_label=["tab\tlabel"],
        confidence=[0.5],
        probabilities=[None],
        latency_ms=[None],
        served_by=["champion"],
    )
    line = rows.copy_text
    assert line == (
        "00000000-0000-0000-0000-000000000001\tm\tv\\\\1\t\\N\t2026-07-01T11:00:00.000000Z\t"
        '{"a":"x\\\\ny"}\ttab\\tlabel\t0.5\t\\N\t\\N\tchampion\n'
    )


def test_ingest_reads_ids_and_labels_as_text_whatever_their_type():
    """A JSON Lines column mixing numbers and text (labels 0 and "1") is text throughout."""
    chunk = pd.DataFrame({"predicted_label": [0, "1", None], "prediction_id": ["a", "b", "c"]})
    chunk["prediction_id"] = chunk["prediction_id"].astype("string")
    normalised = _normalised(chunk)
    labels = normalised["predicted_label"].tolist()
    assert labels[:2] == ["0", "1"] and pd.isna(labels[2])
    assert normalised["prediction_id"].tolist() == ["a", "b", "c"]
    # Integers with a null among them reach pandas as floats (JSON Lines, nullable Parquet).
    floats = _normalised(pd.DataFrame({"unit_id": [42, None, 7.5], "actual_label": [1, 0, None]}))
    assert floats["unit_id"].tolist()[::2] == ["42", "7.5"]
    assert floats["actual_label"].tolist()[:2] == ["1", "0"]
