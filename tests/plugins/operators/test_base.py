"""``RelearnModelOperator``: a model without a champion skips the task with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from relearn.services import NoChampionError
from relearn_airflow.operators.base import RelearnModelOperator, skipped_without_champion
from tests.plugins.conftest import task_context


class NeedsChampion(RelearnModelOperator):
    def execute(self, context: Any) -> dict:
        raise NoChampionError(self.model_name)


class CallsParent(NeedsChampion):
    def execute(self, context: Any) -> dict:
        return {"parent": super().execute(context)}


class ReportsIt(NeedsChampion):
    skip_without_champion = False

    def execute(self, context: Any) -> dict:
        raise NoChampionError(self.model_name)


@pytest.mark.parametrize("operator", [NeedsChampion, CallsParent])
def test_no_champion_skips_with_the_message(operator):
    with pytest.raises(AirflowSkipException) as skipped:
        operator(task_id="t", model_name="fresh").execute(task_context())
    assert str(skipped.value) == str(NoChampionError("fresh"))
    assert "relearn bootstrap --model fresh" in str(skipped.value)
    assert isinstance(skipped.value.__cause__, NoChampionError)


def test_an_operator_whose_job_is_to_report_it_can_opt_out():
    with pytest.raises(NoChampionError):
        ReportsIt(task_id="t", model_name="fresh").execute(task_context())


def test_other_errors_pass_through():
    with pytest.raises(ValueError, match="bad"), skipped_without_champion():
        raise ValueError("bad")


def test_the_hook_gets_the_operator_s_connections_and_config():
    hook = NeedsChampion(
        task_id="t",
        model_name="m",
        relearn_conn_id="db2",
        mlflow_conn_id="mlflow2",
        config_path="/etc/relearn.yaml",
    ).hook()
    assert (hook.relearn_conn_id, hook.mlflow_conn_id, hook.config_path) == (
        "db2",
        "mlflow2",
        "/etc/relearn.yaml",
    )
