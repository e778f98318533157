"""Where the local stack lives and how to reach it, read from the environment.

Nothing here touches the network: it resolves names, so any component (CLI, Airflow task, test)
can import it cheaply. It writes nothing: the embedded Postgres's password is created (0600,
``read_or_create_secret``) by the stack that starts that server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DATABASES = ("airflow", "mlflow", "relearn")
# The embedded server's superuser; its password is generated per RELEARN_HOME.
POSTGRES_USER = "postgres"


class StackError(RuntimeError):
    """The stack cannot start or be reached; the message says what to do (CLI exit code 2)."""


@dataclass(frozen=True)
class Settings:
    home: Path
    pg_port: int
    mlflow_port: int
    airflow_port: int
    log_server_port: int
    host: str
    external_urls: dict[str, str]
    external_tracking_uri: str | None

    @property
    def embedded_postgres(self) -> bool:
        """True when Relearn runs its own Postgres server (no external URL given)."""
        return not self.external_urls

    @property
    def postgres_password_file(self) -> Path:
        return self.home / "postgres-password"

    @property
    def postgres_password(self) -> str:
        """The embedded server's password (scram-sha-256), which the stack generated when it
        first started; StackError when there is no stack in ``home``.

        Never created here: a command run outside the project (or before ``make run``) would
        otherwise make up a password, leave a ``.relearn/`` behind and print a URL of nothing.
        """
        try:
            return self.postgres_password_file.read_text().strip()
        except FileNotFoundError:
            raise StackError(
                f"no Relearn stack in {self.home} ({self.postgres_password_file.name} is "
                "missing): run this in the project directory where `make run` started it, set "
                "RELEARN_HOME to that project's .relearn, or RELEARN_DATABASE_URL to your own "
                "PostgreSQL"
            ) from None

    def database_url(self, database: str) -> str:
        """The libpq URL of one of the stack's databases (``airflow``, ``mlflow``, ``relearn``)."""
        if database not in DATABASES:
            raise ValueError(f"unknown database '{database}' (choose from {', '.join(DATABASES)})")
        if self.embedded_postgres:
            credentials = f"{POSTGRES_USER}:{self.postgres_password}"
            return f"postgresql://{credentials}@{self.host}:{self.pg_port}/{database}"
        if database in self.external_urls:
            return self.external_urls[database]
        base = self.external_urls.get("relearn") or next(iter(self.external_urls.values()))
        return with_database(base, database)

    @property
    def tracking_uri(self) -> str:
        return self.external_tracking_uri or f"http://{self.host}:{self.mlflow_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.airflow_port}"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def read_or_create_secret(path: Path) -> str:
    """A random secret kept in a 0600 file; concurrent first calls agree on one value."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(24) + "\n")
    try:
        os.link(draft, path)  # atomic and never overwrites: the first writer wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def libpq_url(url: str) -> str:
    """Strip a SQLAlchemy driver suffix (``postgresql+psycopg2://``) so libpq accepts the URL."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def sqlalchemy_url(url: str) -> str:
    """A URL with an explicit psycopg2 driver, as Airflow and MLflow expect."""
    return "postgresql+psycopg2://" + libpq_url(url).partition("://")[2]


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':')[0]}:***@{location}"


def _port(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if environ is None else environ
    external = {
        name: env[var]
        for name, var in (
            ("relearn", "RELEARN_DATABASE_URL"),
            ("airflow", "RELEARN_AIRFLOW_DATABASE_URL"),
            ("mlflow", "RELEARN_MLFLOW_DATABASE_URL"),
        )
        if env.get(var)
    }
    return Settings(
        home=Path(env.get("RELEARN_HOME", ".relearn")).expanduser().resolve(),
        pg_port=_port(env, "RELEARN_PG_PORT", 5433),
        mlflow_port=_port(env, "RELEARN_MLFLOW_PORT", 5000),
        airflow_port=_port(env, "RELEARN_AIRFLOW_PORT", 8080),
        log_server_port=_port(env, "RELEARN_LOG_SERVER_PORT", 8793),
        host="127.0.0.1",
        external_urls=external,
        external_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
    )
