"""``RetentionOperator``: expire one model's old predictions (archived first) and records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RetentionOperator(RelearnModelOperator):
    """Apply the model's ``retention`` settings as of the DAG run's data interval end.

    Needs no champion: a model's log expires whether or not it is deployed.

    :param dry_run: only report what would be archived and deleted; None (default): the
        DAG run's ``dry_run`` Param.
    """

    ui_color = "#eeeeee"

    def __init__(self, *, dry_run: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.retention import expire_model
        from relearn.retention.archive import ArchiveError

        hook = self.hook()
        dry_run = self.dry_run
        if dry_run is None:
            dry_run = bool((context.get("params") or {}).get("dry_run", False))
        try:
            result = expire_model(
                hook.services(),
                hook.model_config(self.model_name),
                now=context.get("data_interval_end") or datetime.now(UTC),
                trigger_key=context["dag_run"].run_id,
                dry_run=dry_run,
            )
        except ArchiveError as error:
            # The archive in the artifact store does not match its record: a retry reads the
            # same file, a person has to look. Nothing of it was deleted.
            raise AirflowFailException(str(error)) from error
        self.log.info("%s", result.summary())
        return {
            "model": self.model_name,
            "dry_run": result.dry_run,
            "cutoff": result.cutoff.isoformat(),
            "days": len(result.days),
            "archived": result.archived,
            "deleted": result.deleted,
            "kept": sum(day.kept for day in result.days),
            "other": result.other,
        }
