"""What the plugin's apps (collection API, page) share: one hook per api-server process and
the configured models, an unknown name being a 404 that lists the known ones."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from fastapi import HTTPException, status

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn_airflow.hooks.relearn import RelearnHook


@functools.cache
def relearn_hook() -> RelearnHook:
    # Imported on first request: every Airflow process loads plugins, only the api-server
    # serves these apps.
    from relearn_airflow.hooks.relearn import RelearnHook

    return RelearnHook()


def configured_model(name: str) -> ModelConfig:
    """The configured model, or a 404 that lists the known names."""
    config = relearn_hook().config
    if name not in config.model_names:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown model '{name}' (configured: {', '.join(config.model_names)})",
        )
    return config.model(name)
