"""The shared TaskFlow tasks: which models a run works on, and filing requests through the
hook's connection."""

from __future__ import annotations

import os
import uuid

import pytest
from airflow.sdk.exceptions import AirflowFailException

from relearn.config import load_config
from relearn.store.db import transaction
from relearn.store.requests import get_request
from relearn_airflow.tasks import configured_models, create_request, models_for_action


def test_configured_models_is_the_chosen_one_or_all(config):
    assert configured_models.function(params={"model": None}) == config.model_names
    assert configured_models.function(params={"model": "churn"}) == ["churn"]


@pytest.mark.parametrize("task", [configured_models, models_for_action])
def test_an_unknown_model_fails_at_once_with_the_message(task):
    """Before: a ConfigError, retried twice with 2-minute delays."""
    with pytest.raises(AirflowFailException, match=r"unknown model 'Churn' \(configured: churn"):
        task.function(params={"model": "Churn", "action": "check"})


def test_an_unreadable_config_fails_at_once_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(AirflowFailException, match=r"nowhere\.yaml"):
        configured_models.function(params={}, config_path=str(missing))


def test_the_config_path_is_the_one_given(fresh_config):
    path, name = fresh_config
    models = configured_models.function(params={}, config_path=path)
    assert name in models  # only that file names it
    assert models == load_config(path).model_names


@pytest.mark.parametrize("action", ["rollback", "promote", "expand", "pause", "resume"])
def test_a_manual_ab_action_must_name_its_model(action):
    """Before: ``rollback`` with an empty model rolled back every model's test."""
    with pytest.raises(AirflowFailException, match=f"action '{action}' needs a model"):
        models_for_action.function(params={"model": None, "action": action})
    assert models_for_action.function(params={"model": "churn", "action": action}) == ["churn"]


def test_the_policy_check_still_covers_every_model(config):
    assert models_for_action.function(params={"action": "check"}) == config.model_names


@pytest.mark.integration
def test_create_request_uses_the_connection_it_is_given(database_url, monkeypatch):
    """Before: the task always used ``relearn_db``, whatever connection the DAG named."""
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_RELEARN", os.environ["AIRFLOW_CONN_RELEARN_DB"])
    reason = f"via another connection {uuid.uuid4()}"
    request_id = create_request.function(
        params={"model": "churn", "reason": reason}, relearn_conn_id="other_relearn"
    )
    with transaction(database_url) as connection:
        request = get_request(connection, request_id)
        connection.cursor().execute(
            "DELETE FROM model_retraining_requests WHERE id = %s", (request_id,)
        )
    assert (request.model_name, request.reason, request.status) == ("churn", reason, "pending")
    with pytest.raises(Exception, match="no_such_connection"):
        create_request.function(params={"model": "churn"}, relearn_conn_id="no_such_connection")
