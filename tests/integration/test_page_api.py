"""The Relearn page's app inside Airflow's api-server app (in process, real auth manager):
who may read, who may press Retrain now, what bad input gets. The browser test
(``tests/browser``) covers the same app on a running stack with a UI session.
"""

from __future__ import annotations

import pytest

from tests.conftest import admin_headers

pytestmark = pytest.mark.integration

PAGE = "/relearn/ui"


@pytest.fixture(scope="module")
def client(stack, champion):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from relearn_airflow.api.configured import relearn_hook

    relearn_hook.cache_clear()
    with TestClient(create_app()) as test_client:
        yield test_client
    relearn_hook.cache_clear()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def admin(client) -> dict[str, str]:
    return admin_headers(client)


@pytest.fixture(scope="module")
def viewer() -> dict[str, str]:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username="viewer", role="viewer")
    return _bearer(SimpleAuthManager().generate_jwt(user))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/static/app.js"),
        ("GET", "/api/session"),
        ("GET", "/api/models"),
        ("GET", "/api/models/churn"),
        ("POST", "/api/models/churn/retrain"),
    ],
)
def test_every_route_needs_a_user(client, method, path):
    assert client.request(method, PAGE + path).status_code == 401


def test_the_session_cookie_is_enough(client, admin):
    token = admin["Authorization"].removeprefix("Bearer ")
    answer = client.get(f"{PAGE}/api/session", cookies={"_token": token})
    assert answer.status_code == 200
    assert answer.json()["can_request_retraining"] is True


def test_a_viewer_reads_the_page_but_cannot_retrain(client, viewer, champion):
    assert client.get(f"{PAGE}/api/session", headers=viewer).json() == {
        "user": "viewer",
        "can_request_retraining": False,
    }
    page = client.get(f"{PAGE}/api/models/churn?bucket=day", headers=viewer)
    assert page.status_code == 200
    body = page.json()
    assert body["trends"]["bucket"] == "day"
    assert {"health", "alerts", "analysis", "runs"} <= body.keys()
    assert any(a["alias"] == "champion" for a in body["deployment"]["aliases"])
    denied = client.post(f"{PAGE}/api/models/churn/retrain", json={}, headers=viewer)
    assert denied.status_code == 403


def test_the_page_and_its_modules_are_served(client, admin):
    page = client.get(f"{PAGE}/", headers=admin)
    assert page.status_code == 200 and 'src="static/app.js"' in page.text
    module = client.get(f"{PAGE}/static/app.js", headers=admin)
    assert module.headers["content-type"].startswith("application/javascript")
    assert client.get(f"{PAGE}/static/..%2Fapp.py", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/models/nope", None, 404),
        ("/api/models/churn?bucket=week", None, 422),
        ("/api/models/churn/retrain", {"priority": "urgent"}, 422),
        ("/api/models/churn/retrain", {"reason": "x" * 2001}, 422),
        ("/api/models/churn/retrain", {"model": "credit_risk"}, 422),
        ("/api/models/nope/retrain", {}, 404),
    ],
)
def test_bad_input_is_refused_with_what_is_wrong(client, admin, path, body, code):
    method = "GET" if body is None else "POST"
    answer = client.request(method, PAGE + path, json=body, headers=admin)
    assert answer.status_code == code, answer.text
