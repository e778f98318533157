"""The loop's decisions after a change (issue 13 §1), against the real Postgres and MLflow:
a candidate no better than the champion is not blessed, an inconclusive A/B test ends, a
decisive one promotes within hours, and the drift check sees outcomes that arrive late.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import mlflow
import numpy as np
import pytest

from relearn.abtest import policy
from relearn.abtest.aliases import PREVIOUS_CHAMPION
from relearn.abtest.decision import apply_decision
from relearn.abtest.deploy import check_test, start_test
from relearn.abtest.replace import find_replacement
from relearn.drift.monitor import CheckOptions, check
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.retraining.artifacts import RUN_TAG
from relearn.retraining.loop import reinforce
from relearn.retraining.options import ReinforceOptions
from relearn.services import Services
from relearn.serving.predictor import Predictor
from relearn.simulate.traffic import simulate_traffic
from relearn.simulate.world import ConceptShift, World
from relearn.store import abtests, runs
from relearn.store.db import transaction
from relearn.training.factory import new_classifier
from relearn.training.pyfunc import log_pyfunc_model
from tests.conftest import abort_live_tests
from tests.integration.traffic import log_traffic, register_copy, serve_by_split

pytestmark = pytest.mark.integration

# This module's periods: 2025-05 .. 2025-06 (in the past: validation refuses future rows).
T0 = datetime(2025, 5, 1, tzinfo=UTC)
UNITS = [f"unit-{i:04d}" for i in range(2000)]


@pytest.fixture(scope="module")
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


def _model(model_cfg, name: str):
    return model_cfg.model_copy(update={"name": name})


def _serve(cfg, services, world: World, start: datetime, hours: int) -> None:
    serve_by_split(cfg, services, world, units=UNITS, start=start, hours=hours)


def _aliases(services, name: str) -> dict[str, str]:
    return aliases(registry_client(services.tracking_uri), name)


def test_an_inconclusive_test_is_rolled_back_after_max_duration(
    model_cfg, champion, services, tracking_uri
):
    cfg = _model(model_cfg, "dq_aa")
    v1 = register_copy(model_cfg, tracking_uri, name=cfg.name, source=champion.version)
    v2 = register_copy(model_cfg, tracking_uri, name=cfg.name, source=champion.version)
    client = registry_client(tracking_uri)
    client.set_registered_model_alias(cfg.name, CHAMPION, v1)
    client.set_registered_model_alias(cfg.name, CHALLENGER, v2)
    start_test(services, cfg, now=T0, trigger_key="dq-aa-start")
    _serve(cfg, services, World(cfg), T0, 2)
    limit = cfg.abtest.max_duration_hours
    held = check_test(
        services, cfg, now=T0 + timedelta(hours=limit - 1), trigger_key="dq-aa-1", auto_start=False
    )
    assert held.action in ("hold", "expand"), held.reason
    ended = check_test(
        services, cfg, now=T0 + timedelta(hours=limit), trigger_key="dq-aa-2", auto_start=False
    )
    assert ended.action == "rollback"
    assert ended.reason.startswith(f"inconclusive after {limit:.0f} h"), ended.reason
    assert _aliases(services, cfg.name) == {CHAMPION: v1}  # champion kept, challenger gone
    with transaction(services.database_url) as connection:
        test = abtests.find_test(connection, cfg.name, v2)
        decided = abtests.decisions(connection, test.id)
    assert test.status == abtests.ROLLED_BACK
    assert decided[-1].action == "rollback" and decided[-1].reason == ended.reason


def test_a_decisive_challenger_is_promoted_within_hours(model_cfg, champion, services):
    """After a concept shift, a model of the new concept beats the old champion so clearly
    that the first check with the guardrails' sample promotes it (no week of stages)."""
    cfg = _model(model_cfg, "dq_shift")
    shifted = World(cfg).with_drift(ConceptShift(T0, 1.0))
    frame, labels = shifted.sample(4000, T0 + timedelta(days=20), np.random.default_rng(5))
    classifier = new_classifier(cfg)
    classifier.fit(
        frame[:3200], list(labels[:3200]), val_frame=frame[3200:], val_labels=list(labels[3200:])
    )
    v1 = register_copy(model_cfg, services.tracking_uri, name=cfg.name, source=champion.version)
    mlflow.set_tracking_uri(services.tracking_uri)
    mlflow.set_experiment(f"relearn/{cfg.name}")
    with mlflow.start_run(run_name="dq-new-concept"):
        v2 = str(
            log_pyfunc_model(
                classifier, cfg, registered_model_name=cfg.name
            ).registered_model_version
        )
    client = registry_client(services.tracking_uri)
    client.set_registered_model_alias(cfg.name, CHAMPION, v1)
    client.set_registered_model_alias(cfg.name, CHALLENGER, v2)
    start = T0 + timedelta(days=21)
    start_test(services, cfg, now=start, trigger_key="dq-shift-start")
    _serve(cfg, services, shifted, start, 1)  # ~200 outcomes at 10 %
    outcome = check_test(
        services, cfg, now=start + timedelta(hours=1), trigger_key="dq-shift-1", auto_start=False
    )
    assert outcome.action == "promote", outcome.reason
    assert outcome.reason.startswith("decisive")
    assert outcome.numbers["challenger"]["labelled"] < cfg.abtest.min_samples_per_arm
    current = _aliases(services, cfg.name)
    assert current[CHAMPION] == v2 and current[PREVIOUS_CHAMPION] == v1


def test_hours_paused_do_not_count_towards_max_duration(model_cfg, champion, services):
    """Paused 160 h, the test ran 10 h by the 170th: it holds instead of ending inconclusive."""
    cfg = _model(model_cfg, "dq_paused")
    v1, v2 = (
        register_copy(model_cfg, services.tracking_uri, name=cfg.name, source=champion.version)
        for _ in range(2)
    )
    client = registry_client(services.tracking_uri)
    client.set_registered_model_alias(cfg.name, CHAMPION, v1)
    client.set_registered_model_alias(cfg.name, CHALLENGER, v2)
    start = T0 + timedelta(days=40)
    start_test(services, cfg, now=start, trigger_key="dq-paused-start")
    hour = timedelta(hours=1)
    paused = check_test(services, cfg, now=start + hour, trigger_key="dq-p-1", action="pause")
    assert paused.action == "pause"
    resumed = check_test(
        services, cfg, now=start + 161 * hour, trigger_key="dq-p-2", action="resume"
    )
    assert resumed.action == "resume"
    limit = cfg.abtest.max_duration_hours
    assert limit < 170
    held = check_test(services, cfg, now=start + 170 * hour, trigger_key="dq-p-3", auto_start=False)
    assert held.action == "hold", held.reason
    assert held.numbers["hours_running"] == pytest.approx(10)
    ended = check_test(
        services, cfg, now=start + (limit + 160) * hour, trigger_key="dq-p-4", auto_start=False
    )
    assert ended.action == "rollback" and ended.reason.startswith(f"inconclusive after {limit:.0f}")


def _with_gain(
    services,
    name: str,
    version: str,
    gain: float,
    key: str,
    champion: str | None = None,
    rows: int | None = None,
    window_end: datetime | None = None,
) -> str:
    """A decay retraining run of ``champion`` whose gate measured ``gain`` over it (on
    ``rows`` holdout rows, when given; its window ending at ``window_end``), owning
    ``version``."""
    size = {} if rows is None else {"n": rows}
    ended = {} if window_end is None else {"window_end": window_end.isoformat()}
    with transaction(services.database_url) as connection:
        run = runs.start_run(
            connection,
            model_name=name,
            trigger_key=key,
            source=runs.DECAY_TRIGGERED,
            params={"champion_version": champion, **ended},
            started_at=T0,
        )
        runs.merge_metrics(
            connection,
            run.id,
            {
                "holdout": {"accuracy": 0.5 + gain, **size},
                "champion_holdout": {"accuracy": 0.5, **size},
            },
        )
    client = registry_client(services.tracking_uri)
    client.set_model_version_tag(name, version, RUN_TAG, str(run.id))
    return str(run.id)


def _challenger_under_test(model_cfg, champion, services, name: str, count: int, start: datetime):
    """``count`` copies of the champion as versions of model ``name``: v1 champion, v2 the
    challenger of a running test whose retraining gained +0.03."""
    cfg = _model(model_cfg, name)
    versions = [
        register_copy(model_cfg, services.tracking_uri, name=cfg.name, source=champion.version)
        for _ in range(count)
    ]
    client = registry_client(services.tracking_uri)
    client.set_registered_model_alias(cfg.name, CHAMPION, versions[0])
    client.set_registered_model_alias(cfg.name, CHALLENGER, versions[1])
    _with_gain(services, cfg.name, versions[1], 0.03, f"{name}-v2", champion=versions[0])
    start_test(services, cfg, now=start, trigger_key=f"{name}-start")
    return cfg, versions


def _request_waiting(connection, cfg, champion_version: str, version: str, run_id: str) -> None:
    """A drift retraining's request to test ``version`` next."""
    abtests.request_test(
        connection,
        model_name=cfg.name,
        champion_version=champion_version,
        challenger_version=version,
        stages=cfg.abtest.stages,
        retraining_run_id=run_id,
        reason="decay_triggered retraining",
    )


def _die_after_the_replacement_rollback(services, cfg, running, now, key: str) -> None:
    """A check's first attempt: the replacement's rollback, exactly as check_test applies it,
    and nothing after it (the task died before starting the waiting test)."""
    swap = find_replacement(services, cfg, running)
    ended = policy.Decision(policy.ROLLBACK, 0, swap.reason)
    apply_decision(services, cfg, running, ended, now=now, trigger_key=key, by="policy")


def test_a_clearly_better_waiting_candidate_replaces_the_running_challenger(
    model_cfg, champion, services
):
    """A drift retraining asked for a test of a candidate far better than the one under test:
    the next check rolls the running test back (saying why) and starts the waiting one; a
    candidate only a little better waits its turn."""
    start = T0 + timedelta(days=30)
    cfg, (v1, v2, v3, v4) = _challenger_under_test(
        model_cfg, champion, services, "dq_swap", 4, start
    )
    with transaction(services.database_url) as connection:
        for version, gain in ((v3, 0.04), (v4, 0.30)):
            run_id = _with_gain(services, cfg.name, version, gain, f"dq-swap-{version}")
            _request_waiting(connection, cfg, v1, version, run_id)
    # v3 (+0.04 vs +0.03) is the oldest waiting test and not clearly better: v2 stays.
    kept = check_test(services, cfg, now=start + timedelta(hours=1), trigger_key="dq-swap-1")
    assert kept.action == "hold" and kept.version == v2, kept.reason
    with transaction(services.database_url) as connection:
        v3_test = abtests.find_test(connection, cfg.name, v3)
        abtests.update_test(connection, v3_test.id, status=abtests.ABORTED)
    swapped = check_test(services, cfg, now=start + timedelta(hours=2), trigger_key="dq-swap-2")
    assert (swapped.action, swapped.version) == ("start", v4)
    with transaction(services.database_url) as connection:
        old = abtests.find_test(connection, cfg.name, v2)
        reason = abtests.decisions(connection, old.id)[-1].reason
        live = abtests.live_test(connection, cfg.name, abtests.ACTIVE)
    assert old.status == abtests.ROLLED_BACK
    assert reason.startswith(
        f"replaced by v{v4}: holdout gain over the champion +0.3000 vs +0.0300"
    )
    assert live.challenger_version == v4
    assert _aliases(services, cfg.name) == {CHAMPION: v1, CHALLENGER: v4}


def test_a_retried_check_that_died_after_the_replacement_rollback_starts_the_waiting_test(
    model_cfg, champion, services
):
    """The check rolled the running test back for a better waiting one, then died before
    starting it: its retry (same run key) starts the waiting test, and a second retry repeats
    that start instead of leaving the model without a test until the next check."""
    start = T0 + timedelta(days=32)
    cfg, (v1, _, v3) = _challenger_under_test(
        model_cfg, champion, services, "dq_swap_retry", 3, start
    )
    with transaction(services.database_url) as connection:
        run_id = _with_gain(services, cfg.name, v3, 0.30, "dq-retry-v3")
        _request_waiting(connection, cfg, v1, v3, run_id)
        running = abtests.live_test(connection, cfg.name, abtests.ACTIVE)
    now = start + timedelta(hours=1)
    _die_after_the_replacement_rollback(services, cfg, running, now, "dq-retry-1")
    retried = check_test(services, cfg, now=now, trigger_key="dq-retry-1")
    assert (retried.action, retried.version) == ("start", v3), retried.reason
    again = check_test(services, cfg, now=now, trigger_key="dq-retry-1")
    assert (again.action, again.version, again.test_id) == ("start", v3, retried.test_id)
    with transaction(services.database_url) as connection:
        live = abtests.live_test(connection, cfg.name, abtests.ACTIVE)
    assert live.challenger_version == v3 and str(live.id) == retried.test_id


def test_a_retried_replacement_leaves_a_test_started_meanwhile_alone(model_cfg, champion, services):
    """The check rolled the running test back for v3, then died; before its retry someone
    started v4 (also waiting) by hand. The retry must not start v3 over the running v4."""
    start = T0 + timedelta(days=34)
    cfg, (v1, _, v3, v4) = _challenger_under_test(
        model_cfg, champion, services, "dq_swap_meanwhile", 4, start
    )
    with transaction(services.database_url) as connection:
        for version in (v3, v4):
            run_id = _with_gain(services, cfg.name, version, 0.30, f"dq-meanwhile-{version}")
            _request_waiting(connection, cfg, v1, version, run_id)
        running = abtests.live_test(connection, cfg.name, abtests.ACTIVE)
    now = start + timedelta(hours=1)
    _die_after_the_replacement_rollback(services, cfg, running, now, "dq-mw-1")
    by_hand = start_test(services, cfg, now=now, trigger_key="dq-mw-hand", version=v4)
    retried = check_test(services, cfg, now=now, trigger_key="dq-mw-1")
    assert retried.action == policy.ROLLBACK, retried.reason
    with transaction(services.database_url) as connection:
        live = abtests.live_test(connection, cfg.name, abtests.ACTIVE)
    assert (live.challenger_version, str(live.id)) == (v4, by_hand.test_id)


def test_a_decay_retraining_s_candidate_starts_at_the_decay_stage(model_cfg, champion, services):
    """The champion measurably decayed: its replacement's test starts at 50 %, not 10 %. A
    decay candidate of an older champion, or a version registered by hand, starts at 10 %."""
    start = T0 + timedelta(days=36)
    cfg, (v1, v2) = _challenger_under_test(model_cfg, champion, services, "dq_decay", 2, start)
    with transaction(services.database_url) as connection:
        decayed = abtests.live_test(connection, cfg.name, abtests.ACTIVE)
    assert (decayed.challenger_version, decayed.traffic_percent, decayed.stage_index) == (v2, 50, 2)
    rolled = check_test(services, cfg, now=start, trigger_key="dq-decay-end", action="rollback")
    assert rolled.action == policy.ROLLBACK
    first = cfg.abtest.stages[0]
    for index, champion_then in enumerate(("an older champion", None)):
        version = register_copy(
            model_cfg, services.tracking_uri, name=cfg.name, source=champion.version
        )
        if champion_then:
            _with_gain(services, cfg.name, version, 0.3, "dq-decay-old", champion=champion_then)
        key = f"dq-decay-{index}"
        started = start_test(services, cfg, now=start, trigger_key=key, version=version)
        assert (started.version, started.traffic) == (version, first), champion_then
        check_test(services, cfg, now=start, trigger_key=f"{key}-end", action="rollback")
    assert v1 == aliases(registry_client(services.tracking_uri), cfg.name)[CHAMPION]


def test_a_decay_candidate_proven_on_its_holdout_is_promoted_without_a_test(
    model_cfg, champion, services
):
    """Its gate's holdout (rows since the decline) shows it 30 points better than the decayed
    champion on 200 rows (McNemar p < 0.001): promoted as its test starts, saying why. Six
    points on 100 rows are not significant, and the same proof from days ago (a candidate that
    waited behind another test) is stale: those candidates are tested from 50 %."""
    start = T0 + timedelta(days=40)
    cfg = _model(model_cfg, "dq_offline")
    v1, v2, v3, v4 = (
        register_copy(model_cfg, services.tracking_uri, name=cfg.name, source=champion.version)
        for _ in range(4)
    )
    registry_client(services.tracking_uri).set_registered_model_alias(cfg.name, CHAMPION, v1)
    _with_gain(services, cfg.name, v3, 0.06, "dq-offline-weak", v1, rows=100, window_end=start)
    weak = start_test(services, cfg, now=start, trigger_key="dq-offline-1", version=v3)
    assert (weak.action, weak.traffic) == ("start", 50), weak.reason
    check_test(services, cfg, now=start, trigger_key="dq-offline-1-end", action="rollback")
    days_ago = start - timedelta(days=3)
    _with_gain(services, cfg.name, v4, 0.30, "dq-offline-old", v1, rows=200, window_end=days_ago)
    stale = start_test(services, cfg, now=start, trigger_key="dq-offline-3", version=v4)
    assert (stale.action, stale.traffic) == ("start", 50), stale.reason
    check_test(services, cfg, now=start, trigger_key="dq-offline-3-end", action="rollback")
    _with_gain(services, cfg.name, v2, 0.30, "dq-offline-strong", v1, rows=200, window_end=start)
    later = start + timedelta(hours=1)
    proven = start_test(services, cfg, now=later, trigger_key="dq-offline-2", version=v2)
    assert proven.action == "promote", proven.reason
    assert proven.reason.startswith("decisive offline: holdout accuracy 0.800 vs")
    assert _aliases(services, cfg.name)[CHAMPION] == v2
    with transaction(services.database_url) as connection:
        test = abtests.find_test(connection, cfg.name, v2)
        actions = [d.action for d in abtests.decisions(connection, test.id)]
    assert test.status == abtests.PROMOTED and actions == ["start", "promote"]


def test_a_candidate_no_better_than_the_champion_is_not_blessed(model_cfg, champion, services):
    """Unchanged traffic: the fine-tuned candidate is about as good as the champion, so it
    would only hold the A/B slot; the gate says so."""
    end = datetime(2025, 6, 10, tzinfo=UTC)
    log_traffic(
        model_cfg,
        services.database_url,
        services.tracking_uri,
        start=end - timedelta(days=3),
        end=end,
    )
    options = ReinforceOptions.from_config(model_cfg, lookback_days=3, dry_run=True)
    run = reinforce(services, model_cfg, options, trigger_key="dq-no-gain", now=end)
    gate = run.metrics["gate"]
    assert not gate["blessed"]
    assert any(r.startswith("accuracy_gain_vs_champion") for r in gate["reasons"]), gate
    gain = next(c for c in gate["checks"] if c["name"] == "accuracy_gain_vs_champion")
    assert gain["threshold"] == model_cfg.gates.min_improvement


LATE_NOW = datetime(2025, 6, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def late_outcomes(model_cfg, champion, services):
    """Four days of the champion's predictions after a concept shift, outcomes 48 h late."""
    start = LATE_NOW - timedelta(hours=96)
    world = World(model_cfg).with_drift(ConceptShift(start, 1.0))
    with Predictor(services, model_cfg) as predictor:
        simulate_traffic(
            world,
            predictor,
            start=start,
            end=LATE_NOW,
            predictions_per_hour=60,
            outcome_delay=timedelta(hours=48),
            rng=np.random.default_rng(3),
        )
    return model_cfg.model_copy(
        update={"drift": model_cfg.drift.model_copy(update={"outcome_delay_hours": 48.0})}
    )


def test_the_performance_check_reaches_back_over_the_outcome_delay(
    model_cfg, late_outcomes, services
):
    """Outcomes 48 h late: the last 24 h hold none, so only a window widened by
    ``drift.outcome_delay_hours`` sees that the champion decayed after a concept shift."""
    reports = {}
    for cfg in (model_cfg, late_outcomes):
        delay = cfg.drift.outcome_delay_hours
        options = CheckOptions.from_config(cfg, dry_run=True)
        reports[delay] = check(
            services, cfg, options, trigger_key=f"dq-late-{delay:g}", now=LATE_NOW
        )
    assert reports[0.0].labelled_rows == 0 and reports[0.0].verdict != "decayed"
    assert reports[48.0].labelled_rows > model_cfg.drift.min_labelled_rows
    assert reports[48.0].verdict == "decayed", reports[48.0].performance


def test_a_running_test_does_not_cool_down_a_decayed_champion(late_outcomes, services, champion):
    """The test under way may be of a candidate from before the change: the decayed champion
    is retrained anyway (the result waits as a pending test); a pending test does cool down."""
    cfg = late_outcomes
    abort_live_tests(services.database_url, cfg.name)  # else "cooldown"
    with transaction(services.database_url) as connection:
        test = abtests.request_test(
            connection,
            model_name=cfg.name,
            champion_version=champion.version,
            challenger_version="dq-older",
            stages=cfg.abtest.stages,
            retraining_run_id=None,
            reason="an older candidate",
        )
        abtests.update_test(connection, test.id, status=abtests.RUNNING)
    try:
        options = CheckOptions.from_config(cfg)
        running = check(services, cfg, options, trigger_key="dq-cool-1", now=LATE_NOW)
        assert (running.verdict, running.action) == ("decayed", "retrain"), running.action_reason
        with transaction(services.database_url) as connection:
            abtests.update_test(connection, test.id, status=abtests.PENDING)
        pending = check(
            services, cfg, options, trigger_key="dq-cool-2", now=LATE_NOW + timedelta(minutes=1)
        )
        assert pending.action == "cooldown" and "is pending" in pending.action_reason
    finally:
        with transaction(services.database_url) as connection:
            abtests.update_test(connection, test.id, status=abtests.ABORTED)
