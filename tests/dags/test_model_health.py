"""The model_health DAG runs for real (``dag.test()`` on the Postgres metadata DB): it scores
every model, stores the score and its parts as columns, and sends each alert once -- to a
webhook receiver and an SMTP server started by the test -- and not again within the cooldown."""

from __future__ import annotations

import json
import uuid

import pytest

from relearn.store.db import transaction
from relearn.store.runs import fail_run, start_run
from tests.conftest import ROOT
from tests.receivers import smtp_receiver, webhook_receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def channels(monkeypatch):
    """Both alert connections of ``relearn_airflow.notifiers``, pointing at local fakes."""
    with webhook_receiver() as webhook, smtp_receiver() as smtp:
        port = webhook.server_address[1]
        monkeypatch.setenv(
            "AIRFLOW_CONN_RELEARN_ALERTS_WEBHOOK", f"http://:s3cret@127.0.0.1:{port}/alerts"
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_RELEARN_ALERTS_SMTP",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": smtp.server_address[1],
                    "extra": {
                        "disable_tls": True,
                        "disable_ssl": True,
                        "from_email": "relearn@example.com",
                        "to": "ops@example.com, ml@example.com",
                        "retry_limit": 0,
                    },
                }
            ),
        )
        yield webhook, smtp


def _failed_run(database_url: str, model: str) -> str:
    """A retraining run of ``model`` that failed just now (what the alert is about)."""
    from relearn.services import utcnow

    with transaction(database_url) as connection:
        run = start_run(
            connection,
            model_name=model,
            trigger_key=f"test-health-{uuid.uuid4()}",
            source="manual",
            params={},
            started_at=utcnow(),
        )
        fail_run(connection, run.id, completed_at=utcnow(), error="disk full")
    return str(run.id)


def test_health_dag_scores_and_alerts_once(
    champion, database_url, tracking_uri, model_cfg, channels
):
    from datetime import UTC, datetime

    import numpy as np
    from airflow.dag_processing.dagbag import DagBag

    from relearn.services import Services
    from relearn.serving.predictor import Predictor
    from relearn.simulate.world import World

    webhook, smtp = channels
    frame, _ = World(model_cfg).sample(20, datetime.now(UTC), np.random.default_rng(9))
    with Predictor(Services(database_url, tracking_uri), model_cfg) as predictor:
        predictor.predict(frame)
    _failed_run(database_url, model_cfg.name)  # at least one failed run in the hour, alone too
    with transaction(database_url) as connection, connection.cursor() as cursor:
        # Earlier modules' health runs may have alerted within the cooldown: start from none.
        cursor.execute("DELETE FROM alerts WHERE model_name IN ('churn', 'credit_risk')")

    dag = DagBag(dag_folder=str(ROOT / "dags" / "model_health.py")).dags["model_health"]
    run = dag.test()
    assert run.state == "success"
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, status, champion_version, score, availability, error_score,"
            " latency_score, predictions, latency_budget_ms, issues, details"
            " FROM health_checks WHERE trigger_key = %s",
            (run.run_id,),
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    assert sorted(rows) == ["churn", "credit_risk"]
    # credit_risk has its champion but served nothing: availability 0, score 0.6, degraded.
    status, _, score, availability, *_, issues, _ = rows["credit_risk"]
    assert (status, score, availability) == ("degraded", 0.6, 0.0), issues
    assert issues[0]["part"] == "availability"
    assert issues[0]["issue"].startswith("0 predictions in the last 24 h")
    status, version, score, _, _, _, predictions, budget, issues, details = rows["churn"]
    assert (status, version) == ("healthy", champion.version), issues
    assert score >= 0.8
    assert predictions >= 20
    assert budget == model_cfg.health.latency_budget_ms
    assert details["reference_accuracy"] == pytest.approx(champion.metrics["accuracy"], abs=1e-6)

    # Matched by model and kind: another module's health check of the same hour may be the one
    # the (single) health alert names.
    expected = (("credit_risk", "health_low"), (model_cfg.name, "retraining_failed"))
    for model, kind in expected:
        posts = [
            p
            for p in webhook.received
            if (p["json"]["model_name"], p["json"]["kind"]) == (model, kind)
        ]
        assert len(posts) == 1, webhook.received
        assert posts[0]["path"] == "/alerts"
        assert posts[0]["headers"]["Authorization"] == "Bearer s3cret"
    # Within the cooldown one failed run alerts per model: ours, or an earlier module's.
    assert (
        "retraining run failed" in _posted(webhook, "retraining_failed", model_cfg.name)["message"]
    )
    health = _posted(webhook, "health_low", "credit_risk")
    assert health["subject"].startswith("health_check:")
    assert "0 predictions" in health["message"]
    mails = [m for m in smtp.received if "credit_risk: health_low" in m]
    assert len(mails) == 1, smtp.received
    assert "ops@example.com" in mails[0]
    assert len([m for m in smtp.received if f"{model_cfg.name}: retraining_failed" in m]) == 1

    # The next run: credit_risk is still degraded (a new check, within the cooldown) and the
    # failed run is the same event -- nothing is raised or sent again.
    received = (len(webhook.received), len(smtp.received))
    second = dag.test()
    assert second.state == "success"
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE kind = 'health_low' AND model_name = 'credit_risk'),"
            " count(*) FILTER (WHERE kind = 'retraining_failed' AND model_name = %s),"
            " count(*) FILTER (WHERE delivered_at IS NULL) FROM alerts",
            (model_cfg.name,),
        )
        assert cursor.fetchone() == (1, 1, 0)
    new_posts = webhook.received[received[0] :]
    assert not [p for p in new_posts if p["json"]["kind"] in ("health_low", "retraining_failed")]
    assert not [m for m in smtp.received[received[1] :] if "credit_risk: health_low" in m]


def _posted(webhook, kind: str, model: str) -> dict:
    return next(
        p["json"]
        for p in webhook.received
        if p["json"]["kind"] == kind and p["json"]["model_name"] == model
    )
