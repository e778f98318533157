"""Operators of a retraining run: record it, prepare the data, train, validate, deploy.

Each is thin: it stores its arguments, builds a ``RelearnHook`` in ``execute`` and calls one
step of ``relearn.reinforce``. Steps hand over the run id only; a step that finds the run
already finished (insufficient data, dry run) skips what follows. Failures the data or the
setup causes (``RetrainingError``) fail at once instead of retrying.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context


# Step results after which nothing is left to do for the run.
_DONE = ("insufficient", "finished")


class RetrainingStepOperator(RelearnModelOperator):
    """Runs one ``relearn.reinforce`` step for one model of one retraining run.

    :param run_id: the ``model_retraining_runs`` id (from the record-run task's XCom).
    """

    template_fields: Sequence[str] = ("model_name", "run_id")
    ui_color = "#e8f4ea"
    step_name: ClassVar[str]

    def __init__(self, *, run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id

    def step(self) -> Callable[..., dict[str, Any]]:
        import relearn.reinforce

        return getattr(relearn.reinforce, self.step_name)

    def execute(self, context: Context) -> Any:
        from relearn.reinforce import RetrainingError

        hook = self.hook()
        try:
            result = self.step()(
                hook.services(), hook.model_config(self.model_name), str(self.run_id)
            )
        except RetrainingError as error:
            raise AirflowFailException(str(error)) from error
        self.log.info("%s %s: %s", self.model_name, self.step_name, result)
        if result.get("status") in _DONE:
            raise AirflowSkipException(f"run {self.run_id} needs nothing more: {result}")
        return result


class StartRetrainingRunOperator(RetrainingStepOperator):
    """Record the run as ``running`` (one row per DAG run and model) and return its id.

    Options come from the DAG run's Params (``lookback_days``, ``confidence_threshold``,
    ``min_error_samples``, ``fine_tune``, ``epochs``, ``learning_rate``, ``replay_ratio``,
    ``dry_run``, ``source``, ``request_id``, ``triggered_by``); ``options`` overrides them.

    :param options: explicit options (templated), e.g. from a request.
    """

    template_fields: Sequence[str] = ("model_name", "options")

    def __init__(self, *, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = options or {}

    def execute(self, context: Context) -> str:
        from dataclasses import fields

        from relearn.reinforce import ReinforceOptions, start

        hook = self.hook()
        model_cfg = hook.model_config(self.model_name)
        names = {f.name for f in fields(ReinforceOptions)}
        params = {k: v for k, v in (context.get("params") or {}).items() if k in names}
        try:
            options = ReinforceOptions.from_config(model_cfg, **{**params, **self.options})
        except ValueError as error:
            raise AirflowFailException(f"invalid options for {self.model_name}: {error}") from error
        dag_run = context["dag_run"]
        return start(
            hook.services(),
            model_cfg,
            options,
            run_key=dag_run.run_id,
            now=context.get("data_interval_end") or datetime.now(UTC),
            dag_id=dag_run.dag_id,
        )


class RetrainingDataOperator(RetrainingStepOperator):
    """Load the window in SQL, validate it with Great Expectations, snapshot the dataset."""

    step_name = "prepare"


class TrainModelOperator(RetrainingStepOperator):
    """Fine-tune the champion (or train from scratch) and log the candidate to MLflow."""

    step_name = "train"


class ValidateModelOperator(RetrainingStepOperator):
    """Gate the candidate: absolute thresholds and no regression against the champion."""

    step_name = "evaluate"

    def execute(self, context: Context) -> Any:
        result = super().execute(context)
        if result.get("dry_run"):
            raise AirflowSkipException("dry run: the candidate is gated but not registered")
        return result


class MLflowDeployOperator(RetrainingStepOperator):
    """Register a run's candidate and alias it ``challenger`` when blessed.

    With ``action="rollback"`` it instead points ``champion`` back at ``version`` (default:
    the last known good one), through the same crash-safe deployer as ``relearn registry``.

    :param action: ``publish`` (default) or ``rollback``.
    :param version: the version to roll back to (templated; ``rollback`` only; empty: the
        last known good).
    """

    template_fields: Sequence[str] = ("model_name", "run_id", "version")
    step_name = "publish"

    def __init__(
        self, *, action: str = "publish", version: str | int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if action not in ("publish", "rollback"):
            raise ValueError(f"action must be 'publish' or 'rollback', got {action!r}")
        self.action = action
        self.version = version

    def execute(self, context: Context) -> Any:
        if self.action == "publish":
            return super().execute(context)
        from relearn.abtest import DeployError
        from relearn.abtest.champion import set_champion

        hook = self.hook()
        try:
            version = set_champion(
                hook.services(),
                hook.model_config(self.model_name),
                version=None if self.version in (None, "") else str(self.version),
                rollback=True,
                by=f"airflow:{self.dag_id}" if self.has_dag() else "airflow",
                reason=f"rollback by task {self.task_id}",
            )
        except DeployError as error:
            raise AirflowFailException(str(error)) from error
        self.log.warning("%s: champion rolled back to v%s", self.model_name, version)
        return {"status": "rolled_back", "version": version}
