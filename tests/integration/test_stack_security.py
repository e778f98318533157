"""The local stack from a private checkout, with password authentication only."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import psycopg2
import pytest

from relearn.settings import load_settings
from relearn_dev.stack.postgres import (
    SYSTEM_USER,
    EmbeddedPostgres,
    ensure_database,
    wheel_install,
)
from relearn_dev.stack.services import Stack, free_port, throwaway_env
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.integration


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_postgres_from_a_private_checkout_needs_the_generated_password(tmp_path) -> None:
    """A checkout in a 0700 directory (root's home, ``mktemp -d``): the server starts, the
    CLI reaches it with the generated password, nothing outside the project changes mode, and
    a connection without (or with a wrong) password is refused, local socket included."""
    private = tmp_path / "someones-home"
    private.mkdir(mode=0o700)
    checkout = private / "relearn"
    checkout.mkdir()
    port = free_port()
    env = {"RELEARN_HOME": str(checkout / ".relearn"), "RELEARN_PG_PORT": str(port)}
    settings = load_settings(env)
    modes = {path: _mode(path) for path in (checkout, private, *private.parents)}
    server = EmbeddedPostgres.from_settings(settings)
    no_passfile = str(tmp_path / "no-pgpass")
    try:
        server.start()
        ensure_database(server.url(), "relearn")
        migrated = run_cli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert "applied migrations" in migrated.stdout
        assert run_cli("db-url", env=env).stdout.strip() == settings.database_url("relearn")

        refused = {
            "no password over TCP": f"postgresql://postgres@127.0.0.1:{port}/relearn",
            "a wrong password": f"postgresql://postgres:wrong@127.0.0.1:{port}/relearn",
            "no password on the socket": (
                f"postgresql://postgres@/relearn?host={server.socket_dir}&port={port}"
            ),
        }
        for case, url in refused.items():
            try:
                psycopg2.connect(url, connect_timeout=5, passfile=no_passfile).close()
            except psycopg2.OperationalError as error:
                assert "password" in str(error), (case, error)
            else:
                pytest.fail(f"connected with {case}")
        assert _mode(settings.postgres_password_file) == 0o600
    finally:
        server.destroy()
    assert {path: _mode(path) for path in modes} == modes


def _refuses_without_password(port: int, tmp_path) -> bool:
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        psycopg2.connect(url, connect_timeout=5, passfile=str(tmp_path / "no-pgpass")).close()
    except psycopg2.OperationalError as error:
        return "password" in str(error)
    return False


def test_a_cluster_left_by_make_clean_is_started_afresh(tmp_path) -> None:
    """``make clean`` deletes RELEARN_HOME (and the password); a cluster kept elsewhere for it
    (root's private copy) must not keep the old password: the next start works."""
    env = {"RELEARN_HOME": str(tmp_path / ".relearn"), "RELEARN_PG_PORT": str(free_port())}
    first = EmbeddedPostgres.from_settings(load_settings(env))
    first.start()
    first.stop()
    shutil.rmtree(tmp_path / ".relearn")
    again = EmbeddedPostgres.from_settings(load_settings(env))
    try:
        again.start()
        psycopg2.connect(again.url(), connect_timeout=5).close()
    finally:
        again.destroy()


def test_a_trusting_cluster_of_an_older_relearn_gets_the_password(tmp_path) -> None:
    """Clusters made in place with ``trust`` (before this version) are switched to scram."""
    state = Path(tempfile.mkdtemp(dir="/var/tmp" if os.geteuid() == 0 else tmp_path))
    data = state / "postgres"
    try:
        state.chmod(0o755)  # our own throw-away directory: the server account must reach it
        data.mkdir(mode=0o700)
        account = {} if os.geteuid() else {"user": SYSTEM_USER}
        if account:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(data, entry.pw_uid, entry.pw_gid)
        initdb = wheel_install() / "bin" / "initdb"
        subprocess.run(
            [str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
            cwd=state,
            **account,
        )
        server = EmbeddedPostgres(data, free_port(), "the-generated-password")
        assert not server.private
        try:
            server.start()
            assert _refuses_without_password(server.port, tmp_path)
            psycopg2.connect(server.url(), connect_timeout=5).close()
        finally:
            server.destroy()
    finally:
        shutil.rmtree(state, ignore_errors=True)


LOOPBACK = {"127.0.0.1", "::1"}
RUNNING_JOBS = "SELECT DISTINCT job_type FROM job WHERE state = 'running'"


def _process_trees(stack: Stack) -> list[psutil.Process]:
    """Every process the stack started (with their children) and the Postgres postmaster."""
    roots = [psutil.Process(service.process.pid) for service in stack.supervisor.services]
    postmaster = stack.postgres.data_dir / "postmaster.pid"
    roots.append(psutil.Process(int(postmaster.read_text().split()[0])))
    found = []
    for root in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            found += [root, *root.children(recursive=True)]
    return found


def _listening(stack: Stack) -> set[tuple[str, int]]:
    sockets = set()
    for process in _process_trees(stack):
        with contextlib.suppress(psutil.NoSuchProcess):
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    sockets.add((connection.laddr.ip, connection.laddr.port))
    return sockets


def _wait_for_jobs(settings, jobs: set[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        connection = psycopg2.connect(settings.database_url("airflow"))
        try:
            with connection.cursor() as cursor:
                cursor.execute(RUNNING_JOBS)
                running = {row[0] for row in cursor.fetchall()}
        finally:
            connection.close()
        if jobs <= running or time.monotonic() > deadline:
            assert jobs <= running, f"Airflow jobs running: {running}"
            return
        time.sleep(1)


@pytest.mark.slow
def test_stack_listens_on_loopback_only_and_keeps_credentials_private(tmp_path) -> None:
    """A whole stack on its own ports: no scheduler (so no DAG run) before ``start_scheduler``,
    every listening socket of every process it started on loopback, the task-log server on
    RELEARN_LOG_SERVER_PORT, and every file under RELEARN_HOME holding a secret 0600."""
    settings = load_settings(throwaway_env(tmp_path / "home", ROOT))
    stack = Stack(settings, ROOT)
    try:
        stack.start_database()
        stack.start_mlflow()
        stack.start_airflow(scheduler=False)
        assert "airflow scheduler" not in [s.name for s in stack.supervisor.services]
        stack.start_scheduler()
        _wait_for_jobs(settings, {"SchedulerJob", "TriggererJob"})
        sockets: set[tuple[str, int]] = set()
        for _ in range(10):  # child log servers bind a moment after their parent starts
            sockets |= _listening(stack)
            time.sleep(1)
        ports = {port for _ip, port in sockets}
        expected = {settings.pg_port, settings.mlflow_port, settings.airflow_port}
        assert expected | {settings.log_server_port} <= ports, sockets
        assert {ip for ip, _port in sockets} <= LOOPBACK, sockets

        secret_values = [
            settings.postgres_password,
            *json.loads((settings.home / "secrets.json").read_text()).values(),
        ]
        holding = [
            path
            for path in settings.home.rglob("*")
            if path.is_file()
            and any(value in path.read_text(errors="replace") for value in secret_values)
        ]
        assert settings.home / "airflow" / "passwords.json" in holding
        assert {p: oct(_mode(p)) for p in holding} == {p: oct(0o600) for p in holding}
    finally:
        stack.discard()
