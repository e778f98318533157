"""The model-health window is ``[now - window, now)`` of the champion's own predictions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from relearn.health import check_model_health
from relearn.services import Services
from relearn.store.db import transaction
from relearn.store.predictions import LoggedPrediction, attach_outcomes, insert_predictions

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 28, 12, tzinfo=UTC)  # a period no other test logs traffic in
WINDOW = timedelta(hours=1)


def _prediction(model_cfg, version: str, at: datetime, served_by: str) -> LoggedPrediction:
    return LoggedPrediction(
        prediction_id=uuid.uuid4(),
        model_name=model_cfg.name,
        model_version=version,
        unit_id="unit-1",
        predicted_at=at,
        features={"tenure_months": 12},
        predicted_label="no",
        confidence=0.8 if served_by == "champion" else 0.6,
        probabilities={"no": 0.8, "yes": 0.2},
        latency_ms=1.0,
        served_by=served_by,
    )


def test_health_counts_only_the_champions_rows_of_the_interval(
    model_cfg, database_url, tracking_uri, champion
) -> None:
    version = champion.version
    inside = [NOW - WINDOW, NOW - timedelta(minutes=30), NOW - timedelta(seconds=1)]
    outside = [
        (version, NOW, "champion"),  # the end is not part of the interval
        (version, NOW + timedelta(hours=1), "champion"),  # later traffic (a re-run old hour)
        (version, NOW - WINDOW - timedelta(seconds=1), "champion"),
        ("999", NOW - timedelta(minutes=30), "challenger"),  # the A/B challenger arm
        ("0", NOW - timedelta(minutes=30), "champion"),  # an earlier champion's stragglers
    ]
    champion_rows = [_prediction(model_cfg, version, at, "champion") for at in inside]
    other_rows = [_prediction(model_cfg, v, at, arm) for v, at, arm in outside]
    with transaction(database_url) as connection:
        insert_predictions(connection, champion_rows + other_rows)
        # The champion was right every time in the window; everything else was wrong.
        attach_outcomes(connection, [(p.prediction_id, "no", NOW) for p in champion_rows])
        attach_outcomes(connection, [(p.prediction_id, "yes", NOW) for p in other_rows])

    report = check_model_health(
        Services(database_url, tracking_uri),
        model_cfg,
        now=NOW,
        window=WINDOW,
        trigger_key="test-health-window",
    )

    assert report.window["predictions"] == len(inside)
    assert report.window["labelled"] == len(inside)
    assert report.window["accuracy"] == 1.0
    assert report.window["mean_confidence"] == pytest.approx(0.8)
    assert report.window["last_prediction_at"] == inside[-1].isoformat()
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT details FROM health_checks WHERE model_name = %s AND trigger_key = %s",
            (model_cfg.name, "test-health-window"),
        )
        (details,) = cursor.fetchone()
    assert details["window"]["predictions"] == len(inside)
