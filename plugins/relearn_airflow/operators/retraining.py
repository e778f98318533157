"""Operators of a retraining run: record it, prepare the data, train, validate, deploy.

Each is thin: it stores its arguments, builds a ``RelearnHook`` in ``execute`` and calls one
step of ``relearn.retraining`` by name in code. Steps hand over the retraining run id only; a
step whose result is terminal (insufficient data, a dry run, a run already finished) skips what
follows. Each step's log is also kept in the run's MLflow run (``logs/<task>.try<N>.log``), and
the run's row links to its DAG run's page. Failures the data or the setup causes
(``RetrainingError``) fail at once instead of retrying; a model without a champion to
fine-tune (``NoChampionError``) fails the run's row with the reason, and the task is skipped
as for every Relearn operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from relearn.retraining import RetrainingError
from relearn.services import NoChampionError, utcnow
from relearn_airflow.operators.base import RelearnModelOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from relearn.config import ModelConfig
    from relearn.retraining.results import StepResult
    from relearn.services import Services


def dag_run_url(dag_id: str, airflow_run_id: str) -> str:
    """The DAG run's page in the Airflow UI: its task instances and their logs."""
    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(airflow_run_id, safe='')}"


class RetrainingStepOperator(RelearnModelOperator):
    """Runs one retraining step for one model of one retraining run.

    :param retraining_run_id: the ``model_retraining_runs`` id (the ``record_run`` XCom).
    """

    template_fields: Sequence[str] = ("model_name", "retraining_run_id")
    ui_color = "#e8f4ea"

    def __init__(self, *, retraining_run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retraining_run_id = retraining_run_id

    def run_step(
        self, services: Services, model_cfg: ModelConfig, retraining_run_id: str
    ) -> StepResult:
        """Call this operator's step (each subclass names its own)."""
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from relearn.retraining.record import fail
        from relearn.retraining.runlog import captured_log

        hook = self.hook()
        services = hook.services()
        model_cfg = hook.model_config(self.model_name)
        run_id = str(self.retraining_run_id)
        log_name = f"{self.task_id}.try{getattr(context.get('ti'), 'try_number', 1)}"
        try:
            with captured_log(services, model_cfg, run_id, log_name):
                result = self.run_step(services, model_cfg, run_id)
        except RetrainingError as error:
            raise AirflowFailException(str(error)) from error
        except NoChampionError as error:
            # A skip runs no failure callback: record it here; the base class skips the task.
            fail(services, run_id, error)
            raise
        self.log.info("%s retraining run %s: %s", self.model_name, run_id, result.detail)
        if result.terminal:
            raise AirflowSkipException(result.detail)
        return result.to_xcom()


class StartRetrainingRunOperator(RelearnModelOperator):
    """Record the run as ``running`` (one row per DAG run and model); returns its id.

    Options come from the DAG run's Params listed in ``relearn.retraining.options.OPTION_PARAMS``
    (``lookback_days``, ``confidence_threshold``, ``min_error_samples``, ``fine_tune``,
    ``epochs``, ``learning_rate``, ``replay_ratio``, ``dry_run``, ``source``, ``request_id``,
    ``triggered_by``); ``options`` overrides them.

    :param options: explicit options (templated), e.g. from a request or a drift check.
    """

    template_fields: Sequence[str] = ("model_name", "options")
    ui_color = "#e8f4ea"

    def __init__(self, *, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = options or {}

    def execute(self, context: Context) -> str:
        from relearn.retraining.options import ReinforceOptions
        from relearn.retraining.record import start

        hook = self.hook()
        model_cfg = hook.model_config(self.model_name)
        try:
            options = ReinforceOptions.from_params(
                model_cfg, context.get("params") or {}, self.options
            )
        except ValueError as error:
            raise AirflowFailException(f"invalid options for {self.model_name}: {error}") from error
        dag_run = context["dag_run"]
        airflow_run_id = dag_run.run_id
        result = start(
            hook.services(),
            model_cfg,
            options,
            trigger_key=airflow_run_id,  # a retry of this task finds the same row
            now=context.get("data_interval_end") or utcnow(),
            dag_id=dag_run.dag_id,
            airflow_url=dag_run_url(dag_run.dag_id, airflow_run_id),
        )
        # Always the id, even of a run that finished before: the next step skips it, and
        # close_request needs it to close the request.
        return result.retraining_run_id


class RetrainingDataOperator(RetrainingStepOperator):
    """Load the window in SQL, validate it with Great Expectations, snapshot the dataset."""

    def run_step(
        self, services: Services, model_cfg: ModelConfig, retraining_run_id: str
    ) -> StepResult:
        from relearn.retraining.prepare import prepare

        return prepare(services, model_cfg, retraining_run_id)


class TrainModelOperator(RetrainingStepOperator):
    """Fine-tune the champion (or train from scratch) and log the candidate to MLflow."""

    def run_step(
        self, services: Services, model_cfg: ModelConfig, retraining_run_id: str
    ) -> StepResult:
        from relearn.retraining.train import train

        return train(services, model_cfg, retraining_run_id)


class ValidateModelOperator(RetrainingStepOperator):
    """Gate the candidate: absolute thresholds and no regression against the champion."""

    def run_step(
        self, services: Services, model_cfg: ModelConfig, retraining_run_id: str
    ) -> StepResult:
        from relearn.retraining.evaluate import evaluate

        return evaluate(services, model_cfg, retraining_run_id)


class MLflowDeployOperator(RetrainingStepOperator):
    """Register a run's candidate and alias it ``challenger`` when blessed.

    With ``action="rollback"`` it instead points ``champion`` back at ``version`` (default:
    the last known good one), through the same crash-safe deployer as ``relearn registry``.

    :param action: ``publish`` (default) or ``rollback``.
    :param version: the version to roll back to (templated; ``rollback`` only; empty: the
        last known good).
    """

    template_fields: Sequence[str] = ("model_name", "retraining_run_id", "version")

    def __init__(
        self, *, action: str = "publish", version: str | int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if action not in ("publish", "rollback"):
            raise ValueError(f"action must be 'publish' or 'rollback', got {action!r}")
        self.action = action
        self.version = version

    def run_step(
        self, services: Services, model_cfg: ModelConfig, retraining_run_id: str
    ) -> StepResult:
        from relearn.retraining.publish import publish

        return publish(services, model_cfg, retraining_run_id)

    def execute(self, context: Context) -> dict[str, Any]:
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
