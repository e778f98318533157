"""``ModelHealthOperator``: records whether a model is deployed, used and still accurate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class ModelUnhealthyError(AirflowFailException):
    """The model cannot serve (e.g. no champion): the task fails so alerts fire.

    Retrying does not deploy a champion, so the task fails at once (no retries).
    """


class ModelHealthOperator(RelearnModelOperator):
    """Check one model's health and write a ``health_checks`` row (one per DAG run).

    Unlike every other Relearn task, a model without a champion fails this one: saying so
    is its job.

    :param window_hours: how much recent traffic to look at (templated).
    """

    template_fields: Sequence[str] = ("model_name", "window_hours")
    skip_without_champion = False

    def __init__(self, *, window_hours: int | str = 24, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window_hours = window_hours

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.health import check_model_health

        hook = self.hook()
        now = context.get("data_interval_end") or datetime.now(UTC)
        report = check_model_health(
            hook.services(),
            hook.model_config(self.model_name),
            now=now,
            window=timedelta(hours=int(self.window_hours)),
            trigger_key=context["dag_run"].run_id,
        )
        if report.status == "unhealthy":
            raise ModelUnhealthyError(f"{self.model_name}: {'; '.join(report.reasons)}")
        if report.status == "degraded":
            self.log.warning("%s is degraded: %s", self.model_name, "; ".join(report.reasons))
        return {
            "model": self.model_name,
            "status": report.status,
            "champion_version": report.champion_version,
        }
