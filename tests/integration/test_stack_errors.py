"""Bad environments give one clear line and a non-zero exit, and start nothing."""

from __future__ import annotations

import socket
import subprocess

import pytest

from relearn_dev.stack.postgres import EmbeddedPostgres
from relearn_dev.stack.services import free_port
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_port_in_use_is_reported_before_anything_starts(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "stack",
            "up",
            "--no-airflow",
            env={
                "RELEARN_HOME": str(tmp_path),
                "RELEARN_MLFLOW_PORT": str(port),
                "RELEARN_PG_PORT": str(free_port()),
            },
        )
    assert result.returncode == 2
    assert f"port {port} is already in use" in result.stderr
    assert "RELEARN_MLFLOW_PORT" in result.stderr
    assert not (tmp_path / "postgres").exists()


def test_unreachable_external_database_is_one_clear_line(tmp_path) -> None:
    url = f"postgresql://relearn@127.0.0.1:{free_port()}/relearn"
    result = run_cli(
        "stack",
        "up",
        "--no-airflow",
        env={
            "RELEARN_HOME": str(tmp_path),
            "RELEARN_DATABASE_URL": url,
            "RELEARN_MLFLOW_PORT": str(free_port()),
        },
    )
    assert result.returncode == 2
    assert "cannot reach Postgres at postgresql://relearn@127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_url_prints_each_database(settings) -> None:
    for database in ("airflow", "mlflow", "relearn"):
        result = run_cli("db-url", database)
        assert result.returncode == 0
        assert result.stdout.strip() == settings.database_url(database)


def test_db_url_outside_a_project_is_one_line_and_writes_nothing(tmp_path) -> None:
    """Typed in the wrong directory: no made-up password, no ``.relearn/`` left behind."""
    home = tmp_path / ".relearn"
    result = run_cli("db-url", env={"RELEARN_HOME": str(home)})
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"no Relearn stack in {home}" in result.stderr
    assert not home.exists()


def test_stack_down_where_no_stack_ever_ran_writes_nothing(tmp_path) -> None:
    home = tmp_path / ".relearn"
    result = run_cli("stack", "down", env={"RELEARN_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert not home.exists()


def test_postgres_stops_by_signal_when_pg_ctl_fails(tmp_path, monkeypatch) -> None:
    """A server must never outlive the stack, even when ``pg_ctl stop`` reports a failure."""
    server = EmbeddedPostgres(tmp_path / "postgres", free_port(), "a-password")
    server.start()
    try:
        assert server.is_running()
        real_run = server._run

        def failing_stop(tool: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
            if tool == "pg_ctl" and args[0] == "stop":
                return subprocess.CompletedProcess([tool, *args], 1, "", "simulated failure")
            return real_run(tool, *args, **kwargs)

        monkeypatch.setattr(server, "_run", failing_stop)
        server.stop()
        assert not (server.data_dir / "postmaster.pid").exists()
        monkeypatch.undo()
        assert not server.is_running()
    finally:
        server.destroy()
