"""``PromotionApprovalOperator``: a human's answer to an A/B test that passed, carried out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from relearn_airflow.hooks.relearn import RelearnHook
from relearn_airflow.operators.base import skipped_without_champion

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class PromotionApprovalOperator(ApprovalOperator):
    """A human approves (promote now) or rejects (roll back now) a test that passed.

    The answer is carried out here, through the same deployer as every other move, so a
    rejection rolls the challenger back instead of merely skipping what follows; it applies
    only to the test that asked, and only while it still waits.

    :param request: ``{"model", "test_id", "version"}`` of the waiting test (templated; may
        be mapped), as announced on the approval Asset by ``ab_promotion``.
    :param relearn_conn_id: connection to Relearn's database.
    :param mlflow_conn_id: connection to the MLflow tracking server.
    :param config_path: the Relearn YAML file (default: ``$RELEARN_CONFIG``).
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "request")

    def __init__(
        self,
        *,
        request: dict[str, str] | Any,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        mlflow_conn_id: str = "mlflow_default",
        config_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Promote an A/B challenger to champion?")
        super().__init__(**kwargs)
        self.request = request
        self.relearn_conn_id = relearn_conn_id
        self.mlflow_conn_id = mlflow_conn_id
        self.config_path = config_path

    def execute(self, context: Context) -> Any:
        request = self.request
        self.subject = f"Promote {request['model']} v{request['version']} to champion?"
        self.body = (
            f"A/B test {request['test_id']} passed. Approve promotes v{request['version']} now; "
            "Reject rolls it back."
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from relearn.abtest.approval import answer_approval

        result = super().execute_complete(context=context, event=event)
        hook = RelearnHook(self.relearn_conn_id, self.mlflow_conn_id, self.config_path)
        user = event.get("responded_by_user") or {}
        who = (user.get("name") or user.get("id")) if isinstance(user, dict) else str(user)
        with skipped_without_champion():
            outcome = answer_approval(
                hook.services(),
                hook.model_config(self.request["model"]),
                test_id=self.request["test_id"],
                approved=bool(self.hitl_summary_extra.get("approved")),
                now=datetime.now(UTC),
                trigger_key=f"{context['dag_run'].run_id}__approval",
                by=f"human:{who or 'unknown'}",
            )
        self.log.info("%s: %s (%s)", self.request["model"], outcome.action, outcome.reason)
        return result
