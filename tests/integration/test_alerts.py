"""Alerts against the real Postgres: every kind is raised from its event, once per subject,
once per cooldown per model and kind; a failed delivery is kept and sent on the next try."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from relearn.monitoring.alerts import deliver, raise_alerts
from relearn.store.db import transaction
from relearn.store.health import HealthCheckRow, save_check

pytestmark = pytest.mark.integration

NOW = datetime(2032, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _model() -> str:
    return f"alerts_{uuid.uuid4().hex[:8]}"


def check_row(model: str, trigger_key: str, score: float, status: str) -> HealthCheckRow:
    return HealthCheckRow(
        model_name=model,
        checked_at=NOW,
        window_start=NOW - 24 * HOUR,
        status=status,
        champion_version="1",
        score=score,
        availability=0.0 if score < 0.8 else 1.0,
        error_score=1.0,
        latency_score=1.0,
        predictions=0,
        usual_predictions=120.0,
        labelled=0,
        accuracy=None,
        reference_accuracy=0.9,
        latency_p95_ms=None,
        latency_budget_ms=250.0,
        issues=[{"part": "availability", "issue": "0 predictions", "recommendation": "look"}],
        trigger_key=trigger_key,
    )


def _seed_events(database_url: str, model: str) -> dict[str, str]:
    """One event of each kind inside [NOW - 1 h, NOW), and one of each outside it."""
    inside, before = NOW - timedelta(minutes=20), NOW - 3 * HOUR
    with transaction(database_url) as connection, connection.cursor() as cursor:
        ids = {}
        for at, key in ((inside, "in"), (before, "out")):
            cursor.execute(
                "INSERT INTO drift_reports (id, model_name, checked_at, window_start, rows,"
                " labelled_rows, score, threshold, verdict, features, action, trigger_key)"
                " VALUES (gen_random_uuid(), %s, %s, %s, 500, 300, 0.5, 0.2, 'decayed', '[]',"
                " 'retrain', %s) RETURNING id::text",
                (model, at, at - 24 * HOUR, f"drift-{key}"),
            )
            ids[f"drift_{key}"] = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO model_retraining_runs (id, model_name, source, status, trigger_key,"
                " completed_at, error_message) VALUES (gen_random_uuid(), %s, 'auto_daily',"
                " 'failed', %s, %s, 'no space left') RETURNING id::text",
                (model, f"run-{key}", at),
            )
            ids[f"run_{key}"] = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO alias_history (model_name, alias, version, previous_version, changed_at,"
            " changed_by, reason) VALUES (%s, 'champion', '3', '4', %s, 'ops', 'bad v4'),"
            " (%s, 'champion', '5', '4', %s, 'ab', 'promoted') RETURNING id",
            (model, inside, model, inside),
        )
        ids["rollback"] = str(cursor.fetchone()[0])
        cursor.execute(
            "INSERT INTO model_retraining_requests (model_name, status, claimed_by,"
            " lease_expires_at, attempts) VALUES (%s, 'processing', 'worker-1', %s, 1),"
            " (%s, 'processing', 'worker-2', %s, 1) RETURNING id::text",
            (model, NOW - 2 * HOUR, model, NOW + HOUR),
        )
        ids["stuck"] = cursor.fetchone()[0]
        save_check(connection, check_row(model, "run-1", 0.6, "degraded"), details={})
    return ids


def test_each_kind_is_raised_once_from_its_event(database_url) -> None:
    model = _model()
    ids = _seed_events(database_url, model)
    raised = raise_alerts(
        database_url, model, since=NOW - HOUR, until=NOW, cooldown=6 * HOUR, trigger_key="run-1"
    )
    found = {alert.kind: alert for alert in raised}
    assert sorted(found) == [
        "drift",
        "health_low",
        "request_stuck",
        "retraining_failed",
        "rollback",
    ]
    assert found["drift"].subject == f"drift_report:{ids['drift_in']}"
    assert found["retraining_failed"].subject == f"retraining_run:{ids['run_in']}"
    assert "no space left" in found["retraining_failed"].message
    # Only the move back from 4 to 3 is a rollback, not the promotion from 4 to 5.
    assert found["rollback"].subject == f"alias_history:{ids['rollback']}"
    assert "moved back from version 4 to 3 by ops" in found["rollback"].message
    assert found["request_stuck"].subject == f"request:{ids['stuck']}#1"
    assert found["health_low"].severity == "warning"

    # The same interval again (a retried task): nothing new.
    again = raise_alerts(
        database_url, model, since=NOW - HOUR, until=NOW, cooldown=6 * HOUR, trigger_key="run-1"
    )
    assert again == []


def test_the_cooldown_holds_a_kind_back_per_model(database_url) -> None:
    model, other = _model(), _model()
    with transaction(database_url) as connection:
        for name in (model, other):
            for hour in range(3):
                key = f"check-{hour}"
                save_check(connection, check_row(name, key, 0.6, "degraded"), details={})

    def hourly(name: str, hour: int, cooldown: timedelta) -> list:
        return raise_alerts(
            database_url,
            name,
            since=NOW + (hour - 1) * HOUR,
            until=NOW + hour * HOUR,
            cooldown=cooldown,
            trigger_key=f"check-{hour}",
        )

    assert len(hourly(model, 0, 2 * HOUR)) == 1
    assert hourly(model, 1, 2 * HOUR) == []  # 1 h later: inside the cooldown
    assert len(hourly(other, 1, 2 * HOUR)) == 1  # another model has its own cooldown
    assert len(hourly(model, 2, 2 * HOUR)) == 1  # 2 h later: the cooldown is over


def test_a_failed_delivery_is_kept_and_sent_next_time(database_url) -> None:
    model = _model()
    with transaction(database_url) as connection:
        save_check(connection, check_row(model, "k", 0.3, "unhealthy"), details={})
    (alert,) = raise_alerts(
        database_url, model, since=NOW - HOUR, until=NOW, cooldown=HOUR, trigger_key="k"
    )
    sent = []

    def down(row) -> None:
        if row.model_name == model:
            raise ConnectionError("webhook down")

    def up(row) -> None:
        sent.append(row.id)

    first = deliver(database_url, down, now=NOW)
    assert [a.id for a, _ in first.failed if a.model_name == model] == [alert.id]
    second = deliver(database_url, up, now=NOW + HOUR)
    assert alert.id in [a.id for a in second.delivered]
    assert alert.id not in [a.id for a in deliver(database_url, up, now=NOW + 2 * HOUR).delivered]
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT attempts, last_error, delivered_at FROM alerts WHERE id = %s", (alert.id,)
        )
        assert cursor.fetchone() == (2, None, NOW + HOUR)
