"""``RelearnModelOperator``: what every Relearn operator working on one model shares.

That includes the one rule about models without a champion: a step that needs one raises
``relearn.services.NoChampionError``, and the task ends *skipped* with its message (a fresh
deployment is not a failure). ``model_health`` opts out: its job is to report it.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from relearn.services import NoChampionError
from relearn_airflow.hooks.relearn import RelearnHook
from relearn_airflow.queues import training_queue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence


@contextmanager
def skipped_without_champion() -> Iterator[None]:
    """Turn ``NoChampionError`` into ``AirflowSkipException`` carrying its message."""
    try:
        yield
    except NoChampionError as error:
        raise AirflowSkipException(str(error)) from error


def _skipping_without_champion(execute: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(execute)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> Any:
        with skipped_without_champion():
            return execute(self, *args, **kwargs)

    return wrapper


class RelearnModelOperator(BaseOperator):
    """An operator for one configured model; builds its ``RelearnHook`` in ``execute``.

    Every subclass's ``execute`` (and ``execute_complete``) is wrapped so that a missing
    champion skips the task with the reason; set ``skip_without_champion = False`` to let
    ``NoChampionError`` fail it instead.

    :param model_name: the configured model (templated; may be mapped).
    :param relearn_conn_id: connection to Relearn's database.
    :param mlflow_conn_id: connection to the MLflow tracking server.
    :param config_path: the Relearn YAML file (default: ``$RELEARN_CONFIG``).
    """

    template_fields: Sequence[str] = ("model_name",)
    skip_without_champion: ClassVar[bool] = True
    # Heavy steps run on the training queue's workers (relearn_airflow.queues); an explicit
    # ``queue=`` still wins.
    heavy: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.skip_without_champion:
            return
        # Like Airflow's own ExecutorSafeguard, wrap the methods a subclass defines itself.
        for name in ("execute", "execute_complete"):
            if name in vars(cls):
                setattr(cls, name, _skipping_without_champion(vars(cls)[name]))

    def __init__(
        self,
        *,
        model_name: str,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        mlflow_conn_id: str = "mlflow_default",
        config_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if self.heavy:
            kwargs.setdefault("queue", training_queue())
        super().__init__(**kwargs)
        self.model_name = model_name
        self.relearn_conn_id = relearn_conn_id
        self.mlflow_conn_id = mlflow_conn_id
        self.config_path = config_path

    def hook(self) -> RelearnHook:
        return RelearnHook(self.relearn_conn_id, self.mlflow_conn_id, self.config_path)
