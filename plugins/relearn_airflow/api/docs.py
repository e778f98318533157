"""The API documentation of Relearn's apps, behind the same login as their routes.

FastAPI serves ``/docs``, ``/redoc`` and ``/openapi.json`` outside an app's dependencies, so
they would answer anyone who can reach the api-server. Each app turns those off
(``NO_PUBLIC_DOCS``) and adds them here as ordinary routes, which its authentication covers:
a browser logged in to Airflow (its session cookie) or a client with a token reads them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request  # noqa: TC002 (FastAPI reads route annotations at runtime)
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse  # noqa: TC002 (as above)

# FastAPI(**NO_PUBLIC_DOCS): none of FastAPI's own documentation routes.
NO_PUBLIC_DOCS: dict[str, Any] = {"docs_url": None, "redoc_url": None, "openapi_url": None}


def add_private_docs(app: FastAPI) -> None:
    """``GET /openapi.json`` and ``GET /docs`` (Swagger UI), with the app's dependencies."""

    def openapi(request: Request) -> dict[str, Any]:
        # As FastAPI's own: the mount's prefix as the first server, so "Try it out" and
        # generated clients call /relearn/api/v1/..., not the host's root.
        schema = app.openapi()
        root = request.scope.get("root_path", "").rstrip("/")
        servers = schema.get("servers", [])
        if root and root not in {server.get("url") for server in servers}:
            schema = {**schema, "servers": [{"url": root}, *servers]}
        return schema

    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} docs")

    app.get("/openapi.json", include_in_schema=False)(openapi)
    app.get("/docs", include_in_schema=False)(docs)
