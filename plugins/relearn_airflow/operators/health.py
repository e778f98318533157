"""``ModelHealthOperator`` scores one model's health; ``AlertsOperator`` raises and sends alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from relearn_airflow.hooks.relearn import RelearnHook
from relearn_airflow.notifiers import ALERT_CONN_IDS
from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class ModelUnhealthyError(AirflowFailException):
    """The model scored ``unhealthy`` (e.g. no champion, or it does not load): the task fails
    at once; retrying does not deploy a champion.
    """


def _now(context: Context) -> datetime:
    return context.get("data_interval_end") or datetime.now(UTC)


class ModelHealthOperator(RelearnModelOperator):
    """Score one model's health and write a ``health_checks`` row (one per DAG run).

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
        report = check_model_health(
            hook.services(),
            hook.model_config(self.model_name),
            now=_now(context),
            window=timedelta(hours=int(self.window_hours)),
            trigger_key=context["dag_run"].run_id,
        )
        result = report.result
        if report.status == "unhealthy":
            raise ModelUnhealthyError(f"{self.model_name}: {'; '.join(report.reasons)}")
        if report.reasons:
            self.log.warning("%s is %s: %s", self.model_name, report.status, report.reasons)
        return {
            "model": self.model_name,
            "status": report.status,
            "score": result.score,
            "champion_version": report.champion_version,
        }


class AlertsOperator(BaseOperator):
    """Raise the alerts of this run's interval for each model, then send every undelivered one.

    Alerts are stored first and sent after, so a channel that fails leaves them undelivered:
    the task fails and its retry (or the next run) sends them; nothing is raised twice.

    :param model_names: the models (templated; e.g. the ``configured_models`` XCom).
    :param alert_conn_ids: the Airflow connections to send through (see ``notifiers``).
    """

    template_fields: Sequence[str] = ("model_names",)

    def __init__(
        self,
        *,
        model_names: Any,
        alert_conn_ids: tuple[str, ...] = ALERT_CONN_IDS,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        config_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_names = model_names
        self.alert_conn_ids = tuple(alert_conn_ids)
        self.relearn_conn_id = relearn_conn_id
        self.config_path = config_path

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.monitoring.alerts import deliver, raise_alerts
        from relearn_airflow.notifiers import alert_sender

        hook = RelearnHook(self.relearn_conn_id, config_path=self.config_path)
        until = _now(context)
        start = context.get("data_interval_start")
        # The run's data interval (consecutive runs cover time once); at least the last hour.
        since = min(start, until - timedelta(hours=1)) if start else until - timedelta(hours=1)
        raised = []
        for name in self.model_names:
            cooldown = timedelta(hours=hook.model_config(name).health.alert_cooldown_hours)
            raised += raise_alerts(
                hook.database_url,
                name,
                since=since,
                until=until,
                cooldown=cooldown,
                trigger_key=context["dag_run"].run_id,
            )
        delivery = deliver(hook.database_url, alert_sender(context, self.alert_conn_ids), now=until)
        if delivery.failed:
            raise AirflowException(
                f"{len(delivery.failed)} alert(s) not delivered (retried next attempt): "
                + "; ".join(error for _, error in delivery.failed)
            )
        return {"raised": len(raised), "delivered": len(delivery.delivered)}
