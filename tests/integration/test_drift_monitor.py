"""Drift checks end to end: the prediction log in Postgres, profiles in MLflow, real retraining."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from relearn.abtest.champion import set_alias
from relearn.drift.monitor import CheckOptions, DriftCheckError, check
from relearn.drift.reference import load_profile
from relearn.drift.retrain import retrain_options
from relearn.registry import CHALLENGER, aliases, registry_client
from relearn.retraining.loop import reinforce
from relearn.retraining.options import ReinforceOptions
from relearn.services import NoChampionError, Services
from relearn.simulate.world import CovariateShift, World, wide_model_config
from relearn.store import abtests
from relearn.store.db import transaction
from relearn.store.drift_reports import recent_reports
from tests.conftest import ROOT, abort_live_tests, run_cli
from tests.integration.traffic import log_traffic

pytestmark = pytest.mark.integration

# This module's periods (other modules use other months).
WIDE_START = datetime(2026, 4, 1, tzinfo=UTC)
QUIET_HOURS = 48
SHIFT_AT = WIDE_START + timedelta(hours=QUIET_HOURS)
CONCEPT_START = datetime(2026, 4, 10, tzinfo=UTC)
CONCEPT_END = CONCEPT_START + timedelta(hours=30)


@pytest.fixture(scope="module")
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


@pytest.fixture(scope="module", autouse=True)
def no_live_ab_tests(database_url):
    """Earlier modules may leave a churn A/B test pending; here it would mean "cooldown"."""
    abort_live_tests(database_url)


@pytest.fixture(scope="module")
def wide(tracking_uri, database_url):
    """A 23-feature model: 48 quiet hours, then 0.3 sd on a quarter of its numeric features."""
    from relearn.bootstrap import bootstrap_model

    cfg = wide_model_config()
    bootstrap_model(Services(database_url, tracking_uri), cfg)
    shift = CovariateShift(start=SHIFT_AT, features=0.25, shift_std=0.3)
    moved = World(cfg).covariate_features(shift)
    common = {"seed": 3, "per_hour": 300}
    log_traffic(cfg, database_url, tracking_uri, start=WIDE_START, end=SHIFT_AT, **common)
    log_traffic(
        cfg,
        database_url,
        tracking_uri,
        start=SHIFT_AT,
        end=SHIFT_AT + timedelta(hours=2),
        covariate_shift=0.3,
        covariate_features=moved,
        **common,
    )
    return cfg, moved


def _hourly(services, cfg, key: str, now: datetime, **options):
    opts = CheckOptions.from_config(cfg, window_hours=1, dry_run=True, **options)
    return check(services, cfg, opts, trigger_key=f"{key}-{now.isoformat()}", now=now)


def test_the_bootstrap_stored_a_reference_profile(champion, model_cfg, tracking_uri):
    profile = load_profile(tracking_uri, model_cfg.name, champion.version)
    assert set(profile.numeric) | set(profile.categorical) == set(model_cfg.feature_names)
    assert profile.rows == model_cfg.training.reference_rows
    assert 0.6 < profile.reference_accuracy < 1


def test_no_drift_in_48_hourly_checks_rarely_alarms(wide, services):
    cfg, _ = wide
    reports = [
        _hourly(services, cfg, "quiet", WIDE_START + timedelta(hours=h))
        for h in range(1, QUIET_HOURS + 1)
    ]
    assert all(r.rows > 250 for r in reports)
    alarms = [r for r in reports if r.verdict in ("drifted", "decayed")]
    assert len(alarms) <= 1, [(r.verdict, r.drifted_features, r.performance) for r in alarms]


def test_covariate_shift_on_a_quarter_of_the_features_is_caught_within_two_checks(
    wide, services, tracking_uri
):
    cfg, moved = wide
    reports = [_hourly(services, cfg, "shift", SHIFT_AT + timedelta(hours=h)) for h in (1, 2)]
    caught = next((r for r in reports if r.verdict == "drifted"), None)
    assert caught is not None, [(r.score, r.drifted_features) for r in reports]
    assert set(moved) <= set(caught.drifted_features)
    assert caught.score >= caught.threshold
    assert caught.action == "dry_run" and "drift_triggered" in caught.action_reason
    # The score is explained per feature, and the champion's accuracy is estimated beside it.
    by_name = {f["name"]: f for f in caught.features}
    assert sum(f["contribution"] for f in caught.features) >= caught.score
    assert all(by_name[name]["weight"] > 0 for name in moved)
    champion = caught.estimate[0]
    assert champion["role"] == "champion" and champion["version"] == caught.model_version
    assert 0.5 < champion["estimated_accuracy"] < 1
    # The HTML report is in MLflow.
    run_id = caught.report_uri.removeprefix("runs:/").split("/")[0]
    page = registry_client(tracking_uri).download_artifacts(run_id, "drift_report.html")
    text = Path(page).read_text()
    assert "data:image/png;base64," in text and moved[0] in text
    assert "contribution" in text and "estimated accuracy" in text


def test_a_check_runs_once_per_trigger_key(wide, services, database_url):
    cfg, _ = wide
    now = SHIFT_AT + timedelta(hours=1)
    first = _hourly(services, cfg, "again", now)
    second = _hourly(services, cfg, "again", now, threshold=0.9)
    assert second == first
    with transaction(database_url) as connection:
        keys = [r.trigger_key for r in recent_reports(connection, cfg.name, limit=500)]
    assert keys.count(first.trigger_key) == 1


def test_too_few_rows_give_no_verdict(wide, services):
    cfg, _ = wide
    report = _hourly(services, cfg, "sparse", WIDE_START + timedelta(hours=5), min_rows=10_000)
    assert report.verdict == "insufficient_data" and report.score is None
    assert report.action == "none"


@pytest.fixture(scope="module")
def concept_window(champion, model_cfg, database_url, tracking_uri):
    """A day as usual, then 30 hours in which the right answers changed but the inputs did not."""
    before = CONCEPT_START - timedelta(hours=24)
    log_traffic(model_cfg, database_url, tracking_uri, start=before, end=CONCEPT_START, seed=20)
    return log_traffic(
        model_cfg,
        database_url,
        tracking_uri,
        start=CONCEPT_START,
        end=CONCEPT_END,
        concept_shift=1.0,
        seed=21,
    )


def test_a_decay_retraining_is_asked_to_learn_from_the_rows_since_the_decline(
    concept_window, services, model_cfg
):
    # 14 h after the change, the check's window holds 10 h of the old concept: the retraining
    # it asks for reads the last ~14 h, not drift.retrain_lookback_days.
    options = CheckOptions.from_config(model_cfg)
    now = CONCEPT_START + timedelta(hours=14)
    report = check(services, model_cfg, options, trigger_key="concept-early", now=now)
    assert report.verdict == "decayed" and report.action == "retrain", report.action_reason
    assert 13 <= report.performance["changed_hours_ago"] <= 15, report.performance
    wanted = retrain_options(model_cfg, report)
    assert 13 <= wanted["lookback_hours"] <= 15
    assert wanted["confidence_threshold"] == model_cfg.drift.decay_confidence_threshold
    factor = model_cfg.drift.decay_learning_rate_factor
    assert wanted["learning_rate"] == pytest.approx(model_cfg.training.learning_rate * factor)


def test_concept_drift_is_caught_by_performance_then_retrained_and_handed_to_ab(
    concept_window, services, model_cfg, database_url, tracking_uri
):
    options = CheckOptions.from_config(model_cfg)
    report = check(services, model_cfg, options, trigger_key="concept-1", now=CONCEPT_END)
    assert report.verdict == "decayed", report.performance
    assert len(report.drifted_features) <= 1  # the inputs did not move
    performance = report.performance
    assert performance["labelled_rows"] >= model_cfg.drift.min_labelled_rows
    assert performance["reference_accuracy"] - performance["accuracy"] >= 0.05
    assert report.action == "retrain" and report.action_reason == "decay_triggered"

    run_options = ReinforceOptions.from_config(
        model_cfg, **{**retrain_options(model_cfg, report), "epochs": 15}
    )
    run = reinforce(
        services, model_cfg, run_options, trigger_key="concept-retrain", now=CONCEPT_END
    )
    assert run.source == "decay_triggered" and run.status == "completed", run.metrics
    assert run.metrics["gate"]["blessed"], run.metrics["gate"]
    # The window started at the decline (the day before it is outside): every labelled row
    # since then is a lesson (all errors, all correct rows to replay) or the holdout.
    hours = run_options.lookback_hours
    assert hours is not None and hours <= 25
    since = CONCEPT_END - timedelta(hours=hours)
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM prediction_log WHERE model_name = %s AND predicted_at >= %s "
            "AND predicted_at < %s AND actual_label IS NOT NULL",
            (model_cfg.name, since, CONCEPT_END),
        )
        labelled = cursor.fetchone()[0]
    assert 0.9 * labelled <= sum(run.metrics["dataset"].values()) <= labelled
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT retraining_run_id FROM drift_reports WHERE id = %s", (str(report.id),)
        )
        assert cursor.fetchone()[0] == run.id
        cursor.execute(
            "SELECT status, challenger_version, stages FROM ab_tests WHERE retraining_run_id = %s",
            (str(run.id),),
        )
        assert cursor.fetchall() == [("pending", run.model_version, model_cfg.abtest.stages)]
    assert aliases(registry_client(tracking_uri), model_cfg.name)[CHALLENGER] == run.model_version
    # The new version carries its own profile, built on the recent (drifted) holdout.
    profile = load_profile(tracking_uri, model_cfg.name, run.model_version)
    assert profile.reference_accuracy == pytest.approx(run.metrics["holdout"]["accuracy"])

    # Next hour: still decayed (the champion did not change), but the model cools down.
    later = check(
        services, model_cfg, options, trigger_key="concept-2", now=CONCEPT_END + timedelta(hours=1)
    )
    assert later.verdict == "decayed" and later.action == "cooldown"
    assert "A/B test" in later.action_reason
    # Later modules share this model: its proven candidate would be promoted (offline) as
    # soon as any of them starts the pending test.
    with transaction(database_url) as connection:
        pending = abtests.live_test(connection, model_cfg.name, (abtests.PENDING,))
        abtests.update_test(connection, pending.id, status=abtests.ABORTED)
    set_alias(services, model_cfg.name, CHALLENGER, None, by="test", reason="test isolation")


def test_dry_run_reports_without_acting(concept_window, services, model_cfg):
    options = CheckOptions.from_config(model_cfg, dry_run=True)
    report = check(services, model_cfg, options, trigger_key="concept-dry", now=CONCEPT_END)
    assert report.verdict == "decayed" and report.action == "dry_run"


def test_a_version_without_profile_is_a_clear_error(services, tracking_uri, model_cfg, champion):
    import mlflow

    from relearn.registry import model_uri
    from relearn.retraining.artifacts import load_registered_classifier
    from relearn.training.pyfunc import log_pyfunc_model

    classifier = load_registered_classifier(tracking_uri, model_uri(model_cfg.name, "1"))
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_name="no-profile"):
        info = log_pyfunc_model(classifier, model_cfg, registered_model_name="no_profile")
    cfg = model_cfg.model_copy(update={"name": "no_profile"})
    client = registry_client(tracking_uri)
    client.set_registered_model_alias("no_profile", "champion", info.registered_model_version)
    with pytest.raises(DriftCheckError, match="no drift reference profile"):
        check(services, cfg, CheckOptions.from_config(cfg), trigger_key="x", now=CONCEPT_END)


def test_a_model_without_champion_is_no_champion_error(services, model_cfg, tmp_path):
    """No champion is NoChampionError (a skip in Airflow), not a failure; one CLI line."""
    cfg = model_cfg.model_copy(update={"name": "drift_orphan"})
    with pytest.raises(NoChampionError, match="'drift_orphan' has no champion"):
        check(services, cfg, CheckOptions.from_config(cfg), trigger_key="orphan", now=CONCEPT_END)
    data = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    data["models"][0]["name"] = "drift_orphan"
    config = tmp_path / "relearn.yaml"
    config.write_text(yaml.safe_dump(data))
    result = run_cli(
        "drift", "--model", "drift_orphan", "--check-once", env={"RELEARN_CONFIG": str(config)}
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "relearn: drift_orphan: 'drift_orphan' has no champion yet: "
        "run `relearn bootstrap --model drift_orphan`"
    ]


def test_cli_check_once_dry_run(concept_window, model_cfg):
    result = run_cli("drift", "--model", model_cfg.name, "--check-once", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model_name"] == model_cfg.name
    assert report["action"] in ("none", "dry_run")
    assert report["verdict"] in ("stable", "drifted", "decayed", "insufficient_data")
    history = run_cli("drift", "--model", model_cfg.name, "--history", "3", "--json")
    assert history.returncode == 0, history.stderr
    newest = json.loads(history.stdout.strip().splitlines()[0])
    assert newest["id"] == report["id"]  # the check just made is the latest one
