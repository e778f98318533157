"""``RelearnHook``: Relearn's database, the MLflow server and the model config, from Connections."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from relearn.config import ModelConfig, RelearnConfig
    from relearn.services import Services


class RelearnHook(BaseHook):
    """Resolves where Relearn's state lives; credentials only come from Airflow Connections.

    :param relearn_conn_id: a Postgres connection to Relearn's database.
    :param mlflow_conn_id: an HTTP connection whose host is the MLflow tracking URI.
    :param config_path: the Relearn YAML file (default: ``$RELEARN_CONFIG``).
    """

    conn_name_attr = "relearn_conn_id"
    default_conn_name = "relearn_db"
    conn_type = "relearn"
    hook_name = "Relearn"

    def __init__(
        self,
        relearn_conn_id: str = default_conn_name,
        mlflow_conn_id: str = "mlflow_default",
        config_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.relearn_conn_id = relearn_conn_id
        self.mlflow_conn_id = mlflow_conn_id
        self.config_path = config_path

    @cached_property
    def database_url(self) -> str:
        return _libpq_url(self.get_connection(self.relearn_conn_id).get_uri())

    async def async_database_url(self) -> str:
        """``database_url`` for triggers, which must not block the triggerer's event loop."""
        return _libpq_url((await self.aget_connection(self.relearn_conn_id)).get_uri())

    @cached_property
    def tracking_uri(self) -> str:
        conn = self.get_connection(self.mlflow_conn_id)
        host = conn.host or ""
        if "://" in host:
            return host.rstrip("/")
        scheme = conn.schema or "http"
        port = f":{conn.port}" if conn.port else ""
        return f"{scheme}://{host}{port}"

    @cached_property
    def config(self) -> RelearnConfig:
        from relearn.config import load_config

        return load_config(self.config_path)

    def model_config(self, name: str) -> ModelConfig:
        return self.config.model(name)

    def services(self) -> Services:
        """Relearn's database and MLflow server, as the core's functions take them."""
        from relearn.services import Services

        return Services(self.database_url, self.tracking_uri)


def _libpq_url(uri: str) -> str:
    """Airflow spells Postgres URIs ``postgres://``; libpq wants ``postgresql://``."""
    scheme, sep, rest = uri.partition("://")
    return f"postgresql{sep}{rest}" if scheme in ("postgres", "postgresql", "relearn") else uri
