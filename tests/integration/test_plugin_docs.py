"""Every HTTP route of Relearn needs an Airflow user, its API documentation included: FastAPI's
own ``/docs``, ``/redoc`` and ``/openapi.json`` would answer anyone who reaches the api-server."""

from __future__ import annotations

import pytest

from tests.conftest import admin_headers

pytestmark = pytest.mark.integration

PREFIXES = ("/relearn/api/v1", "/relearn/ui", "/relearn/monitoring")


@pytest.fixture(scope="module")
def client(stack):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def auth(client) -> dict[str, str]:
    return admin_headers(client)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_api_docs_need_a_user_like_every_route(client, auth, prefix: str) -> None:
    for path in ("/docs", "/openapi.json"):
        assert client.get(prefix + path).status_code == 401, path
    assert client.get(f"{prefix}/redoc").status_code == 404
    schema = client.get(f"{prefix}/openapi.json", headers=auth)
    assert schema.status_code == 200, schema.text
    assert schema.json()["paths"]
    assert schema.json()["servers"][0]["url"] == prefix  # where "Try it out" sends requests
    docs = client.get(f"{prefix}/docs", headers=auth)
    assert docs.status_code == 200
    assert f"{prefix}/openapi.json" in docs.text
