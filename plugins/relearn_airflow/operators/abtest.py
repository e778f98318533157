"""A/B promotion operators: the hourly decision, and a human's approval of a promotion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.hooks.relearn import RelearnHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from relearn.config import ModelConfig
    from relearn.reinforce import Services


def _services(hook: RelearnHook) -> Services:
    from relearn.reinforce import Services

    return Services(hook.database_url, hook.tracking_uri)


class ABTestOperator(BaseOperator):
    """Decide and apply the next step of a model's A/B test (``relearn.abtest.deploy``).

    "Now" is the DAG run's data interval end, so replays decide deterministically. The
    ``action`` Param overrides the policy (``check`` lets it decide; ``expand``, ``pause``,
    ``resume``, ``rollback``, ``promote``), ``traffic`` sets the share for ``expand``. With no
    running test, a pending or untested challenger is started (``abtest.auto_start``).

    :param model_name: the configured model (templated; may be mapped).
    :param relearn_conn_id: connection to Relearn's database.
    :param mlflow_conn_id: connection to the MLflow tracking server.
    """

    template_fields: Sequence[str] = ("model_name",)
    ui_color = "#e6ecfa"

    def __init__(
        self,
        *,
        model_name: str,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        mlflow_conn_id: str = "mlflow_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.relearn_conn_id = relearn_conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.abtest import DeployError
        from relearn.abtest.deploy import check_test

        hook = RelearnHook(self.relearn_conn_id, self.mlflow_conn_id)
        model_cfg: ModelConfig = hook.model_config(self.model_name)
        params = context.get("params") or {}
        try:
            outcome = check_test(
                _services(hook),
                model_cfg,
                now=context.get("data_interval_end") or datetime.now(UTC),
                run_key=context["dag_run"].run_id,
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


class PromotionApprovalOperator(ApprovalOperator):
    """A human approves (promote now) or rejects (roll back now) a test that passed.

    The answer is carried out here, through the same deployer as every other move, so a
    rejection rolls the challenger back instead of merely skipping what follows; it applies
    only to the test that asked, and only while it still waits.

    :param request: ``{"model", "test_id", "version"}`` of the waiting test (templated; may
        be mapped), as announced on the approval Asset by ``ab_promotion``.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "request")

    def __init__(
        self,
        *,
        request: dict[str, str] | Any,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        mlflow_conn_id: str = "mlflow_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Promote an A/B challenger to champion?")
        super().__init__(**kwargs)
        self.request = request
        self.relearn_conn_id = relearn_conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> Any:
        request = self.request
        self.subject = f"Promote {request['model']} v{request['version']} to champion?"
        self.body = (
            f"A/B test {request['test_id']} passed. Approve promotes v{request['version']} now; "
            "Reject rolls it back."
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from relearn.abtest.deploy import answer_approval

        result = super().execute_complete(context=context, event=event)
        hook = RelearnHook(self.relearn_conn_id, self.mlflow_conn_id)
        user = event.get("responded_by_user") or {}
        who = (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user)
        outcome = answer_approval(
            _services(hook),
            hook.model_config(self.request["model"]),
            test_id=self.request["test_id"],
            approved=bool(self.hitl_summary_extra.get("approved")),
            now=datetime.now(UTC),
            run_key=f"{context['dag_run'].run_id}__approval",
            by=f"human:{who or 'unknown'}",
        )
        self.log.info("%s: %s (%s)", self.request["model"], outcome.action, outcome.reason)
        return result
