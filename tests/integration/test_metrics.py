"""``/metrics``: the figures equal the database's, the output parses with the Prometheus
client's parser, and the route needs an authenticated Airflow user."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relearn.monitoring.metrics import render_metrics
from relearn.services import Services
from relearn.store.abtests import request_test, update_test
from relearn.store.alerts import NewAlert, raise_alert
from relearn.store.db import transaction
from relearn.store.drift_reports import DriftReportRow, save_report
from relearn.store.health import HealthCheckRow, save_check
from relearn.store.predictions import LoggedPrediction, attach_outcomes, insert_predictions
from relearn.store.runs import complete_run, fail_run, start_run

pytestmark = pytest.mark.integration

# A model of its own (not registered, not configured) at a time of its own: exact figures.
MODEL = f"metrics_probe_{uuid.uuid4().hex[:8]}"
NOW = datetime(2031, 1, 1, 12, tzinfo=UTC)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _row(at: datetime, arm: str, latency: float) -> LoggedPrediction:
    return LoggedPrediction(
        prediction_id=uuid.uuid4(),
        model_name=MODEL,
        model_version="2" if arm == "challenger" else "1",
        unit_id=None,
        predicted_at=at,
        features={"x": 1.0},
        predicted_label="yes",
        confidence=0.9,
        probabilities={"yes": 0.9, "no": 0.1},
        latency_ms=latency,
        served_by=arm,
    )


def _seed(database_url: str) -> None:
    recent = [_row(NOW - timedelta(minutes=30), "champion", float(ms)) for ms in range(1, 21)]
    earlier = [_row(NOW - timedelta(hours=5), "champion", 500.0) for _ in range(5)]
    challenger = [_row(NOW - timedelta(minutes=10), "challenger", 7.0) for _ in range(4)]
    outside = [
        _row(NOW, "champion", 1.0),  # the end is not part of the window
        _row(NOW - timedelta(hours=25), "champion", 1.0),
        _row(NOW - timedelta(minutes=5), "champion", float("nan")),  # counted, no latency
    ]
    labels = [(p.prediction_id, "yes", NOW) for p in recent[:6]]
    labels += [(p.prediction_id, "no", NOW) for p in recent[6:8]]
    labels += [(p.prediction_id, "yes", NOW) for p in earlier]
    labels += [(challenger[0].prediction_id, "no", NOW)]
    with transaction(database_url) as connection:
        insert_predictions(connection, recent + earlier + challenger + outside)
        attach_outcomes(connection, labels)
        save_check(connection, _check(), details={})
        save_report(connection, _drift())
        for status in ("completed", "failed", "running"):
            run = start_run(
                connection,
                model_name=MODEL,
                trigger_key=f"metrics-{status}",
                source="manual",
                params={},
                started_at=NOW - timedelta(hours=3),
            )
            if status == "completed":
                metrics = {"gate": {"blessed": True, "reasons": []}}
                complete_run(
                    connection,
                    run.id,
                    completed_at=NOW - timedelta(hours=2),
                    model_version="2",
                    metrics=metrics,
                )
            elif status == "failed":
                fail_run(connection, run.id, completed_at=NOW - timedelta(hours=1), error="x")
        test = request_test(
            connection,
            model_name=MODEL,
            champion_version="1",
            challenger_version="2",
            stages=[10, 25, 100],
            retraining_run_id=None,
            reason="test",
        )
        update_test(connection, test.id, status="running", traffic_percent=25)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO model_retraining_requests (model_name, status, created_at)"
                " VALUES (%s, 'pending', %s), (%s, 'pending', %s), (%s, 'processing', %s)",
                (MODEL, NOW - timedelta(hours=2), MODEL, NOW - timedelta(minutes=1), MODEL, NOW),
            )
        alert = NewAlert(MODEL, "drift", "warning", "drift_report:x", "drifted", None)
        raise_alert(
            connection, alert, raised_at=NOW - timedelta(hours=1), cooldown=timedelta(0),
            trigger_key="t",
        )  # fmt: skip


def _check() -> HealthCheckRow:
    return HealthCheckRow(
        model_name=MODEL,
        checked_at=NOW - timedelta(minutes=15),
        window_start=NOW - timedelta(hours=24, minutes=15),
        status="degraded",
        champion_version="1",
        score=0.72,
        availability=1.0,
        error_score=0.3,
        latency_score=1.0,
        predictions=25,
        usual_predictions=30.0,
        labelled=13,
        accuracy=0.8,
        reference_accuracy=0.9,
        latency_p95_ms=20.0,
        latency_budget_ms=250.0,
        issues=[],
        trigger_key="metrics-check",
    )


def _drift() -> DriftReportRow:
    return DriftReportRow(
        id=uuid.uuid4(),
        model_name=MODEL,
        model_version="1",
        checked_at=NOW - timedelta(minutes=20),
        window_start=NOW - timedelta(hours=24),
        rows=100,
        labelled_rows=50,
        score=0.4,
        threshold=0.2,
        verdict="drifted",
        drifted_features=["x"],
        features=[],
        prediction=None,
        performance=None,
        action="none",
        action_reason=None,
        report_uri=None,
        retraining_run_id=None,
        trigger_key="metrics-drift",
    )


def test_metrics_equal_the_database(database_url, tracking_uri) -> None:
    _seed(database_url)
    text = render_metrics(Services(database_url, tracking_uri), [MODEL], now=NOW).decode()
    got = _samples(text)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted({"model": MODEL, **labels}.items())))]

    # champion: 21 in the last hour (20 + the NaN-latency one), 26 in the day.
    assert value("relearn_predictions", arm="champion", window="1h") == 21
    assert value("relearn_predictions", arm="champion", window="24h") == 26
    assert value("relearn_predictions", arm="challenger", window="1h") == 4
    assert value("relearn_labelled_predictions", arm="champion", window="1h") == 8
    assert value("relearn_accuracy", arm="champion", window="1h") == pytest.approx(6 / 8)
    assert value("relearn_accuracy", arm="champion", window="24h") == pytest.approx(11 / 13)
    assert value("relearn_accuracy", arm="challenger", window="1h") == 0.0
    # p95 of 1..20 ms (percentile_cont), the NaN left out.
    assert value("relearn_latency_p95_ms", arm="champion") == pytest.approx(19.05)
    assert value("relearn_health_score") == pytest.approx(0.72)
    assert value("relearn_health_part", part="error") == pytest.approx(0.3)
    assert value("relearn_health_status", status="degraded") == 1.0
    assert value("relearn_health_status", status="healthy") == 0.0
    assert value("relearn_drift_score") == pytest.approx(0.4)
    assert value("relearn_drift_verdict", verdict="drifted") == 1.0
    assert value("relearn_retraining_runs", source="manual", status="failed") == 1
    assert value("relearn_retraining_runs", source="manual", status="running") == 1
    assert value("relearn_last_blessed_timestamp_seconds") == (NOW - timedelta(hours=2)).timestamp()
    assert value("relearn_request_queue_depth", status="pending") == 2
    assert value("relearn_request_queue_depth", status="processing") == 1
    assert value("relearn_request_oldest_pending_age_seconds") == 7200
    assert value("relearn_ab_traffic_percent", challenger_version="2", status="running") == 25
    assert value("relearn_alerts_24h", kind="drift") == 1
    # Not registered: the registry answered, and there is no champion.
    assert got[("relearn_registry_up", ())] == 1.0
    assert value("relearn_champion_deployed") == 0.0


def test_an_unreachable_registry_still_serves_the_database_figures(database_url) -> None:
    services = Services(database_url, "http://127.0.0.1:9")  # nothing listens on port 9
    got = _samples(render_metrics(services, [MODEL], now=NOW).decode())
    assert got[("relearn_registry_up", ())] == 0.0
    assert ("relearn_health_score", (("model", MODEL),)) in got


@pytest.fixture(scope="module")
def client(stack, champion):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as test_client:
        yield test_client


def _token(client) -> str:
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "passwords.json"
    username, password = next(iter(json.loads(passwords.read_text()).items()))
    answer = client.post("/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


def test_the_route_needs_a_user_and_serves_the_exposition(client, champion) -> None:
    assert client.get("/relearn/monitoring/metrics").status_code == 401
    answer = client.get(
        "/relearn/monitoring/metrics", headers={"Authorization": f"Bearer {_token(client)}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = _samples(answer.text)
    assert got[("relearn_registry_up", ())] == 1.0
    key = (("model", "churn"), ("version", str(champion.version)))
    assert got[("relearn_champion_info", key)] == 1.0
