"""``DriftCheckOperator``: one drift check of a model's champion, written to ``drift_reports``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftCheckOperator(RelearnModelOperator):
    """Check the champion's recent predictions against its reference profile.

    "Now" is the DAG run's data interval end, so a replayed run checks its own hour. Options
    come from the DAG run's Params (``window_hours``, ``threshold``, ``min_rows``,
    ``dry_run``), unset ones from the model's ``drift`` configuration. Returns the report id,
    verdict and action; with action ``retrain`` also the retraining options.
    """

    ui_color = "#fdf1e0"

    def execute(self, context: Context) -> dict[str, Any]:
        from dataclasses import fields

        from relearn.drift.monitor import CheckOptions, DriftCheckError, check, describe
        from relearn.drift.retrain import retrain_options

        hook = self.hook()
        model_cfg = hook.model_config(self.model_name)
        names = {f.name for f in fields(CheckOptions)}
        params = {k: v for k, v in (context.get("params") or {}).items() if k in names}
        try:
            options = CheckOptions.from_config(model_cfg, **params)
            report = check(
                hook.services(),
                model_cfg,
                options,
                trigger_key=context["dag_run"].run_id,
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
