"""Trigger-form Params shared by Relearn's DAGs.

The ``model`` Param lists the configured models as a JSON-schema ``enum``, read from the
configuration when the DAG file is parsed, so an unknown or misspelt model (``Churn``) is
refused when the run is triggered (HTTP 400 from the REST API) instead of failing a task.
"""

from __future__ import annotations

import logging

from airflow.sdk import Param

log = logging.getLogger(__name__)


def configured_model_names(config_path: str | None = None) -> list[str]:
    """The models of ``relearn.yaml`` (``RELEARN_CONFIG``); empty if it cannot be read.

    An unreadable configuration must not hide every DAG: the Param then takes any name and
    the run's first task fails with the configuration's own message.
    """
    # Lazy: the core is imported only when a DAG is built (a YAML read, no heavy import).
    from relearn.config import ConfigError, load_config

    try:
        return load_config(config_path).model_names
    except ConfigError as error:
        log.warning("the model Param lists no models: %s", error)
        return []


def model_param(*, optional: bool = True, config_path: str | None = None) -> Param:
    """One configured model; with ``optional`` also empty, meaning every model."""
    names = configured_model_names(config_path)
    schema = {"enum": [None, *names] if optional else names} if names else {}
    if optional:
        return Param(
            None,
            type=["null", "string"],
            description="Only this model (empty: all)",
            **schema,
        )
    return Param(
        names[0] if names else "", type="string", description="A configured model", **schema
    )
