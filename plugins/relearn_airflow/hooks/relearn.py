"""``RelearnHook``: Relearn's database, the MLflow server and the model config, from Connections."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from relearn.config import ModelConfig, RelearnConfig
    from relearn.services import Services

log = logging.getLogger(__name__)


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
        self._config: RelearnConfig | None = None
        self._config_stamp: tuple[int, int] | None = None

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

    @property
    def config(self) -> RelearnConfig:
        """The configuration, read again when its file changes.

        The api-server's hook lives as long as the process: a model added to the file is
        served without a restart. Once a configuration was read, a file that no longer loads
        (an edit in progress) keeps the one read before, with a warning.
        """
        from relearn.config import ConfigError, config_path, load_config

        path = Path(self.config_path) if self.config_path else config_path()
        stamp = _file_stamp(path)
        if self._config is not None and stamp == self._config_stamp:
            return self._config
        try:
            config = load_config(path)
        except ConfigError as error:
            if self._config is None:
                raise
            log.warning("keeping the configuration read before: %s", error)
            config = self._config
        self._config, self._config_stamp = config, stamp
        return config

    def model_config(self, name: str) -> ModelConfig:
        return self.config.model(name)

    def services(self) -> Services:
        """Relearn's database and MLflow server, as the core's functions take them."""
        from relearn.services import Services

        return Services(self.database_url, self.tracking_uri)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """When and how big the file last was (None: it is gone), to notice an edit."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _libpq_url(uri: str) -> str:
    """Airflow spells Postgres URIs ``postgres://``; libpq wants ``postgresql://``."""
    scheme, sep, rest = uri.partition("://")
    return f"postgresql{sep}{rest}" if scheme in ("postgres", "postgresql", "relearn") else uri
