"""``ErrorAnalysisOperator``: a day of one model's labelled predictions, analysed and stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ErrorAnalysisOperator(RelearnModelOperator):
    """Analyse where the champion was wrong in the day before the DAG run's data interval end
    (compared with the live challenger, if any) and write an ``error_analyses`` row, one per
    DAG run and model (a retry rewrites it). A model without a champion is skipped.
    """

    ui_color = "#f3e8fd"

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.analysis.run import describe, run_daily

        hook = self.hook()
        analysis = run_daily(
            hook.services(),
            hook.model_config(self.model_name),
            until=context.get("data_interval_end") or datetime.now(UTC),
            analysis_key=context["dag_run"].run_id,
        )
        self.log.info("%s: %s", self.model_name, describe(analysis))
        for suggestion in analysis.findings.suggestions:
            self.log.info("%d. %s", suggestion.rank, suggestion.text)
        return {
            "model": self.model_name,
            "status": analysis.findings.status.value,
            "error_rate": analysis.findings.error_rate,
            "segments": len(analysis.findings.segments),
        }
