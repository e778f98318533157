"""``RetrainingRequestSensor`` on the real Postgres: defers with its timeout, claims, and never
leaves a request waiting forever."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relearn.store import requests
from relearn.store.db import transaction
from relearn_airflow.sensors.requests import RetrainingRequestSensor
from relearn_airflow.triggers.requests import RetrainingRequestTrigger
from tests.plugins.conftest import task_context

pytestmark = pytest.mark.integration

MODEL = "sensor_test"  # served explicitly by the sensors below; no DAG serves it


@pytest.fixture
def queue(database_url):
    def clear() -> None:
        with transaction(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM model_retraining_requests WHERE model_name = ANY(%s)",
                ([MODEL, "nope", "Churn"],),
            )

    clear()
    yield
    clear()


def _insert(database_url: str, model_name: str, status: str = "pending") -> str:
    """As a producer's SQL would: no checks at all."""
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO model_retraining_requests (model_name, status) VALUES (%s, %s) "
            "RETURNING id",
            (model_name, status),
        )
        return str(cursor.fetchone()[0])


def _get(database_url: str, request_id: str) -> requests.RetrainingRequest:
    with transaction(database_url) as connection:
        return requests.get_request(connection, request_id)


def _sensor(**kwargs) -> RetrainingRequestSensor:
    return RetrainingRequestSensor(task_id="wait", model_names=[MODEL], **kwargs)


def test_defers_with_its_timeout(database_url, queue):
    """Before: ``defer`` got no ``timeout``, so the sensor's timeout never applied."""
    from airflow.sdk.exceptions import TaskDeferred

    sensor = _sensor(timeout=timedelta(hours=3), poll_interval=7)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context())
    assert deferred.value.method_name == "execute_complete"
    assert timedelta(hours=3) - timedelta(minutes=1) < deferred.value.timeout <= timedelta(hours=3)
    trigger = deferred.value.trigger
    assert isinstance(trigger, RetrainingRequestTrigger)
    assert (trigger.model_names, trigger.poll_interval) == ([MODEL], 7.0)
    assert MODEL in trigger.known_models and "churn" in trigger.known_models


def test_a_second_wait_gets_only_what_is_left_of_the_timeout(database_url, queue):
    """After losing a request to a faster claimer, the sensor waits for the rest, not anew."""
    from airflow.sdk.exceptions import TaskDeferred

    sensor = _sensor(timeout=timedelta(hours=3))
    with pytest.raises(TaskDeferred) as first:
        sensor.execute(task_context())
    deadline = first.value.kwargs["deadline"]
    with pytest.raises(TaskDeferred) as second:
        sensor.execute_complete(task_context(), {"status": "pending"}, deadline=deadline)
    assert second.value.kwargs["deadline"] == deadline
    assert second.value.timeout <= first.value.timeout


def test_a_timed_out_wait_is_skipped_with_soft_fail_and_fails_without(database_url, queue):
    """What the task runner does when the triggerer reports the deferral's timeout."""
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

    timed_out = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(AirflowSkipException):
        _sensor(soft_fail=True).resume_execution(TRIGGER_FAIL_REPR, timed_out, task_context())
    with pytest.raises(AirflowSensorTimeout):
        _sensor().resume_execution(TRIGGER_FAIL_REPR, timed_out, task_context())


def test_claims_a_pending_request_and_a_retry_gets_the_same_one(database_url, queue):
    created = _insert(database_url, MODEL)
    sensor = _sensor()
    claimed = sensor.execute(task_context(run_id="claimer"))
    assert claimed["id"] == created and claimed["status"] == "processing"
    _insert(database_url, MODEL)
    assert sensor.execute(task_context(run_id="claimer"))["id"] == created


@pytest.mark.parametrize("model_name", ["nope", "Churn"])
def test_a_request_for_an_unconfigured_model_fails_with_the_reason(database_url, queue, model_name):
    """Before: it stayed pending forever while later requests were served."""
    unknown = _insert(database_url, model_name)
    served = _insert(database_url, MODEL)
    assert _sensor().execute(task_context(run_id="unknown"))["id"] == served
    failed = _get(database_url, unknown)
    assert failed.status == "failed" and failed.processed_at is not None
    assert failed.error_message.startswith(f"unknown model '{model_name}' (configured: ")
    assert "churn" in failed.error_message


def test_a_processing_row_without_a_lease_is_reclaimed(database_url, queue):
    """Before: only expired leases were reaped; a lease-less row stayed processing forever."""
    stuck = _insert(database_url, MODEL, status="processing")
    claimed = _sensor().execute(task_context(run_id="reclaimer"))
    assert claimed["id"] == stuck
    assert (claimed["attempts"], claimed["claimed_by"]) == (1, "plugin_test/reclaimer")
