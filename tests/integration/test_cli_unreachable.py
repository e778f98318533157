"""Every command that needs the stack says what to start, at once, when nothing is running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

# Before the fix `reinforce` and `registry list` sat in the MLflow client's retries for minutes.
TIMEOUT_SECONDS = 90


def _closed_port() -> int:
    """A port with nothing listening (bound once by the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def nothing_running(tmp_path: Path) -> dict[str, str]:
    """The environment of a stack whose Postgres and MLflow are both down."""
    (tmp_path / "postgres-password").write_text("from the stack's first start\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("RELEARN_DATABASE_URL", "MLFLOW_TRACKING_URI")
    }
    return {
        **env,
        "RELEARN_HOME": str(tmp_path),
        "RELEARN_PG_PORT": str(_closed_port()),
        "RELEARN_MLFLOW_PORT": str(_closed_port()),
    }


def _relearn(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "relearn"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "service"),
    [
        (["migrate"], "Postgres"),
        (["request", "list"], "Postgres"),
        (["ab", "status", "--model", "churn"], "Postgres"),
        (["registry", "history", "--model", "churn"], "Postgres"),
        (["drift", "--check-once"], "the MLflow server"),
        (["summary"], "the MLflow server"),
        (["reinforce", "--model", "churn"], "the MLflow server"),
        (["registry", "list", "--model", "churn"], "the MLflow server"),
        (["bootstrap"], "the MLflow server"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_a_stopped_stack_is_one_line_saying_what_to_start(
    args: list[str], service: str, nothing_running: dict[str, str]
) -> None:
    result = _relearn(*args, env=nothing_running)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"relearn: cannot reach {service} ")
    assert line.endswith("start the stack with `make run` (or `relearn stack up --no-airflow`)")
    if service == "Postgres":
        assert f"port {nothing_running['RELEARN_PG_PORT']} failed" in line
    else:
        assert f"http://127.0.0.1:{nothing_running['RELEARN_MLFLOW_PORT']}" in line


def test_an_external_server_is_named_by_its_variable(nothing_running: dict[str, str]) -> None:
    url = f"postgresql://relearn@127.0.0.1:{_closed_port()}/relearn"

    result = _relearn("request", "list", env={**nothing_running, "RELEARN_DATABASE_URL": url})

    assert result.returncode == 2
    assert result.stderr.strip().endswith("check RELEARN_DATABASE_URL and that the server runs")


@pytest.mark.parametrize(
    "args",
    [
        ["reinforce", "--model", "churn"],
        ["registry", "list", "--model", "churn"],
        ["ab", "start", "--model", "churn"],
        ["drift", "--check-once"],
        ["summary"],
    ],
    ids=lambda value: "-".join(value),
)
def test_a_missing_mlflow_server_is_reported_at_once_while_postgres_runs(
    args: list[str], database_url: str
) -> None:
    """With Postgres up these commands used to get far enough to sit in MLflow's retries."""
    mlflow_port = str(_closed_port())
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        "RELEARN_MLFLOW_PORT": mlflow_port,
    }

    result = _relearn(*args, env=env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"relearn: cannot reach the MLflow server at http://127.0.0.1:{mlflow_port} "
        "([Errno 111] Connection refused): start the stack with `make run` "
        "(or `relearn stack up --no-airflow`)"
    ]
