"""Retraining on volume decides on the real prediction log and runs table.

Each test works on its own model name, so the session's other rows never count.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from relearn.retraining.volume import VolumeVerdict, volume_decision
from relearn.services import Services
from relearn.store import runs
from relearn.store.db import transaction

pytestmark = pytest.mark.integration

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.fixture
def services(database_url: str, tracking_uri: str) -> Services:
    return Services(database_url, tracking_uri)


def _model(model_cfg, name: str, **reinforcement):
    settings = {"min_new_labelled": 50, "min_interval_hours": 24, **reinforcement}
    return model_cfg.model_copy(
        update={
            "name": name,
            "reinforcement": model_cfg.reinforcement.model_copy(update=settings),
        }
    )


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _log(database_url: str, name: str, n: int, *, predicted_at, outcome_at, labelled=True):
    """``n`` predictions of ``name``: made at ``predicted_at``, labelled at ``outcome_at``."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        for _ in range(n):
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version,"
                " predicted_at, features, predicted_label, confidence, actual_label, outcome_at)"
                " VALUES (%s, %s, '1', %s, %s, 'no', 0.9, %s, %s)",
                (
                    str(uuid.uuid4()),
                    name,
                    predicted_at,
                    json.dumps({}),
                    "yes" if labelled else None,
                    outcome_at if labelled else None,
                ),
            )


def _run(database_url: str, name: str, *, window_end: datetime, finished: bool = True) -> None:
    with transaction(database_url) as connection:
        run = runs.start_run(
            connection,
            model_name=name,
            trigger_key=f"test__{uuid.uuid4()}",
            source="auto_daily",
            params={"window_end": window_end.isoformat()},
            started_at=window_end,
        )
        if finished:
            runs.complete_run(connection, run.id, completed_at=window_end, metrics={})


def test_off_unless_min_new_labelled_is_set(services, model_cfg) -> None:
    decision = volume_decision(services, model_cfg, now=NOW)

    assert model_cfg.reinforcement.min_new_labelled is None  # off by default
    assert decision.verdict is VolumeVerdict.OFF and not decision.due


def test_without_a_previous_run_the_count_alone_decides(services, model_cfg, database_url):
    cfg = _model(model_cfg, _unique("vol_first"))
    hour = timedelta(hours=1)
    _log(database_url, cfg.name, 49, predicted_at=NOW - 3 * hour, outcome_at=NOW - 2 * hour)
    # Not labelled, labelled after "now", or predicted before the lookback: none of these count.
    _log(database_url, cfg.name, 20, predicted_at=NOW - hour, outcome_at=None, labelled=False)
    _log(database_url, cfg.name, 20, predicted_at=NOW - hour, outcome_at=NOW + hour)
    _log(database_url, cfg.name, 20, predicted_at=NOW - timedelta(days=8), outcome_at=NOW - hour)

    below = volume_decision(services, cfg, now=NOW)
    _log(database_url, cfg.name, 1, predicted_at=NOW - 3 * hour, outcome_at=NOW - hour)
    at = volume_decision(services, cfg, now=NOW)

    assert (below.verdict, below.new_labelled, below.last_run_at) == (
        VolumeVerdict.TOO_FEW,
        49,
        None,
    )
    assert (at.verdict, at.new_labelled) == (VolumeVerdict.DUE, 50) and at.due


def test_only_outcomes_since_the_last_run_count(services, model_cfg, database_url):
    cfg = _model(model_cfg, _unique("vol_since"))
    last = NOW - timedelta(days=2)
    _run(database_url, cfg.name, window_end=last)
    _log(database_url, cfg.name, 80, predicted_at=last - timedelta(hours=5), outcome_at=last)
    _log(
        database_url,
        cfg.name,
        30,
        predicted_at=last - timedelta(hours=5),  # predicted before, labelled after: new
        outcome_at=last + timedelta(hours=1),
    )

    too_few = volume_decision(services, cfg, now=NOW)
    _log(database_url, cfg.name, 20, predicted_at=NOW - timedelta(hours=3), outcome_at=NOW)
    due = volume_decision(services, cfg, now=NOW)

    assert (too_few.verdict, too_few.new_labelled, too_few.last_run_at) == (
        VolumeVerdict.TOO_FEW,
        30,
        last,
    )
    assert (due.verdict, due.new_labelled) == (VolumeVerdict.DUE, 50)


def test_inside_the_interval_it_waits_after_it_it_is_due(services, model_cfg, database_url):
    cfg = _model(model_cfg, _unique("vol_interval"), min_interval_hours=24)
    last = NOW - timedelta(hours=23)
    _run(database_url, cfg.name, window_end=last)
    _log(database_url, cfg.name, 200, predicted_at=last, outcome_at=last + timedelta(hours=1))

    inside = volume_decision(services, cfg, now=NOW)
    after = volume_decision(services, cfg, now=NOW + timedelta(hours=1))
    # A replay of an hour before that run judges by its own past: no run before it.
    replay = volume_decision(services, cfg, now=last - timedelta(minutes=1))

    assert inside.verdict is VolumeVerdict.TOO_SOON and inside.new_labelled is None
    assert "less than 24 h" in inside.reason
    assert (after.verdict, after.new_labelled) == (VolumeVerdict.DUE, 200)
    assert (replay.verdict, replay.last_run_at) == (VolumeVerdict.TOO_FEW, None)


def test_a_running_retraining_holds_it_back(services, model_cfg, database_url):
    cfg = _model(model_cfg, _unique("vol_running"), min_interval_hours=0)
    _run(database_url, cfg.name, window_end=NOW - timedelta(days=3), finished=False)
    _log(database_url, cfg.name, 60, predicted_at=NOW - timedelta(hours=2), outcome_at=NOW)

    decision = volume_decision(services, cfg, now=NOW)

    assert decision.verdict is VolumeVerdict.RUNNING and "still running" in decision.reason


def test_the_runs_table_accepts_auto_volume(database_url):
    name = _unique("vol_source")
    with transaction(database_url) as connection:
        run = runs.start_run(
            connection,
            model_name=name,
            trigger_key="test__volume",
            source="auto_volume",
            params={},
            started_at=NOW,
        )
    assert run.source == "auto_volume"
    with pytest.raises(psycopg2.errors.CheckViolation), transaction(database_url) as connection:
        connection.cursor().execute(
            "INSERT INTO model_retraining_runs (id, model_name, source, status)"
            " VALUES (%s, %s, 'auto_weekly', 'running')",
            (uuid.uuid4(), name),
        )
