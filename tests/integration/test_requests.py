"""The manual-request queue on the real Postgres: validation, claims, leases, the trigger."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from relearn.store import requests
from relearn.store.db import transaction

pytestmark = pytest.mark.integration

# A model no DAG serves, so the queue tests never race a sensor of the DAG tests.
QUEUE_MODEL = "queue_test"
RANK = {"high": 0, "normal": 1, "low": 2}


@pytest.fixture
def queue(database_url):
    """An empty queue for QUEUE_MODEL before and after the test."""

    def clear() -> None:
        with transaction(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM model_retraining_requests WHERE model_name = %s", (QUEUE_MODEL,)
            )

    clear()
    yield
    clear()


def _create(database_url: str, **kwargs) -> requests.RetrainingRequest:
    with transaction(database_url) as connection:
        return requests.create_request(
            connection, model_name=QUEUE_MODEL, known_models=[QUEUE_MODEL], **kwargs
        )


def _claim(database_url: str, claimer: str, **kwargs) -> requests.RetrainingRequest | None:
    with transaction(database_url) as connection:
        return requests.claim_next(connection, claimer, model_names=[QUEUE_MODEL], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": "nope"}, "unknown model 'nope'"),
        ({"priority": "urgent"}, "priority must be one of high, normal, low"),
        ({"reason": "x" * 2001}, "at most 2000"),
        ({"requested_by": "alice"}, "requested_by must be a UUID"),
    ],
)
def test_bad_requests_are_rejected_clearly(database_url, queue, kwargs, message):
    with transaction(database_url) as connection, pytest.raises(requests.RequestError) as error:
        requests.create_request(
            connection, **{"model_name": QUEUE_MODEL, "known_models": [QUEUE_MODEL], **kwargs}
        )
    assert message in str(error.value)
    with transaction(database_url) as connection:
        assert not requests.has_pending(connection, [QUEUE_MODEL])


def test_malicious_looking_reason_is_stored_verbatim(database_url, queue):
    reason = "'); DROP TABLE model_retraining_runs; -- %s %(x)s $$ \\ <script>ünï</script>"
    created = _create(database_url, reason=reason)
    with transaction(database_url) as connection:
        assert requests.get_request(connection, created.id).reason == reason


def test_claims_follow_priority_then_age_and_skip_cancelled(database_url, queue):
    low = _create(database_url, priority="low")
    normal = _create(database_url, priority="normal")
    cancelled = _create(database_url, priority="high")
    high = _create(database_url, priority="high")
    with transaction(database_url) as connection:
        requests.cancel_request(connection, cancelled.id)
        with pytest.raises(requests.RequestError, match="only pending"):
            requests.cancel_request(connection, cancelled.id)
    order = [_claim(database_url, "t").id for _ in range(3)]
    assert order == [high.id, normal.id, low.id]
    assert _claim(database_url, "t") is None


def test_a_thousand_requests_eight_claimers_each_once_in_priority_order(database_url, queue):
    priorities = ["high", "normal", "low"]
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO model_retraining_requests (model_name, priority, reason) "
            "VALUES (%s, %s, %s)",
            [(QUEUE_MODEL, priorities[i % 3], f"request {i}") for i in range(1000)],
        )
    claimed: dict[str, list[requests.RetrainingRequest]] = {}

    def claimer(name: str) -> None:
        mine = claimed.setdefault(name, [])
        while (request := _claim(database_url, name)) is not None:
            mine.append(request)

    threads = [threading.Thread(target=claimer, args=(f"c{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [r.id for mine in claimed.values() for r in mine]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert sum(1 for mine in claimed.values() if mine) > 1, "claims were not concurrent"
    for name, mine in claimed.items():
        ranks = [RANK[r.priority] for r in mine]
        assert ranks == sorted(ranks), f"{name} claimed out of priority order"
    with transaction(database_url) as connection:
        assert not requests.has_pending(connection, [QUEUE_MODEL])


def _claim_and_hang(database_url: str, claimed: multiprocessing.Event) -> None:
    _claim(database_url, "doomed-worker", lease=timedelta(seconds=1))
    claimed.set()
    time.sleep(600)


def test_a_killed_claimer_lease_expires_and_the_request_returns(database_url, queue):
    created = _create(database_url, reason="survive a crash")
    claimed = multiprocessing.Event()
    worker = multiprocessing.get_context("fork").Process(
        target=_claim_and_hang, args=(database_url, claimed)
    )
    worker.start()
    assert claimed.wait(30)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    with transaction(database_url) as connection:
        assert requests.get_request(connection, created.id).status == "processing"
    time.sleep(1.2)
    with transaction(database_url) as connection:
        # Other modules may leave expired claims too: only this request's fate is asserted.
        requeued, _ = requests.reap_expired_leases(connection, max_attempts=2)
        assert requeued >= 1
        assert requests.get_request(connection, created.id).status == "pending"
    again = _claim(database_url, "second-worker", lease=timedelta(seconds=0))
    assert (again.id, again.attempts) == (created.id, 2)
    with transaction(database_url) as connection:
        _, failed = requests.reap_expired_leases(connection, max_attempts=2)
        assert failed >= 1
        final = requests.get_request(connection, created.id)
    assert final.status == "failed"
    assert "gave up after 2 attempts" in final.error_message


# --- trigger and sensor ------------------------------------------------------------------


async def _first_event(trigger, seconds: float):
    return await asyncio.wait_for(anext(trigger.run()), timeout=seconds)


def _fire_after(delay: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), action()))
    thread.start()
    return thread


def test_trigger_wakes_on_notify_long_before_its_poll(database_url, queue):
    from relearn_airflow.triggers.requests import RetrainingRequestTrigger

    trigger = RetrainingRequestTrigger([QUEUE_MODEL], poll_interval=120)
    inserter = _fire_after(1.0, lambda: _create(database_url, reason="notify me"))
    started = time.monotonic()
    event = asyncio.run(_first_event(trigger, 30))
    inserter.join()
    assert event.payload["status"] == "pending"
    assert time.monotonic() - started < 10  # the NOTIFY, not the 120 s poll


def test_trigger_falls_back_to_polling(database_url, queue):
    from relearn_airflow.triggers.requests import RetrainingRequestTrigger

    def insert_silently() -> None:
        with transaction(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE model_retraining_requests "
                "DISABLE TRIGGER model_retraining_requests_notify"
            )
            cursor.execute(
                "INSERT INTO model_retraining_requests (model_name) VALUES (%s)", (QUEUE_MODEL,)
            )
            cursor.execute(
                "ALTER TABLE model_retraining_requests "
                "ENABLE TRIGGER model_retraining_requests_notify"
            )

    trigger = RetrainingRequestTrigger([QUEUE_MODEL], poll_interval=1)
    inserter = _fire_after(1.5, insert_silently)
    event = asyncio.run(_first_event(trigger, 30))
    inserter.join()
    assert event.payload["status"] == "pending"


def test_sensor_defers_while_nothing_is_pending(database_url, queue):
    from airflow.sdk.exceptions import TaskDeferred

    from relearn_airflow.sensors.requests import RetrainingRequestSensor
    from relearn_airflow.triggers.requests import RetrainingRequestTrigger

    sensor = RetrainingRequestSensor(task_id="wait", model_names=[QUEUE_MODEL])
    context = {"dag_run": SimpleNamespace(dag_id="d", run_id="r1")}
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert isinstance(deferred.value.trigger, RetrainingRequestTrigger)
    assert deferred.value.method_name == "execute_complete"

    created = _create(database_url, priority="high")
    claimed = sensor.execute_complete(context, {"status": "pending"})
    assert claimed["id"] == str(created.id)
    # A retried sensor task gets its own claim back instead of claiming another request.
    _create(database_url)
    assert sensor.execute(context)["id"] == str(created.id)


def test_requests_inserted_for_unconfigured_models_are_failed_not_left_pending(database_url, queue):
    """Before: a row for ``nope`` or ``Churn`` (inserted by SQL) stayed pending forever."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO model_retraining_requests (model_name) "
            "VALUES ('Churn'), ('nope'), (%s) RETURNING id, model_name",
            (QUEUE_MODEL,),
        )
        ids = {name: str(row_id) for row_id, name in cursor.fetchall()}
    try:
        with transaction(database_url) as connection:
            assert requests.has_pending(connection, [QUEUE_MODEL, "churn"])
            failed = requests.fail_unknown_models(connection, [QUEUE_MODEL, "churn"])
        assert sorted(r.model_name for r in failed) == ["Churn", "nope"]
        with transaction(database_url) as connection:
            for name in ("Churn", "nope"):
                request = requests.get_request(connection, ids[name])
                assert request.status == "failed", name
                assert request.error_message == (
                    f"unknown model '{name}' (configured: {QUEUE_MODEL}, churn)"
                )
            assert requests.get_request(connection, ids[QUEUE_MODEL]).status == "pending"
            # Failing them again changes nothing (the sensor runs this before every claim).
            assert requests.fail_unknown_models(connection, [QUEUE_MODEL, "churn"]) == []
    finally:
        with transaction(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM model_retraining_requests WHERE id = ANY(%s::uuid[])",
                (list(ids.values()),),
            )


def test_a_pending_request_for_an_unknown_model_wakes_a_claimer_that_knows_the_config(
    database_url, queue
):
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO model_retraining_requests (model_name) VALUES ('nope')")
        try:
            assert not requests.has_pending(connection, [QUEUE_MODEL])
            assert requests.has_pending(connection, [QUEUE_MODEL], known_models=[QUEUE_MODEL])
            assert not requests.has_pending(
                connection, [QUEUE_MODEL], known_models=[QUEUE_MODEL, "nope"]
            )
        finally:
            cursor.execute("DELETE FROM model_retraining_requests WHERE model_name = 'nope'")


def test_a_processing_row_without_a_lease_is_reclaimed_like_an_expired_one(database_url, queue):
    """Before: ``lease_expires_at < now()`` is never true for NULL: stuck forever."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO model_retraining_requests (model_name, status, attempts) "
            "VALUES (%s, 'processing', 0), (%s, 'processing', 3) RETURNING id",
            (QUEUE_MODEL, QUEUE_MODEL),
        )
        fresh, exhausted = (str(row[0]) for row in cursor.fetchall())
    with transaction(database_url) as connection:
        assert requests.reap_expired_leases(connection, max_attempts=3) == (1, 1)
        assert requests.get_request(connection, fresh).status == "pending"
        gave_up = requests.get_request(connection, exhausted)
    assert gave_up.status == "failed" and "gave up after 3 attempts" in gave_up.error_message
    assert _claim(database_url, "t").id == uuid.UUID(fresh)
