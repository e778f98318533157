"""A regime that returns brings back the champion that served it (issue 13 §1, recurring
change), against the real Postgres and MLflow: the decayed champion's check makes the previous
champion champion again instead of asking for a retraining, with the evidence in the alias
history; with ``drift.comeback_versions`` 0, or with a test under way, it retrains as before.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import mlflow
import numpy as np
import pytest

from relearn.abtest.aliases import set_first_champion
from relearn.abtest.champion import set_champion
from relearn.config import Feature, FeatureType
from relearn.drift.monitor import CheckOptions, check
from relearn.drift.reference import log_profile
from relearn.evaluation import classification_metrics
from relearn.registry import CHAMPION, aliases, model_uri, registry_client
from relearn.retraining.artifacts import load_registered_classifier
from relearn.services import Services
from relearn.simulate.world import ConceptShift, World
from relearn.store import abtests
from relearn.store import aliases as alias_store
from relearn.store.db import transaction
from relearn.training.factory import new_classifier
from relearn.training.pyfunc import log_pyfunc_model
from tests.integration.traffic import serve_by_split

pytestmark = pytest.mark.integration

# This module's period: 2025-08 (in the past: validation refuses future rows).
T0 = datetime(2025, 8, 1, tzinfo=UTC)
UNITS = [f"unit-{i:03d}" for i in range(100)]


@pytest.fixture(scope="module")
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


def _register(cfg, services, classifier, world: World, run_name: str) -> str:
    """``classifier`` as a new version of ``cfg.name``, with its reference profile."""
    frame, labels = world.sample(2000, T0, np.random.default_rng(7))
    features = frame[cfg.feature_names]
    proba = classifier.predict_proba(features)
    accuracy = classification_metrics(list(labels), proba, cfg.classes)["accuracy"]
    mlflow.set_tracking_uri(services.tracking_uri)
    mlflow.set_experiment(f"relearn/{cfg.name}")
    with mlflow.start_run(run_name=run_name):
        log_profile(cfg, features, proba, accuracy, predict=classifier.predict_proba)
        info = log_pyfunc_model(classifier, cfg, registered_model_name=cfg.name)
    return str(info.registered_model_version)


def _another_schema(cfg, services) -> str:
    """A version of ``cfg.name`` trained with one more feature than today's rows have."""
    wider = cfg.model_copy(
        update={"features": [*cfg.features, Feature(name="extra", type=FeatureType.NUMERIC)]}
    )
    rng = np.random.default_rng(9)
    frame, labels = World(cfg).sample(2000, T0, rng)
    frame = frame.assign(extra=rng.normal(size=len(frame)))
    classifier = new_classifier(wider)
    classifier.fit(frame, list(labels))
    mlflow.set_tracking_uri(services.tracking_uri)
    mlflow.set_experiment(f"relearn/{cfg.name}")
    with mlflow.start_run(run_name=f"{cfg.name}-another-schema"):
        info = log_pyfunc_model(classifier, wider, registered_model_name=cfg.name)
    return str(info.registered_model_version)


def _seasons(model_cfg, champion, services, name: str, *, older: bool = False, **drift):
    """v1, fit to the other regime, was champion; v2 (the usual regime's model) replaced it
    (with ``older``, v1 replaced a version of another schema). Then the other regime returns:
    6 h of usual traffic, 6 h of the other, outcomes at once."""
    cfg = model_cfg.model_copy(
        update={"name": name, "drift": model_cfg.drift.model_copy(update=drift)}
    )
    first = _another_schema(cfg, services) if older else None
    usual = World(cfg)
    other = usual.with_drift(ConceptShift(T0 - timedelta(days=30), 1.0))
    frame, labels = other.sample(4000, T0, np.random.default_rng(5))
    seasonal = new_classifier(cfg)
    seasonal.fit(
        frame[:3200], list(labels[:3200]), val_frame=frame[3200:], val_labels=list(labels[3200:])
    )
    v1 = _register(cfg, services, seasonal, other, f"{name}-other-regime")
    usual_model = load_registered_classifier(
        services.tracking_uri, model_uri(model_cfg.name, champion.version)
    )
    v2 = _register(cfg, services, usual_model, usual, f"{name}-usual-regime")
    if first is None:
        set_first_champion(services, cfg.name, v1, reason="the other regime's model")
    else:
        set_first_champion(services, cfg.name, first, reason="a model of another schema")
        set_champion(services, cfg, version=v1, by="test", reason="the other regime's model")
    set_champion(services, cfg, version=v2, by="test", reason="the usual regime is back")
    start = T0 + timedelta(days=1)
    serve_by_split(cfg, services, usual, units=UNITS, start=start, hours=6)
    serve_by_split(cfg, services, other, units=UNITS, start=start + timedelta(hours=6), hours=6)
    return cfg, v1, v2, start + timedelta(hours=12)


def _check(services, cfg, key: str, now: datetime):
    return check(services, cfg, CheckOptions.from_config(cfg), trigger_key=key, now=now)


def test_a_decayed_champion_makes_way_for_the_previous_champion(model_cfg, champion, services):
    cfg, v1, v2, now = _seasons(model_cfg, champion, services, "cb_back")
    report = _check(services, cfg, "cb-back-1", now)
    assert (report.verdict, report.action) == ("decayed", "comeback"), report.action_reason
    assert report.action_reason.startswith(f"comeback of v{v1}, a previous champion")
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v1
    with transaction(services.database_url) as connection:
        last = alias_store.history(connection, cfg.name, CHAMPION)[-1]
    assert (last.version, last.previous_version, last.changed_by) == (v1, v2, "drift monitor")
    assert "McNemar" in last.reason and "gates passed" in last.reason
    # The restored champion has its cooldown, as a retraining's candidate would: the usual
    # regime (v1's weak one) is served to it for 6 h, and its decline waits.
    serve_by_split(cfg, services, World(cfg), units=UNITS, start=now, hours=6)
    again = _check(services, cfg, "cb-back-2", now + timedelta(hours=6))
    assert (again.verdict, again.action) == ("decayed", "cooldown"), again.action_reason
    assert "came back" in again.action_reason


def test_a_previous_champion_of_another_schema_is_skipped(model_cfg, champion, services):
    """The oldest previous champion needs a feature today's rows lack: it is not scored (it
    could not be), and the other previous champion still comes back."""
    cfg, v1, _, now = _seasons(model_cfg, champion, services, "cb_schema", older=True)
    report = _check(services, cfg, "cb-schema-1", now)
    assert (report.verdict, report.action) == ("decayed", "comeback"), report.action_reason
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v1


def test_without_comeback_versions_or_with_a_test_under_way_the_champion_is_retrained(
    model_cfg, champion, services
):
    cfg, _, v2, now = _seasons(model_cfg, champion, services, "cb_off", comeback_versions=0)
    report = _check(services, cfg, "cb-off-1", now)
    assert (report.verdict, report.action) == ("decayed", "retrain"), report.action_reason
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v2

    cfg, _, v2, now = _seasons(model_cfg, champion, services, "cb_busy")
    with transaction(services.database_url) as connection:
        test = abtests.request_test(
            connection,
            model_name=cfg.name,
            champion_version=v2,
            challenger_version="cb-candidate",
            stages=cfg.abtest.stages,
            retraining_run_id=None,
            reason="a candidate under test",
        )
        abtests.update_test(connection, test.id, status=abtests.RUNNING)
    report = _check(services, cfg, "cb-busy-1", now)
    assert (report.verdict, report.action) == ("decayed", "retrain"), report.action_reason
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v2


def _hostile_rows(services, cfg, version: str, at: datetime) -> None:
    """Rows another team's service wrote, labelled: a required numeric feature missing, and
    one given as the text "Infinity"."""
    numeric = next(f.name for f in cfg.features if f.type is FeatureType.NUMERIC)
    others = {name: 1.0 for name in cfg.feature_names if name != numeric}
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        for features in (others, {**others, numeric: "Infinity"}):
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version,"
                " predicted_at, features, predicted_label, confidence, actual_label, outcome_at,"
                " served_by) VALUES (%s, %s, %s, %s, %s::jsonb, %s, 0.9, %s, %s, 'champion')",
                (
                    str(uuid.uuid4()),
                    cfg.name,
                    version,
                    at,
                    json.dumps(features),
                    cfg.classes[0],
                    cfg.classes[1],
                    at,
                ),
            )


def test_a_row_no_version_can_score_does_not_stop_the_comeback(model_cfg, champion, services):
    """The drift window keeps rows a retraining would quarantine; scoring them would fail."""
    cfg, v1, v2, now = _seasons(model_cfg, champion, services, "cb_hostile")
    _hostile_rows(services, cfg, v2, now - timedelta(hours=1))
    report = _check(services, cfg, "cb-hostile-1", now)
    assert (report.verdict, report.action) == ("decayed", "comeback"), report.action_reason
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v1


def test_a_version_rolled_back_by_a_person_or_a_team_needing_approval_gets_no_comeback(
    model_cfg, champion, services
):
    cfg, v1, v2, now = _seasons(model_cfg, champion, services, "cb_rolled")
    set_champion(services, cfg, version=v1, by="test", reason="tried again")
    set_champion(services, cfg, version=v2, rollback=True, by="oncall", reason="v1 leaks data")
    report = _check(services, cfg, "cb-rolled-1", now)
    assert (report.verdict, report.action) == ("decayed", "retrain"), report.action_reason
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v2

    approval = {"abtest": model_cfg.abtest.model_copy(update={"require_approval": True})}
    cfg, _, v2, now = _seasons(model_cfg, champion, services, "cb_approval")
    cfg = cfg.model_copy(update=approval)
    report = _check(services, cfg, "cb-approval-1", now)
    assert (report.verdict, report.action) == ("decayed", "retrain"), report.action_reason
    assert aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION] == v2
