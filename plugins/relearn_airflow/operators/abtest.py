"""``ABTestOperator``: the hourly decision of a model's A/B test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from relearn.config import ModelConfig


class ABTestOperator(RelearnModelOperator):
    """Decide and apply the next step of a model's A/B test (``relearn.abtest.deploy``).

    "Now" is the DAG run's data interval end, so replays decide deterministically. The
    ``action`` Param overrides the policy (``check`` lets it decide; ``expand``, ``pause``,
    ``resume``, ``rollback``, ``promote``), ``traffic`` sets the share for ``expand``. With no
    running test, a pending or untested challenger is started (``abtest.auto_start``).
    """

    ui_color = "#e6ecfa"

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.abtest import DeployError
        from relearn.abtest.deploy import check_test

        hook = self.hook()
        model_cfg: ModelConfig = hook.model_config(self.model_name)
        params = context.get("params") or {}
        try:
            outcome = check_test(
                hook.services(),
                model_cfg,
                now=context.get("data_interval_end") or datetime.now(UTC),
                trigger_key=context["dag_run"].run_id,
                action=params.get("action") or "check",
                traffic=params.get("traffic"),
                by=f"airflow:{context['dag_run'].dag_id}",
            )
        except DeployError as error:
            raise AirflowFailException(f"{self.model_name}: {error}") from error
        self.log.info(
            "%s: %s -> %s %% (%s)", self.model_name, outcome.action, outcome.traffic, outcome.reason
        )
        return {"model": self.model_name, **outcome.to_dict()}
