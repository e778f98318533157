"""What each model operator hands to the next task (its XCom), on the real Postgres and MLflow.

The downstream tasks read these keys (``request_approval``, ``retraining_wanted``, the health
dashboard), so they are a contract: a renamed key would break a DAG only at run time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from relearn.store.db import transaction
from relearn_airflow.operators.abtest import ABTestOperator
from relearn_airflow.operators.drift import DriftCheckOperator
from relearn_airflow.operators.health import ModelHealthOperator, ModelUnhealthyError
from tests.plugins.conftest import task_context

pytestmark = pytest.mark.integration

# A quiet hour of this module's own: no traffic, no test.
QUIET = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_ab_test_operator_returns_the_decision(champion, model_cfg):
    result = ABTestOperator(task_id="decide", model_name=model_cfg.name).execute(
        task_context(run_id="contract_ab", at=QUIET, action="check")
    )
    assert {"model", "action", "reason", "test_id", "version", "traffic"} <= set(result)
    assert result["model"] == model_cfg.name
    assert isinstance(result["action"], str) and isinstance(result["reason"], str)
    json.dumps(result)  # XCom stores JSON


def test_drift_check_operator_returns_the_report_and_what_it_asks(champion, model_cfg):
    result = DriftCheckOperator(task_id="check_drift", model_name=model_cfg.name).execute(
        task_context(run_id="contract_drift", at=QUIET)
    )
    assert set(result) == {"model", "report_id", "verdict", "action", "reason", "retrain"}
    assert (result["model"], result["verdict"]) == (model_cfg.name, "insufficient_data")
    assert result["retrain"] is None  # retraining_wanted skips on this
    json.dumps(result)


def test_health_operator_returns_the_status(champion, model_cfg):
    result = ModelHealthOperator(
        task_id="check_health", model_name=model_cfg.name, window_hours="6"
    ).execute(task_context(run_id="contract_health", at=QUIET))
    assert result == {
        "model": model_cfg.name,
        "status": "degraded",  # no traffic in the window
        "score": 0.6,  # 0.4 * availability 0 + 0.4 * errors 1 + 0.2 * latency 1
        "champion_version": champion.version,
    }


def test_health_operator_fails_at_once_and_records_a_model_without_champion(
    fresh_config, database_url
):
    """model_health is the one DAG where a missing champion is a failure: it reports it."""
    path, name = fresh_config
    operator = ModelHealthOperator(task_id="check_health", model_name=name, config_path=path)
    with pytest.raises(ModelUnhealthyError, match="no champion") as failed:
        operator.execute(task_context(run_id="contract_fresh", at=QUIET))
    assert isinstance(failed.value, AirflowFailException)  # retrying deploys nothing
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM health_checks WHERE model_name = %s AND trigger_key = %s",
            (name, "contract_fresh"),
        )
        assert cursor.fetchall() == [("unhealthy",)]
