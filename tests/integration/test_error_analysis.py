"""Error analyses against the real Postgres and MLflow: a day of the log, a retraining run."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from relearn.analysis.report import AnalysisStatus, Role
from relearn.analysis.run import ARTIFACT_DIR, Scope, daily_analysis, latest_analysis, run_daily
from relearn.config import FeatureType
from relearn.registry import registry_client
from relearn.retraining.loop import reinforce
from relearn.retraining.options import ReinforceOptions
from relearn.services import NoChampionError, Services
from relearn.simulate.world import World
from relearn.store import abtests
from relearn.store.analysis import DAILY, RETRAINING_RUN, get_analysis
from relearn.store.db import transaction
from tests.conftest import abort_live_tests, run_cli
from tests.integration.traffic import log_traffic

pytestmark = pytest.mark.integration

# This module's periods (other modules use other months).
DAY_END = datetime(2026, 10, 25, tzinfo=UTC)
RUN_END = datetime(2026, 10, 22, tzinfo=UTC)
ROWS = 4000
CHALLENGER = "error-analysis-test"


@pytest.fixture(scope="module")
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


def _planted(model_cfg, frame):
    """The bad segment, whatever the schema: the first categorical feature at its most common
    value and the first numeric feature in its lowest quintile."""
    categorical = next(f.name for f in model_cfg.features if f.type is FeatureType.CATEGORICAL)
    numeric = next(f.name for f in model_cfg.features if f.type is FeatureType.NUMERIC)
    value = frame[categorical].mode()[0]
    low = frame[numeric] < frame[numeric].quantile(0.2)
    return ((frame[categorical] == value) & low).to_numpy(), categorical, str(value), numeric


def _log(database_url, model_cfg, version, frame, actual, wrong, *, start, served_by):
    """Labelled predictions of ``version``: the wrong ones name the next class."""
    classes = model_cfg.classes
    other = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}
    stamps = [start + timedelta(seconds=20 * i) for i in range(len(frame))]
    records = frame.to_dict(orient="records")
    with transaction(database_url) as connection, connection.cursor() as cursor:
        for features, truth, bad, at in zip(records, actual, wrong, stamps, strict=True):
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version, "
                "predicted_at, features, predicted_label, confidence, served_by, actual_label, "
                "outcome_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    str(uuid.uuid4()),
                    model_cfg.name,
                    str(version),
                    at,
                    json.dumps(features),
                    other[truth] if bad else truth,
                    0.9,
                    served_by,
                    truth,
                    at + timedelta(hours=1),
                ),
            )


def _hostile(database_url, model_cfg, version, at):
    """Rows other teams' producers wrote: four unsound, one with a numeric as a string."""
    numeric = next(f.name for f in model_cfg.features if f.type is FeatureType.NUMERIC)
    first = model_cfg.classes[0]
    rows = [
        ("[1, 2]", first, 0.9, first, at),  # not an object
        ("{}", first, float("nan"), first, at),  # NaN confidence
        ("{}", "no-such-class", 0.9, first, at),  # unknown label
        ("{}", first, 0.9, first, at - timedelta(days=3)),  # outcome before the prediction
        (json.dumps({numeric: "lots"}), first, 0.9, first, at + timedelta(hours=1)),
    ]
    with transaction(database_url) as connection, connection.cursor() as cursor:
        for features, predicted, confidence, actual, outcome_at in rows:
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version, "
                "predicted_at, features, predicted_label, confidence, actual_label, outcome_at)"
                " VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
                (
                    str(uuid.uuid4()),
                    model_cfg.name,
                    str(version),
                    at,
                    features,
                    predicted,
                    confidence,
                    actual,
                    outcome_at,
                ),
            )


@pytest.fixture(scope="module")
def planted_day(champion, model_cfg, database_url):
    """A day of the champion's traffic with a planted bad segment, hostile rows, and a live
    challenger that errs at the base rate everywhere (it fixes the segment)."""
    rng = np.random.default_rng(12)
    start = DAY_END - timedelta(hours=23)
    frame, actual = World(model_cfg).sample(ROWS, start, rng)
    bad, categorical, value, numeric = _planted(model_cfg, frame)
    wrong = np.where(bad, rng.random(ROWS) < 0.5, rng.random(ROWS) < 0.1)
    _log(
        database_url,
        model_cfg,
        champion.version,
        frame,
        actual,
        wrong,
        start=start,
        served_by="champion",
    )
    _hostile(database_url, model_cfg, champion.version, start + timedelta(minutes=5))
    frame, actual = World(model_cfg).sample(ROWS // 2, start, rng)
    _log(
        database_url,
        model_cfg,
        CHALLENGER,
        frame,
        actual,
        rng.random(ROWS // 2) < 0.1,
        start=start,
        served_by="challenger",
    )
    abort_live_tests(database_url, model_cfg.name)
    with transaction(database_url) as connection:
        test = abtests.request_test(
            connection,
            model_name=model_cfg.name,
            champion_version=str(champion.version),
            challenger_version=CHALLENGER,
            stages=[10, 50],
            retraining_run_id=None,
            reason="error analysis test",
        )
        abtests.update_test(connection, test.id, status="running", traffic_percent=10)
    yield categorical, value, numeric
    with transaction(database_url) as connection:
        abtests.update_test(connection, test.id, status="aborted")


def test_daily_analysis_finds_the_planted_segment_and_the_challenger_fix(
    services, model_cfg, champion, planted_day
):
    categorical, value, numeric = planted_day
    analysis = run_daily(services, model_cfg, until=DAY_END, analysis_key="test-day")

    findings = analysis.findings
    assert findings.status is AnalysisStatus.ANALYSED
    assert analysis.champion_version == str(champion.version)
    # Four unsound rows left out and counted; the string in a numeric feature is "missing".
    assert analysis.excluded_rows == 4
    assert findings.rows == ROWS + 1
    top = findings.segments[0]
    assert {c.feature for c in top.conditions} == {categorical, numeric}, top.description
    assert f"{categorical}={value}" in top.description
    assert top.error_rate == pytest.approx(0.5, abs=0.12)
    assert top.q_value <= 0.05 and top.ci_low > findings.error_rate
    assert (analysis.compared_role, analysis.compared_version) == (Role.CHALLENGER, CHALLENGER)
    assert top.compared is not None and top.compared.error_rate < top.error_rate - 0.2
    assert "the challenger fixes" in findings.suggestions[0].text
    assert findings.calibration is not None and findings.calibration.gap > 0

    # Stored once per key (a retry rewrites it) and read back as the same typed result.
    again = run_daily(services, model_cfg, until=DAY_END, analysis_key="test-day")
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM error_analyses WHERE model_name = %s AND analysis_key = %s",
            (model_cfg.name, "test-day"),
        )
        assert cursor.fetchone()[0] == 1
        row = get_analysis(connection, model_cfg.name, DAILY, "test-day")
    assert row is not None and row.significant_segments == len(findings.segments)
    latest = latest_analysis(services, model_cfg.name, Scope.DAILY)
    assert latest is not None and latest.findings == again.findings


def test_the_cli_prints_segments_and_suggestions(services, model_cfg, planted_day):
    categorical, value, numeric = planted_day
    since = (DAY_END - timedelta(hours=23)).isoformat()
    result = run_cli(
        "analyze", "--model", model_cfg.name, "--since", since, "--until", DAY_END.isoformat()
    )
    assert result.returncode == 0, result.stderr
    segments = [line for line in result.stdout.splitlines() if " rows  q=" in line]
    assert f"{categorical}={value}" in segments[0] and f"{numeric} < " in segments[0], result.stdout
    assert "1. " in result.stdout and "the challenger fixes" in result.stdout
    assert "4 unsound rows left out" in result.stdout

    # The command stores nothing; --latest prints what the DAG (here: run_daily) stored.
    stored = run_daily(services, model_cfg, until=DAY_END, analysis_key="test-cli")
    latest = run_cli("analyze", "--model", model_cfg.name, "--latest", "--json")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout) == stored.findings.to_dict()

    bad = run_cli("analyze", "--model", model_cfg.name, "--since", "yesterday")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "ISO 8601" in bad.stderr


def test_a_model_without_champion_is_no_champion_error(services, model_cfg):
    stranger = model_cfg.model_copy(update={"name": "never_bootstrapped"})
    with pytest.raises(NoChampionError):
        daily_analysis(services, stranger, until=DAY_END, analysis_key="test-none")
    assert latest_analysis(services, "never_bootstrapped") is None


def test_a_retraining_run_stores_its_holdout_analysis_and_artifacts(
    services, model_cfg, champion, database_url, tracking_uri
):
    log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=RUN_END - timedelta(days=1),
        end=RUN_END,
        concept_shift=1.0,
        seed=21,
    )
    options = ReinforceOptions.from_config(model_cfg, lookback_days=1, epochs=1, dry_run=True)
    run = reinforce(services, model_cfg, options, trigger_key="test-error-analysis", now=RUN_END)

    with transaction(database_url) as connection:
        row = get_analysis(connection, model_cfg.name, RETRAINING_RUN, str(run.id))
    assert row is not None, run
    assert row.retraining_run_id == run.id
    assert row.champion_version == str(champion.version)
    assert row.compared_role == Role.CANDIDATE.value
    assert row.window_end == RUN_END and row.window_start == RUN_END - timedelta(days=1)
    assert row.rows >= 100 and row.errors > 0
    # The candidate was scored on the same holdout rows as the champion.
    segments = row.findings["segments"]
    assert all(s["compared"]["rows"] == s["rows"] for s in segments)
    assert row.findings["compared"]["rows"] == row.rows
    client = registry_client(tracking_uri)
    mlflow_run_id = row.artifact_uri.split("/artifacts/")[0].rsplit("/", 1)[-1]
    names = {a.path for a in client.list_artifacts(mlflow_run_id, ARTIFACT_DIR)}
    assert names == {f"{ARTIFACT_DIR}/findings.json", f"{ARTIFACT_DIR}/reliability.svg"}
