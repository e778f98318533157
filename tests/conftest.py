"""Test session: a real embedded Postgres, a real MLflow server and Airflow's metadata DB.

Everything lives in a throw-away RELEARN_HOME on free ports, configured in
``pytest_configure`` because Airflow reads its configuration when first imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="relearn-test-"))


def pytest_configure(config: pytest.Config) -> None:
    from relearn.settings import load_settings
    from relearn_dev.stack.services import airflow_env, throwaway_env

    os.environ.update(throwaway_env(_HOME, ROOT))
    for variable in ("RELEARN_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        os.environ.pop(variable, None)
    os.environ.update(airflow_env(load_settings(), ROOT))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator:
    """Postgres + MLflow server (+ Airflow's migrated metadata DB) for the whole session."""
    from relearn.settings import load_settings
    from relearn_dev.stack.services import Stack

    running = Stack(load_settings(), ROOT)
    try:
        running.start_database()
        running.start_mlflow()
        running.migrate_airflow()
        yield running
    finally:
        from airflow import settings as airflow_settings

        # Close Airflow's pooled connections first, or its atexit hook reports a dead server.
        airflow_settings.dispose_orm()
        running.discard()


@pytest.fixture(scope="session")
def settings(stack):
    return stack.settings


@pytest.fixture(scope="session")
def database_url(settings) -> str:
    return settings.database_url("relearn")


@pytest.fixture(scope="session")
def tracking_uri(settings) -> str:
    return settings.tracking_uri


@pytest.fixture(scope="session")
def config():
    from relearn.config import load_config

    return load_config(ROOT / "relearn.yaml")


@pytest.fixture(scope="session")
def model_cfg(config):
    return config.model("churn")


@pytest.fixture(scope="session")
def champion(model_cfg, database_url, tracking_uri):
    """Model v1 bootstrapped once for the session."""
    from relearn.bootstrap import bootstrap_model
    from relearn.services import Services

    return bootstrap_model(Services(database_url, tracking_uri), model_cfg)


# Variables that point the stack at external servers: a test sets them only on purpose
# (``mlflow.set_tracking_uri`` in this process exports MLFLOW_TRACKING_URI, for one).
_EXTERNAL_SERVER_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "RELEARN_DATABASE_URL",
    "RELEARN_AIRFLOW_DATABASE_URL",
    "RELEARN_MLFLOW_DATABASE_URL",
)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run the installed ``relearn`` command as a user would (``unset``: variables to drop)."""
    dropped = (*_EXTERNAL_SERVER_VARIABLES, *unset)
    inherited = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [str(Path(sys.executable).parent / "relearn"), *args],
        capture_output=True,
        text=True,
        env={**inherited, **(env or {})},
        cwd=cwd,
        timeout=300,
        check=False,
    )


def abort_live_tests(database_url: str, model_name: str | None = None) -> None:
    """End the A/B tests earlier modules left live (of one model, or all): a live test
    changes what the next module's check does (a cooldown, or a test started at 50 %)."""
    from relearn.store.db import transaction  # the core loads after pytest_configure's env

    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ab_tests SET status = 'aborted', reason = 'test isolation', ended_at = now() "
            "WHERE status IN ('pending', 'running', 'paused') "
            "AND (%(model)s::text IS NULL OR model_name = %(model)s)",
            {"model": model_name},
        )


def admin_headers(client) -> dict[str, str]:
    """The stack admin's REST API token as a header, obtained as a user would: ``POST
    /auth/token`` with the password ``make run`` prints (``client``: a TestClient of Airflow)."""
    import json

    passwords = Path(os.environ["AIRFLOW_HOME"]) / "passwords.json"
    username, password = next(iter(json.loads(passwords.read_text()).items()))
    answer = client.post("/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}
