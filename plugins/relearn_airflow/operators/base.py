"""``RelearnModelOperator``: what every Relearn operator working on one model shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from relearn_airflow.hooks.relearn import RelearnHook

if TYPE_CHECKING:
    from collections.abc import Sequence


class RelearnModelOperator(BaseOperator):
    """An operator for one configured model; builds its ``RelearnHook`` in ``execute``.

    :param model_name: the configured model (templated; may be mapped).
    :param relearn_conn_id: connection to Relearn's database.
    :param mlflow_conn_id: connection to the MLflow tracking server.
    """

    template_fields: Sequence[str] = ("model_name",)

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

    def hook(self) -> RelearnHook:
        return RelearnHook(self.relearn_conn_id, self.mlflow_conn_id)
