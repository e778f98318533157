"""``ABTestOperator``: the hourly decision of a model's A/B test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from relearn.config import ModelConfig
    from relearn.services import Services

# The trigger form's action that moves the champion back instead of acting on the test.
ROLLBACK_CHAMPION = "rollback_champion"


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
        if params.get("action") == ROLLBACK_CHAMPION:
            return self._rollback_champion(hook.services(), model_cfg, params, context)
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

    def _rollback_champion(
        self, services: Services, model_cfg: ModelConfig, params: dict, context: Context
    ) -> dict[str, Any]:
        """The trigger form's ``rollback_champion``: ``rollback_to`` (previous, best or a
        version) with ``min_f1`` for best, like ``relearn registry rollback``."""
        from relearn.abtest import DeployError
        from relearn.abtest.rollback import rollback_champion

        try:
            done = rollback_champion(
                services,
                model_cfg,
                to=str(params.get("rollback_to") or "previous"),
                min_f1=params.get("min_f1"),
                by=f"airflow:{context['dag_run'].dag_id}",
                reason=f"trigger form of {context['dag_run'].run_id}",
            )
        except DeployError as error:
            raise AirflowFailException(f"{self.model_name}: {error}") from error
        self.log.warning("%s: champion rolled back (%s)", self.model_name, done.reason)
        return {
            "model": self.model_name,
            "action": ROLLBACK_CHAMPION,
            "version": done.version,
            "reason": done.reason,
        }
