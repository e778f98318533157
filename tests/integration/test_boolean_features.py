"""A categorical feature of True/False (``relearn model init`` drafts a boolean column so)
arrives as JSON ``true``/``false`` from services and ``relearn ingest``: retraining, drift and
health must read it as the categories ``True``/``False``, not quarantine every row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from relearn.config import Feature, FeatureType
from relearn.data.window import load_window
from relearn.store.db import transaction
from relearn.store.prediction_log import drift_rows
from relearn.store.predictions import LoggedPrediction, attach_outcomes, insert_predictions
from relearn.validation.window import validate_window

pytestmark = pytest.mark.integration

START = datetime(2026, 8, 3, tzinfo=UTC)  # a period no other test logs traffic in
ROWS = 60


@pytest.fixture(scope="module")
def flag_model(model_cfg):
    numeric = [f for f in model_cfg.features if f.type is FeatureType.NUMERIC]
    flag = Feature(name="is_new", type=FeatureType.CATEGORICAL, categories=["False", "True"])
    return model_cfg.model_copy(update={"name": "flag_model", "features": [*numeric, flag]})


@pytest.fixture(scope="module")
def logged(database_url, flag_model):
    rows = []
    for i in range(ROWS):
        features = {f.name: float(f.min or 0) + i % 5 for f in flag_model.features[:-1]}
        rows.append(
            LoggedPrediction(
                prediction_id=uuid.uuid4(),
                model_name=flag_model.name,
                model_version="1",
                unit_id=None,
                predicted_at=START + timedelta(minutes=i),
                features={**features, "is_new": i % 2 == 0},  # a JSON boolean
                predicted_label="no",
                confidence=0.9,
                probabilities={"no": 0.9, "yes": 0.1},
                latency_ms=1.0,
                served_by="champion",
            )
        )
    outcomes = [
        (r.prediction_id, "yes" if i % 3 == 0 else "no", r.predicted_at + timedelta(minutes=5))
        for i, r in enumerate(rows)
    ]
    with transaction(database_url) as connection:
        insert_predictions(connection, rows)
        attach_outcomes(connection, outcomes)
    return rows


def test_the_retraining_window_reads_booleans_as_their_categories(
    database_url, flag_model, logged
) -> None:
    with transaction(database_url) as connection:
        window = load_window(
            connection,
            flag_model,
            since=START,
            until=START + timedelta(hours=2),
            confidence_threshold=0.7,
            replay_ratio=1.0,
            holdout_fraction=0.2,
            max_holdout_rows=20,
            seed=1,
        )
    assert set(window["is_new"]) == {"True", "False"}
    report = validate_window(window, flag_model, now=START + timedelta(days=1))
    assert report.quarantined.empty
    assert len(report.valid) == len(window)


def test_drift_and_health_read_booleans_as_their_categories(
    database_url, flag_model, logged
) -> None:
    with transaction(database_url) as connection:
        rows = drift_rows(
            connection, flag_model, "1", since=START, until=START + timedelta(hours=2)
        ).rows
    assert len(rows) == ROWS
    flags = {row[len(flag_model.features) - 1] for row in rows}
    assert flags == {"True", "False"}
