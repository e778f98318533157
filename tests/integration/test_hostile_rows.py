"""Hostile rows in the prediction log never stop retraining, drift or health checks.

The log is written by other teams' services, so it holds anything Postgres accepts. Each kind
of hostile row below is written with raw SQL beside a day of valid traffic; then the public
entry points run once over the window (one retraining run, one drift check, one health
check: a run per kind would cost minutes) and every kind is judged on its own:

- retraining completes, the row is quarantined with its reason (or, if it is acceptable or
  outside the window, is not), and no valid row is quarantined or hostile row trained on;
- the drift check stores its report, and it and the health check count exactly the valid
  traffic plus the hostile rows their statistics can use, leaving out and counting the rest;
- ``relearn summary`` still reads the log.

A second window holds more bad rows than ``max_invalid_fraction`` allows: only then does the
retraining run fail, with one line naming the limit, while drift and health still report.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from relearn.drift.monitor import CheckOptions, check
from relearn.health import check_model_health
from relearn.registry import registry_client
from relearn.retraining import RetrainingError
from relearn.retraining.artifacts import DATASET_ARTIFACT
from relearn.retraining.loop import reinforce
from relearn.retraining.options import ReinforceOptions
from relearn.services import Services
from relearn.store.db import transaction
from relearn.store.runs import find_run
from relearn.summary import collect_summary, render_summary
from tests.integration.traffic import log_traffic

pytestmark = pytest.mark.integration

END = datetime(2026, 9, 20, tzinfo=UTC)  # a period no other test logs traffic in
FLOOD_END = datetime(2026, 9, 25, tzinfo=UTC)
AT = END - timedelta(hours=5)  # when the hostile rows were predicted
GOOD = {
    "tenure_months": "12",
    "monthly_charges": "70.5",
    "support_calls": "3",
    "data_usage_gb": "120.0",
    "contract": '"monthly"',
    "region": '"north"',
}
NOT_OBJECT = "features is not a JSON object"
NOT_A_NUMBER = "confidence is null or not a number"
MISSING = object()


def features(**raw: object) -> str:
    """The features document as JSON text, each value given as raw JSON (``MISSING`` drops a
    key), so literals Python's json cannot write (``1e400``) can be logged."""
    values = {**GOOD, **raw}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in values.items() if v is not MISSING) + "}"


def deep(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


@dataclass(frozen=True)
class Kind:
    """A hostile row (column -> SQL text, cast by the insert) and what must become of it.

    :param reason: part of the quarantine reason; None if retraining may keep the row.
    :param in_window: the retraining window loads it (labelled, in ``[start, END)``).
    :param sound: the drift and health statistics can use it (None: not in their window).
    """

    row: dict[str, str | None]
    reason: str | None
    in_window: bool = True
    sound: bool | None = True


KINDS: dict[str, Kind] = {
    # The features document is not an object.
    "features is an array": Kind({"features": "[1, 2, 3]"}, NOT_OBJECT, sound=False),
    "features is a string": Kind({"features": '"tenure=12"'}, NOT_OBJECT, sound=False),
    "features is JSON null": Kind({"features": "null"}, NOT_OBJECT, sound=False),
    "features is a number": Kind({"features": "42"}, NOT_OBJECT, sound=False),
    "features is a boolean": Kind({"features": "true"}, NOT_OBJECT, sound=False),
    "features is empty": Kind({"features": "{}"}, "feature 'tenure_months' is null"),
    "a missing key": Kind({"features": features(region=MISSING)}, "feature 'region' is null"),
    # Keys named like base columns are not features: the row is valid.
    "keys named like base columns": Kind(
        {"features": features(confidence='"boom"', predicted_label="7", prediction_id="null")},
        None,
    ),
    # Numeric features.
    "1e400": Kind(
        {"features": features(monthly_charges="1e400")}, "feature 'monthly_charges' is not numeric"
    ),
    "-1e400": Kind(
        {"features": features(data_usage_gb="-1e400")}, "feature 'data_usage_gb' is not numeric"
    ),
    "500-digit integer": Kind(
        {"features": features(tenure_months="1" + "0" * 500)},
        "feature 'tenure_months' is not numeric",
    ),
    "5000-digit integer": Kind(
        {"features": features(tenure_months="9" * 5000)}, "feature 'tenure_months' is not numeric"
    ),
    "boolean in a numeric feature": Kind(
        {"features": features(support_calls="true")}, "feature 'support_calls' is not numeric"
    ),
    "string NaN": Kind(
        {"features": features(tenure_months='"NaN"')}, "feature 'tenure_months' is not numeric"
    ),
    "string nan": Kind(
        {"features": features(tenure_months='"nan"')}, "feature 'tenure_months' is not numeric"
    ),
    "string Infinity": Kind(
        {"features": features(tenure_months='"Infinity"')},
        "feature 'tenure_months' is not numeric",
    ),
    "string -inf": Kind(
        {"features": features(tenure_months='"-inf"')}, "feature 'tenure_months' is not numeric"
    ),
    "string 1e400": Kind(
        {"features": features(tenure_months='"1e400"')}, "feature 'tenure_months' is not numeric"
    ),
    "array in a numeric feature": Kind(
        {"features": features(tenure_months="[12]")}, "feature 'tenure_months' is not numeric"
    ),
    "object in a numeric feature": Kind(
        {"features": features(tenure_months='{"value": 12}')},
        "feature 'tenure_months' is not numeric",
    ),
    "2000 nested arrays": Kind(
        {"features": features(tenure_months=deep(2000))}, "feature 'tenure_months' is not numeric"
    ),
    "null numeric feature": Kind(
        {"features": features(tenure_months="null")}, "feature 'tenure_months' is null"
    ),
    "numeric feature above max": Kind(
        {"features": features(monthly_charges="1000000")},
        "feature 'monthly_charges' outside [0, 1000]",
    ),
    "numeric feature below min": Kind(
        {"features": features(support_calls="-3")}, "feature 'support_calls' outside [0, 100]"
    ),
    # Categorical features.
    "number in a categorical feature": Kind(
        {"features": features(contract="3")}, "feature 'contract' not in categories"
    ),
    "unicode category": Kind(
        {"features": features(region='"北 🌍 é\\u200b"')}, "feature 'region' not in categories"
    ),
    "huge string category": Kind(
        {"features": features(region=json.dumps("x" * 1_000_000))},
        "feature 'region' not in categories",
    ),
    "SQL-like category": Kind(
        {"features": features(region=json.dumps("north'); DROP TABLE prediction_log; --"))},
        "feature 'region' not in categories",
    ),
    "null categorical feature": Kind(
        {"features": features(contract="null")}, "feature 'contract' is null"
    ),
    # Confidence: NaN and infinity in every spelling float8 accepts, out of range.
    "confidence NaN": Kind(
        {"confidence": "NaN"}, "confidence is null or not a number", sound=False
    ),
    "confidence nan": Kind(
        {"confidence": "nan"}, "confidence is null or not a number", sound=False
    ),
    "confidence Infinity": Kind({"confidence": "Infinity"}, "confidence outside", sound=False),
    "confidence inf": Kind({"confidence": "inf"}, "confidence outside", sound=False),
    "confidence -Infinity": Kind({"confidence": "-Infinity"}, "confidence outside", sound=False),
    "confidence -inf": Kind({"confidence": "-inf"}, "confidence outside", sound=False),
    "confidence above 1": Kind({"confidence": "1.5"}, "confidence outside", sound=False),
    "confidence below 0": Kind({"confidence": "-0.5"}, "confidence outside", sound=False),
    "confidence 1e308": Kind({"confidence": "1e308"}, "confidence outside", sound=False),
    # Labels.
    "unknown predicted label": Kind(
        {"predicted_label": "maybe"}, "predicted_label not in classes", sound=False
    ),
    "SQL-like predicted label": Kind(
        {"predicted_label": "'; DELETE FROM prediction_log; --"},
        "predicted_label not in classes",
        sound=False,
    ),
    "unknown actual label": Kind(
        {"actual_label": "YES"}, "actual_label not in classes", sound=False
    ),
    "huge unicode actual label": Kind(
        {"actual_label": "ü" * 100_000}, "actual_label not in classes", sound=False
    ),
    # Timestamps.
    "outcome before prediction": Kind(
        {"outcome_at": (AT - timedelta(days=1)).isoformat()},
        "outcome_at is before predicted_at",
        sound=False,
    ),
    "outcome in the future": Kind(
        {"outcome_at": (datetime.now(UTC) + timedelta(days=30)).isoformat()},
        "outcome_at is in the future",
    ),
    "outcome at infinity": Kind({"outcome_at": "infinity"}, "outcome_at is in the future"),
    "outcome in year 50000": Kind(
        {"outcome_at": "50000-01-01 00:00+00"}, "outcome_at is in the future"
    ),
    "outcome at -infinity": Kind(
        {"outcome_at": "-infinity"}, "outcome_at is before predicted_at", sound=False
    ),
    "outcome in 4000 BC": Kind(
        {"outcome_at": "4000-01-01 00:00+00 BC"}, "outcome_at is before predicted_at", sound=False
    ),
    "predicted in the future": Kind(
        {"predicted_at": "2090-01-01 00:00+00", "outcome_at": "2090-01-02 00:00+00"},
        None,
        in_window=False,
        sound=None,
    ),
    "predicted in 4000 BC": Kind(
        {"predicted_at": "4000-01-01 00:00+00 BC", "outcome_at": None},
        None,
        in_window=False,
        sound=None,
    ),
    "predicted at infinity": Kind(
        {"predicted_at": "infinity", "outcome_at": None}, None, in_window=False, sound=None
    ),
    # NULLs in every nullable column (and odd values in columns no reader uses).
    "null actual label": Kind({"actual_label": None}, None, in_window=False),
    "null outcome_at": Kind({"outcome_at": None}, None),
    "null unit_id": Kind({"unit_id": None}, None),
    "null probabilities": Kind({"probabilities": None}, None),
    "probabilities are JSON null": Kind({"probabilities": "null"}, None),
    "null latency": Kind({"latency_ms": None}, None),
    "NaN latency": Kind({"latency_ms": "NaN"}, None),
    "huge unicode unit_id": Kind({"unit_id": "🦀" * 50_000}, None),
    "unknown model version": Kind({"model_version": "v∞'; --"}, None, sound=None),
}

_INSERT = """
INSERT INTO prediction_log (prediction_id, model_name, model_version, unit_id, predicted_at,
    features, predicted_label, confidence, probabilities, latency_ms, served_by, actual_label,
    outcome_at)
VALUES (%(prediction_id)s, %(model_name)s, %(model_version)s, %(unit_id)s,
    %(predicted_at)s::timestamptz, %(features)s::jsonb, %(predicted_label)s,
    %(confidence)s::float8, %(probabilities)s::jsonb, %(latency_ms)s::real, 'champion',
    %(actual_label)s, %(outcome_at)s::timestamptz)
"""


def row_id(window_end: datetime, name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"relearn-hostile/{window_end.isoformat()}/{name}")


def insert(
    database_url: str,
    model_name: str,
    version: str,
    rows: dict[uuid.UUID, dict],
    *,
    at: datetime = AT,
) -> None:
    """Confident mistakes (errors are always loaded) with each row's overrides, as SQL text."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        for prediction_id, overrides in rows.items():
            row = {
                "prediction_id": prediction_id,
                "model_name": model_name,
                "model_version": version,
                "unit_id": "unit-1",
                "predicted_at": at.isoformat(),
                "features": features(),
                "predicted_label": "no",
                "confidence": "0.9",
                "probabilities": '{"no": 0.9, "yes": 0.1}',
                "latency_ms": "1.5",
                "actual_label": "yes",
                "outcome_at": (at + timedelta(hours=1)).isoformat(),
                **overrides,
            }
            cursor.execute(_INSERT, row)


def champion_rows(database_url: str, model_name: str, version: str, end: datetime) -> int:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM prediction_log WHERE model_name = %s AND model_version = %s "
            "AND predicted_at >= %s AND predicted_at < %s",
            (model_name, version, end - timedelta(days=1), end),
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class Outcome:
    run: object
    quarantined: dict[uuid.UUID, list[str]]
    trained_ids: set[str]
    drift: object
    health: object
    summary: str
    traffic: int


@pytest.fixture(scope="module")
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


@pytest.fixture(scope="module")
def outcome(services, model_cfg, database_url, tracking_uri, champion) -> Outcome:
    """A day of valid traffic plus one row of every kind, run through the three checks."""
    log_traffic(
        model_cfg, database_url, tracking_uri, start=END - timedelta(days=1), end=END, seed=31
    )
    traffic = champion_rows(database_url, model_cfg.name, champion.version, END)
    rows = {row_id(END, name): kind.row for name, kind in KINDS.items()}
    insert(database_url, model_cfg.name, champion.version, rows)
    # Dry run with a one-epoch model: the whole loop runs (train and evaluate on the valid
    # rows), no alias moves.
    options = ReinforceOptions.from_config(
        model_cfg, lookback_days=1, min_error_samples=1, epochs=1, dry_run=True
    )
    run = reinforce(services, model_cfg, options, trigger_key="test-hostile-kinds", now=END)
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT prediction_id, reasons FROM prediction_quarantine WHERE retraining_run_id = %s",
            (run.id,),
        )
        quarantined = {uuid.UUID(str(pid)): reasons for pid, reasons in cursor.fetchall()}
    with tempfile.TemporaryDirectory() as tmp:
        path = registry_client(tracking_uri).download_artifacts(
            run.mlflow_run_id, DATASET_ARTIFACT, tmp
        )
        trained_ids = set(pd.read_parquet(Path(path))["prediction_id"].astype(str))
    drift_options = CheckOptions.from_config(model_cfg, window_hours=24, dry_run=True)
    drift = check(services, model_cfg, drift_options, trigger_key="test-hostile-kinds", now=END)
    health = check_model_health(
        services, model_cfg, now=END, window=timedelta(days=1), trigger_key="test-hostile-kinds"
    )
    summary = render_summary(collect_summary(services, [model_cfg.name]))
    return Outcome(run, quarantined, trained_ids, drift, health, summary, traffic)


def test_there_are_at_least_30_kinds() -> None:
    assert len(KINDS) >= 30


def test_retraining_completes_on_the_valid_rows(outcome: Outcome) -> None:
    run = outcome.run
    assert run.status == "completed", run.error_message
    validation = run.metrics["data_validation"]
    assert validation["usable"], validation["problems"]
    assert validation["quarantined"] == sum(kind.reason is not None for kind in KINDS.values())
    assert run.metrics["dataset"]["train"] > 0


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_is_quarantined_with_its_reason_or_kept(outcome: Outcome, name: str) -> None:
    kind = KINDS[name]
    prediction_id = row_id(END, name)
    reasons = outcome.quarantined.get(prediction_id)
    if kind.reason is None:
        assert reasons is None, reasons
    else:
        assert reasons is not None, f"{name} was not quarantined"
        assert any(kind.reason in reason for reason in reasons), reasons
        assert str(prediction_id) not in outcome.trained_ids


def test_no_valid_row_is_quarantined(outcome: Outcome) -> None:
    hostile = {row_id(END, name) for name, kind in KINDS.items() if kind.reason}
    assert set(outcome.quarantined) == hostile


def test_drift_and_health_count_only_rows_they_can_use(outcome: Outcome) -> None:
    sound = sum(kind.sound is True for kind in KINDS.values())
    unsound = sum(kind.sound is False for kind in KINDS.values())
    assert outcome.drift.rows == outcome.traffic + sound
    assert outcome.drift.verdict != "insufficient_data"
    window = outcome.health.window
    assert window["predictions"] == outcome.traffic + sound
    assert window["excluded"] == unsound
    assert 0 <= window["mean_confidence"] <= 1
    assert outcome.health.status in ("healthy", "degraded")


def test_the_summary_reads_every_row(outcome: Outcome) -> None:
    assert "Accuracy by day:" in outcome.summary


def test_a_flood_of_bad_rows_fails_retraining_in_one_line_but_not_drift_or_health(
    services, model_cfg, database_url, tracking_uri, champion
) -> None:
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=FLOOD_END - timedelta(days=1),
        end=FLOOD_END,
        seed=32,
        per_hour=4,
    )
    traffic = champion_rows(database_url, model_cfg.name, champion.version, FLOOD_END)
    flood = {row_id(FLOOD_END, f"flood-{i}"): {"features": "[]"} for i in range(traffic)}
    insert(database_url, model_cfg.name, champion.version, flood, at=FLOOD_END - timedelta(hours=5))
    options = ReinforceOptions.from_config(model_cfg, lookback_days=1)

    with pytest.raises(RetrainingError) as error:
        reinforce(services, model_cfg, options, trigger_key="test-hostile-flood", now=FLOOD_END)

    message = str(error.value)
    assert "\n" not in message
    assert "reinforcement.max_invalid_fraction" in message
    with transaction(database_url) as connection:
        run = find_run(connection, "test-hostile-flood", model_cfg.name)
    assert run.status == "failed"
    drift_options = CheckOptions.from_config(model_cfg, window_hours=24, min_rows=1, dry_run=True)
    drift = check(
        services, model_cfg, drift_options, trigger_key="test-hostile-flood", now=FLOOD_END
    )
    assert drift.rows == traffic
    health = check_model_health(
        services,
        model_cfg,
        now=FLOOD_END,
        window=timedelta(days=1),
        trigger_key="test-hostile-flood",
    )
    assert health.window["predictions"] == traffic
    assert health.window["excluded"] == len(flood)
