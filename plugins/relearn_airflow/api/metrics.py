"""``/relearn/monitoring/metrics``: Prometheus metrics of every configured model.

Computed at scrape time by ``relearn.monitoring.metrics`` from Relearn's database and the
MLflow registry (``RelearnHook`` connections, read once per api-server process). Like every
Relearn route it requires an authenticated Airflow user: Prometheus sends a bearer token
(README, "Health, metrics and alerts").
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Response

from relearn_airflow.api.docs import NO_PUBLIC_DOCS, add_private_docs

if TYPE_CHECKING:
    from relearn_airflow.hooks.relearn import RelearnHook

URL_PREFIX = "/relearn/monitoring"


@functools.cache
def _hook() -> RelearnHook:
    from relearn_airflow.hooks.relearn import RelearnHook

    return RelearnHook()


def metrics() -> Response:
    """Every model's metrics in the Prometheus text format (plain ``def``: runs in a thread)."""
    from relearn.monitoring.metrics import CONTENT_TYPE, render_metrics
    from relearn.services import utcnow

    hook = _hook()
    body = render_metrics(hook.services(), hook.config.model_names, now=utcnow())
    return Response(content=body, media_type=CONTENT_TYPE)


def create_metrics_app() -> FastAPI:
    """The app, behind Airflow's authentication (401 without a valid token)."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    app = FastAPI(
        title="Relearn metrics",
        description="Prometheus exposition of Relearn's models.",
        version="1",
        dependencies=[Depends(requires_authenticated())],
        **NO_PUBLIC_DOCS,
    )
    add_private_docs(app)
    app.get("/metrics", response_class=Response)(metrics)
    return app


def metrics_app() -> dict:
    """The ``fastapi_apps`` entry of ``RelearnApiPlugin``."""
    return {"app": create_metrics_app(), "url_prefix": URL_PREFIX, "name": "Relearn metrics"}
