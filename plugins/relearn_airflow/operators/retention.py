"""``RetentionOperator``: expire one model's old predictions (archived first) and records;
``VersionRetentionOperator``: archive its old registered versions' files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def _dry_run(explicit: bool | None, context: Context) -> bool:
    if explicit is not None:
        return explicit
    return bool((context.get("params") or {}).get("dry_run", False))


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
        dry_run = _dry_run(self.dry_run, context)
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
            "days": sum(day.day is not None for day in result.days),
            # rows whose predicted_at no UTC day can hold (archived apart, then deleted)
            "unplaceable": sum(day.rows for day in result.days if day.day is None),
            "archived": result.archived,
            "deleted": result.deleted,
            "kept": sum(day.kept for day in result.days),
            "other": result.other,
        }


class VersionRetentionOperator(RelearnModelOperator):
    """Archive the files of the model's registered versions older than its last
    ``registry.keep_versions`` without an alias (never one aliased, under test or in a
    retraining). Needs no champion.

    :param dry_run: only report what would be archived; None (default): the DAG run's
        ``dry_run`` Param.
    """

    ui_color = "#eeeeee"

    def __init__(self, *, dry_run: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.retention.versions import VersionStatus, prune_versions

        hook = self.hook()
        result = prune_versions(
            hook.services(),
            hook.model_config(self.model_name),
            trigger_key=context["dag_run"].run_id,
            dry_run=_dry_run(self.dry_run, context),
        )
        self.log.info("%s", result.summary())
        return {
            "model": self.model_name,
            "dry_run": result.dry_run,
            "keep": result.keep,
            **{status.value: result.of(status) for status in VersionStatus},
        }
