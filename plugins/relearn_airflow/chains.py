"""The retraining steps every retraining DAG runs, built in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    whose XCom says the version and whether it was blessed.
    """
    prepare = RetrainingDataOperator(
        task_id="prepare_data", model_name=model_name, retraining_run_id=retraining_run_id
    )
    train = TrainModelOperator(
        task_id="train", model_name=model_name, retraining_run_id=retraining_run_id
    )
    validate = ValidateModelOperator(
        task_id="validate_model", model_name=model_name, retraining_run_id=retraining_run_id
    )
    register = MLflowDeployOperator(
        task_id="register", model_name=model_name, retraining_run_id=retraining_run_id
    )
    prepare >> train >> validate >> register
    return register
