"""The page's read models against the real Postgres and MLflow: what ``read_page`` shows equals
what the tables and the registry hold.

A model of its own (``dash_model``, an sklearn copy of churn) keeps the session's other
models' rows out of the figures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relearn.abtest.deploy import start_test
from relearn.analysis.run import latest_analysis, run_daily
from relearn.bootstrap import bootstrap_model
from relearn.dashboard.abtest import read_abtest
from relearn.dashboard.page import read_page
from relearn.dashboard.runs import read_runs
from relearn.health import check_model_health
from relearn.monitoring.alerts import AlertKind, Severity
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.services import Services
from relearn.store import analysis as analysis_store
from relearn.store import requests
from relearn.store.alerts import NewAlert, raise_alert
from relearn.store.db import transaction
from relearn.store.runs import start_run
from tests.integration.traffic import log_traffic, register_copy

pytestmark = pytest.mark.integration

MODEL = "dash_model"


@pytest.fixture(scope="module")
def dash_cfg(model_cfg):
    return type(model_cfg).model_validate(
        {**model_cfg.model_dump(), "name": MODEL, "kind": "sklearn_logreg"}
    )


@pytest.fixture(scope="module")
def shown(dash_cfg, database_url, tracking_uri):
    """Six hours of traffic, one health check, one daily error analysis, one alert and one
    request; then the page, read now."""
    services = Services(database_url, tracking_uri)
    bootstrap_model(services, dash_cfg)
    now = datetime.now(UTC).replace(microsecond=0)
    log_traffic(dash_cfg, database_url, tracking_uri, start=now - timedelta(hours=6), end=now)
    check_model_health(services, dash_cfg, now=now, trigger_key="dash-health")
    run_daily(services, dash_cfg, until=now, analysis_key="dash-daily")
    with transaction(database_url) as connection:
        raise_alert(
            connection,
            NewAlert(
                MODEL, AlertKind.HEALTH_LOW, Severity.WARNING, "dash-subject", "score fell", "see"
            ),
            raised_at=now - timedelta(minutes=5),
            cooldown=timedelta(hours=1),
            trigger_key="dash-alert",
        )
        requests.create_request(
            connection, model_name=MODEL, known_models=[MODEL], reason="from the page test"
        )
    page = read_page(services, dash_cfg, now=now, bucket="hour", mlflow_ui=tracking_uri)
    return page, now


def _one(database_url: str, sql: str, *params):
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def test_deployment_names_the_registry_champion_with_its_links(shown, tracking_uri):
    page, _ = shown
    champion = aliases(registry_client(tracking_uri), MODEL)[CHAMPION]
    [shown_champion] = [a for a in page.deployment.aliases if a.alias == CHAMPION]
    assert shown_champion.version == str(champion)
    assert shown_champion.version_url.endswith(f"/#/models/{MODEL}/versions/{champion}")
    assert shown_champion.run_url is not None and shown_champion.metrics


def test_health_is_the_latest_recorded_check(shown, database_url):
    page, _ = shown
    status, checked_at = _one(
        database_url,
        "SELECT status, checked_at FROM health_checks WHERE model_name = %s "
        "ORDER BY checked_at DESC LIMIT 1",
        MODEL,
    )
    assert (page.health.latest.status, page.health.latest.checked_at) == (status, checked_at)
    assert page.health.history[-1] == page.health.latest


def test_health_shows_the_stored_score_its_parts_and_issues(shown, database_url):
    page, _ = shown
    latest = page.health.latest
    stored = _one(
        database_url,
        "SELECT score, availability, error_score, latency_score, predictions, issues "
        "FROM health_checks WHERE model_name = %s ORDER BY checked_at DESC LIMIT 1",
        MODEL,
    )
    shown_issues = [
        {"part": i.part, "issue": i.issue, "recommendation": i.recommendation}
        for i in latest.issues
    ]
    assert stored[0] is not None and stored[4] > 0
    assert (
        latest.score,
        latest.availability,
        latest.error_score,
        latest.latency_score,
        latest.predictions,
        shown_issues,
    ) == stored
    assert [c.score for c in page.health.history] == [stored[0]]


def test_alerts_list_the_models_alerts_undelivered_ones_as_such(shown):
    page, now = shown
    [alert] = page.alerts
    assert (alert.kind, alert.message, alert.recommendation) == ("health_low", "score fell", "see")
    assert alert.raised_at == now - timedelta(minutes=5) and alert.delivered_at is None


def test_error_analysis_is_the_latest_daily_one(shown, database_url, tracking_uri):
    page, now = shown
    stored = latest_analysis(Services(database_url, tracking_uri), MODEL)
    shown_analysis = page.analysis
    findings = stored.findings
    assert shown_analysis is not None and findings.rows > 0
    assert (shown_analysis.analysis_key, shown_analysis.window_end) == ("dash-daily", now)
    assert (shown_analysis.rows, shown_analysis.errors, shown_analysis.error_rate) == (
        findings.rows,
        findings.errors,
        findings.error_rate,
    )
    assert shown_analysis.ece == findings.calibration.ece
    assert [s.description for s in shown_analysis.segments] == [
        s.description for s in findings.segments
    ][: len(shown_analysis.segments)]
    assert shown_analysis.confusion == findings.confusion[: len(shown_analysis.confusion)]
    assert shown_analysis.suggestions == [s.text for s in findings.suggestions]


def test_trends_count_every_prediction_and_outcome_of_the_window(shown, database_url):
    page, _ = shown
    trends = page.trends
    total, labelled, correct = _one(
        database_url,
        "SELECT count(*), count(actual_label), count(*) FILTER (WHERE actual_label = "
        "predicted_label) FROM prediction_log WHERE model_name = %s "
        "AND predicted_at >= %s AND predicted_at < %s",
        MODEL,
        trends.since,
        trends.until,
    )
    points = [p for arm in trends.arms.values() for p in arm]
    assert total > 0 and sum(p.predictions for p in points) == total
    assert sum(p.labelled for p in points) == labelled
    assert sum(p.correct for p in points) == correct
    assert all(p.start >= trends.since and p.start < trends.until for p in points)


def test_the_filed_request_is_in_the_queue(shown):
    page, _ = shown
    assert [(r.status, r.reason) for r in page.requests] == [("pending", "from the page test")]
    assert page.runs == [] and page.abtest is None


def test_a_started_ab_test_shows_its_split_arms_and_first_decision(
    shown, dash_cfg, database_url, tracking_uri
):
    services = Services(database_url, tracking_uri)
    client = registry_client(tracking_uri)
    version = register_copy(
        dash_cfg, tracking_uri, name=MODEL, source=aliases(client, MODEL)[CHAMPION]
    )
    client.set_registered_model_alias(MODEL, CHALLENGER, version)
    now = datetime.now(UTC)
    started = start_test(
        services, dash_cfg, now=now, trigger_key=f"dash-start-{version}", version=version, by="t"
    )
    with transaction(database_url) as connection:
        view = read_abtest(connection, MODEL, list(dash_cfg.classes), now=now)
    [traffic] = _one(database_url, "SELECT traffic_percent FROM ab_tests WHERE id = %s", view.id)
    assert view.live and view.id == str(started.test_id) and view.status == "running"
    assert (view.challenger_version, view.traffic_percent) == (version, traffic)
    assert [(d.action, d.traffic_after) for d in view.decisions] == [("start", traffic)]
    assert [a.arm for a in view.arms] == ["champion", "challenger"]


def test_a_run_links_its_recorded_dag_run_and_shows_its_holdout_analysis(
    shown, database_url, tracking_uri
):
    _, now = shown
    daily = latest_analysis(Services(database_url, tracking_uri), MODEL)
    url = "https://airflow.example/dags/auto_reinforcement/runs/manual__1"
    with transaction(database_url) as connection:
        run = start_run(
            connection,
            model_name=MODEL,
            trigger_key="dash-run",
            source="manual",
            params={},
            started_at=now,
            dag_id="auto_reinforcement",
            airflow_url=url,
        )
        stored = daily.to_row()
        analysis_store.save_analysis(
            connection,
            analysis_store.AnalysisRow(
                **{
                    **stored.__dict__,
                    "scope": analysis_store.RETRAINING_RUN,
                    "analysis_key": str(run.id),
                    "retraining_run_id": run.id,
                }
            ),
        )
    with transaction(database_url) as connection:
        [shown_run] = read_runs(connection, MODEL, tracking_uri, None)
    assert (shown_run.id, shown_run.airflow_url, shown_run.airflow_run_path) == (run.id, url, None)
    findings = daily.findings
    first = findings.suggestions[0].text if findings.suggestions else None
    assert shown_run.analysis is not None
    assert (
        shown_run.analysis.rows,
        shown_run.analysis.error_rate,
        shown_run.analysis.significant_segments,
        shown_run.analysis.first_suggestion,
    ) == (findings.rows, findings.error_rate, len(findings.segments), first)
