"""The retraining steps every retraining DAG runs, built in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relearn_airflow.limits import Limit, timeout
from relearn_airflow.operators.retraining import (
    MLflowDeployOperator,
    RetrainingDataOperator,
    TrainModelOperator,
    ValidateModelOperator,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.xcom_arg import XComArg


def retraining_steps(model_name: Any, retraining_run_id: XComArg) -> MLflowDeployOperator:
    """prepare_data >> train >> validate_model >> register for ``retraining_run_id``.

    ``model_name`` may be a string, a template or a mapped argument. Returns ``register``,
    whose XCom says the version and whether it was blessed. Each step may take up to the
    training limit (``RELEARN_TIMEOUT_TRAINING_MINUTES``).
    """
    limit = timeout(Limit.TRAINING)
    step = {
        "model_name": model_name,
        "retraining_run_id": retraining_run_id,
        "execution_timeout": limit,
    }
    prepare = RetrainingDataOperator(task_id="prepare_data", **step)
    train = TrainModelOperator(task_id="train", **step)
    validate = ValidateModelOperator(task_id="validate_model", **step)
    register = MLflowDeployOperator(task_id="register", **step)
    prepare >> train >> validate >> register
    return register
