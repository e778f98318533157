"""``DriftCheckOperator``: one drift check of a model's champion, written to ``drift_reports``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.hooks.relearn import RelearnHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class DriftCheckOperator(BaseOperator):
    """Check the champion's recent predictions against its reference profile.

    "Now" is the DAG run's data interval end, so a replayed run checks its own hour. Options
    come from the DAG run's Params (``window_hours``, ``threshold``, ``min_rows``,
    ``dry_run``), unset ones from the model's ``drift`` configuration. Returns the report id,
    verdict and action; with action ``retrain`` also the retraining options.

    :param model_name: the configured model (templated; may be mapped).
    :param relearn_conn_id: connection to Relearn's database.
    :param mlflow_conn_id: connection to the MLflow tracking server.
    """

    template_fields: Sequence[str] = ("model_name",)
    ui_color = "#fdf1e0"

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
        from dataclasses import fields

        from relearn.drift.monitor import (
            CheckOptions,
            DriftCheckError,
            check,
            describe,
            retrain_options,
        )
        from relearn.reinforce import Services

        hook = RelearnHook(self.relearn_conn_id, self.mlflow_conn_id)
        model_cfg = hook.model_config(self.model_name)
        names = {f.name for f in fields(CheckOptions)}
        params = {k: v for k, v in (context.get("params") or {}).items() if k in names}
        try:
            options = CheckOptions.from_config(model_cfg, **params)
            report = check(
                Services(hook.database_url, hook.tracking_uri),
                model_cfg,
                options,
                run_key=context["dag_run"].run_id,
                now=context.get("data_interval_end") or datetime.now(UTC),
            )
        except (ValueError, DriftCheckError) as error:
            raise AirflowFailException(f"{self.model_name}: {error}") from error
        self.log.info("%s: %s", self.model_name, describe(report))
        if report.report_uri:
            self.log.info("report: %s", report.report_uri)
        return {
            "model": self.model_name,
            "report_id": str(report.id),
            "verdict": report.verdict,
            "action": report.action,
            "reason": report.action_reason,
            "retrain": retrain_options(model_cfg, report) if report.wants_retraining else None,
        }
