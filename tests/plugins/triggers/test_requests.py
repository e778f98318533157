"""``RetrainingRequestTrigger``: serializable, and its run truly waits on the real Postgres."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from relearn.store.db import transaction
from relearn_airflow.triggers.requests import RetrainingRequestTrigger

SERVED = "trigger_served"  # a model the trigger watches
OTHER = "trigger_other"  # a configured model another sensor serves


@pytest.fixture
def queue(database_url):
    def clear() -> None:
        with transaction(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM model_retraining_requests WHERE model_name = ANY(%s)",
                ([SERVED, OTHER, "nope"],),
            )

    clear()
    yield
    clear()


def _insert(database_url: str, model_name: str) -> None:
    """As a producer's SQL would: no checks at all."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO model_retraining_requests (model_name) VALUES (%s)", (model_name,)
        )


async def _first_event(trigger: RetrainingRequestTrigger, seconds: float):
    return await asyncio.wait_for(anext(trigger.run()), timeout=seconds)


def _later(delay: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), action()))
    thread.start()
    return thread


def test_serialize_round_trip_keeps_every_argument():
    trigger = RetrainingRequestTrigger(
        [SERVED], "other_db", poll_interval=5, known_models=[SERVED, OTHER]
    )
    path, kwargs = trigger.serialize()
    assert path == "relearn_airflow.triggers.requests.RetrainingRequestTrigger"
    assert kwargs == {
        "model_names": [SERVED],
        "relearn_conn_id": "other_db",
        "poll_interval": 5.0,
        "known_models": [SERVED, OTHER],
    }
    assert RetrainingRequestTrigger(**kwargs).serialize() == (path, kwargs)


@pytest.mark.integration
def test_run_fires_once_a_served_request_is_pending(database_url, queue):
    trigger = RetrainingRequestTrigger([SERVED], poll_interval=60, known_models=[SERVED, OTHER])
    inserter = _later(1.0, lambda: _insert(database_url, SERVED))
    event = asyncio.run(_first_event(trigger, 30))
    inserter.join()
    assert event.payload == {"status": "pending", "model_names": [SERVED]}


@pytest.mark.integration
def test_run_ignores_a_request_another_sensor_serves(database_url, queue):
    _insert(database_url, OTHER)
    trigger = RetrainingRequestTrigger([SERVED], poll_interval=0.5, known_models=[SERVED, OTHER])
    with pytest.raises(TimeoutError):
        asyncio.run(_first_event(trigger, 2))


@pytest.mark.integration
def test_run_fires_for_an_unknown_model_so_the_sensor_can_fail_it(database_url, queue):
    """Before: a request for a model nobody serves never woke anyone and stayed pending."""
    _insert(database_url, "nope")
    trigger = RetrainingRequestTrigger([SERVED], poll_interval=60, known_models=[SERVED, OTHER])
    event = asyncio.run(_first_event(trigger, 10))
    assert event.payload["status"] == "pending"
