"""The pieces of the local stack and the order they start in.

Postgres (embedded unless external URLs are given) -> Relearn's schema -> the MLflow tracking
server (unless ``MLFLOW_TRACKING_URI`` is set) -> Airflow's api-server, dag-processor,
triggerer and task-log server on the Postgres metadata database with the LocalExecutor (or,
with ``RELEARN_EXECUTOR=celery``, Redis and one Celery worker per queue: ``executor.py``) -> the
scheduler, which creates DAG runs, last (``start_scheduler``), once the caller has bootstrapped
the champions. Every socket listens on loopback; every file holding a credential is 0600.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from cryptography.fernet import Fernet

from relearn.settings import (
    DATABASES,
    Settings,
    StackError,
    libpq_url,
    sqlalchemy_url,
    with_database,
)
from relearn.store.migrations import migrate
from relearn_dev.stack.executor import (
    EXECUTORS,
    celery_env,
    executor_from_env,
    log_server_service,
    redis_port,
    redis_service,
    worker_service,
    workers,
)
from relearn_dev.stack.postgres import (
    EmbeddedPostgres,
    ensure_database,
    port_in_use,
    stack_database_url,
    wait_for_server,
)
from relearn_dev.stack.supervisor import Service, Supervisor, running_owner

log = logging.getLogger(__name__)

AIRFLOW_USER = "admin"
# Started with the api-server; the scheduler comes last (see ``Stack.start_scheduler``).
AIRFLOW_COMPONENTS = ("dag-processor", "triggerer")
# Components that would start a task-log server on every interface unless told not to.
SERVING_LOGS = {"scheduler", "triggerer"}


def pid_file(settings: Settings) -> Path:
    return settings.run_dir / "services.json"


def owner_file(settings: Settings) -> Path:
    """Where the running `relearn stack up` records itself (see ``supervisor.record_owner``)."""
    return settings.run_dir / "owner.json"


def project_dir() -> Path:
    """The repository root (holds ``dags/``); ``RELEARN_PROJECT_DIR`` or the working directory."""
    root = Path(os.environ.get("RELEARN_PROJECT_DIR", Path.cwd())).resolve()
    if not (root / "dags").is_dir():
        raise StackError(f"{root} has no dags/ folder: run from the Relearn repository root")
    return root


def _tool(name: str) -> str:
    """An executable installed next to this interpreter (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from its creation, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.chmod(0o600)  # a file an older version created with a laxer mode


def _secrets(settings: Settings) -> dict[str, str]:
    """Secrets generated once per machine and kept under RELEARN_HOME (never committed)."""
    path = settings.home / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "fernet_key": Fernet.generate_key().decode(),
        "airflow_password": secrets.token_urlsafe(12),
    }
    write_private(path, json.dumps(values, indent=2))
    return values


def airflow_password(settings: Settings) -> str:
    return _secrets(settings)["airflow_password"]


def relearn_env(settings: Settings, project: Path) -> dict[str, str]:
    """What every process of the stack needs to find Relearn's config, state and services."""
    return {
        "RELEARN_HOME": str(settings.home),
        "RELEARN_PROJECT_DIR": str(project),
        "RELEARN_CONFIG": os.environ.get("RELEARN_CONFIG", str(project / "relearn.yaml")),
        "RELEARN_PG_PORT": str(settings.pg_port),
        "RELEARN_MLFLOW_PORT": str(settings.mlflow_port),
        "RELEARN_AIRFLOW_PORT": str(settings.airflow_port),
        "RELEARN_LOG_SERVER_PORT": str(settings.log_server_port),
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def throwaway_env(home: Path, project: Path) -> dict[str, str]:
    """Variables for a private stack in ``home`` on free ports (tests, benchmarks)."""
    return {
        "RELEARN_HOME": str(home),
        "RELEARN_PG_PORT": str(free_port()),
        "RELEARN_MLFLOW_PORT": str(free_port()),
        "RELEARN_AIRFLOW_PORT": str(free_port()),
        "RELEARN_LOG_SERVER_PORT": str(free_port()),
        "RELEARN_REDIS_PORT": str(free_port()),
        "RELEARN_PROJECT_DIR": str(project),
        "RELEARN_CONFIG": str(project / "relearn.yaml"),
        # Never the developer's .env: it may name their real servers.
        "RELEARN_ENV_FILE": "",
    }


def airflow_env(settings: Settings, project: Path, executor: str = "local") -> dict[str, str]:
    """Airflow's configuration as environment variables, connections included."""
    home = settings.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    values = _secrets(settings)
    passwords = home / "passwords.json"
    write_private(passwords, json.dumps({AIRFLOW_USER: values["airflow_password"]}))
    relearn_url = libpq_url(stack_database_url(settings, "relearn"))
    tracking = settings.tracking_uri
    env = {
        **os.environ,
        **relearn_env(settings, project),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS["local"],
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": values["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.airflow_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(settings.database_url("airflow")),
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        "AIRFLOW__API_AUTH__JWT_SECRET": values["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # An idle scheduler sleeps this long between loops (default 1 s); each step of a
        # request's pickup (trigger event -> queued -> next task queued) waits for a loop.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.log_dir / "airflow"),
        # Task logs of workers and triggerer come from one log server on loopback (the
        # scheduler's and triggerer's own would listen on every interface), reached at the
        # hostname tasks record, which is therefore the loopback address too.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.log_server_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.log_server_port),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "relearn_dev.stack.log_server.loopback_hostname",
        "AIRFLOW_CONN_RELEARN_DB": relearn_url.replace("postgresql://", "postgres://", 1),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": tracking}),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # `relearn` turns these off to keep its stdout for results; task logs keep the links.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)  # tasks read the mlflow_default connection instead
    if executor == "celery":
        env.update(celery_env(settings))
    return env


@dataclass
class Stack:
    """The running stack of this checkout; ``down()`` stops only what ``up()`` started."""

    settings: Settings
    project: Path
    supervisor: Supervisor = field(init=False)
    postgres: EmbeddedPostgres | None = None
    executor: str = field(default_factory=executor_from_env)
    # Airflow settings on top of ``airflow_env`` (tests: shorter heartbeat timeouts, ...).
    extra_env: dict[str, str] = field(default_factory=dict)
    airflow_env: dict[str, str] = field(init=False, default_factory=dict)
    # The Celery workers by queue (CeleryExecutor only).
    workers: dict[str, Service] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(pid_file=pid_file(self.settings))

    def start_database(self) -> None:
        """Postgres reachable, the three databases present, Relearn's schema migrated."""
        if self.settings.embedded_postgres:
            self.postgres = EmbeddedPostgres.from_settings(self.settings)
            self.postgres.start()
            server = self.postgres.url()
            missing = list(DATABASES)
        else:
            relearn_url = libpq_url(self.settings.database_url("relearn"))
            server = with_database(relearn_url, "postgres")
            wait_for_server(relearn_url)
            # Databases derived from RELEARN_DATABASE_URL are created; explicit URLs must exist.
            missing = [db for db in DATABASES if db not in self.settings.external_urls]
        if missing:
            wait_for_server(server)
        for database in missing:
            ensure_database(server, database)
        applied = migrate(self.settings.database_url("relearn"))
        log.info("Relearn schema %s", f"migrated: {applied}" if applied else "up to date")

    def start_mlflow(self) -> None:
        if self.settings.external_tracking_uri:
            log.info("using the MLflow tracking server at %s", self.settings.tracking_uri)
            return
        self._require_free_port(self.settings.mlflow_port, "RELEARN_MLFLOW_PORT")
        artifacts = self.settings.home / "mlartifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        service = Service(
            name="mlflow",
            command=[
                _tool("mlflow"),
                "server",
                "--artifacts-destination",
                str(artifacts),
                "--host",
                self.settings.host,
                "--port",
                str(self.settings.mlflow_port),
                "--workers",
                "1",
            ],
            env={
                **os.environ,
                "MLFLOW_HOME": str(self.settings.home),
                # In the environment, not on the command line that `ps` shows every user.
                "MLFLOW_BACKEND_STORE_URI": sqlalchemy_url(self.settings.database_url("mlflow")),
            },
            log_file=self.settings.log_dir / "mlflow.log",
            health_url=f"{self.settings.tracking_uri}/health",
        )
        self.supervisor.start(service)
        self.supervisor.wait_ready(service)

    def migrate_airflow(self) -> dict[str, str]:
        """``airflow db migrate`` once per Airflow version; returns Airflow's environment."""
        env = {**airflow_env(self.settings, self.project, self.executor), **self.extra_env}
        marker = self.settings.home / "airflow" / f".migrated-{version('apache-airflow-core')}"
        if not marker.exists():
            log.info("migrating Airflow's metadata database (first start only)")
            result = subprocess.run(
                [_tool("airflow"), "db", "migrate"], env=env, capture_output=True, text=True
            )
            if result.returncode != 0:
                raise StackError(f"airflow db migrate failed:\n{result.stderr[-2000:]}")
            marker.touch()
        return env

    def start_airflow(self, *, scheduler: bool = True) -> None:
        """Airflow's services; without ``scheduler`` no DAG runs until ``start_scheduler()``."""
        self._require_free_port(self.settings.airflow_port, "RELEARN_AIRFLOW_PORT")
        self._require_free_port(self.settings.log_server_port, "RELEARN_LOG_SERVER_PORT")
        env = self.migrate_airflow()
        self.airflow_env = env
        if self.executor == "celery":
            self._require_free_port(redis_port(), "RELEARN_REDIS_PORT")
            redis = redis_service(self.settings)
            self.supervisor.start(redis)
            self.supervisor.wait_ready(redis)
        api = Service(
            name="airflow api-server",
            command=[_tool("airflow"), "api-server", "--port", str(self.settings.airflow_port)],
            env=env,
            log_file=self.settings.log_dir / "airflow-api-server.log",
            health_url=f"{self.settings.airflow_url}/api/v2/monitor/health",
        )
        self.supervisor.start(api)
        for component in AIRFLOW_COMPONENTS:
            self._start_component(component)
        logs = Service(
            name="airflow log server",
            command=[sys.executable, "-m", "relearn_dev.stack.log_server"],
            env=env,
            log_file=self.settings.log_dir / "airflow-log-server.log",
        )
        self.supervisor.start(logs)
        self.supervisor.wait_ready(api)
        if self.executor == "celery":
            self._start_workers()
        if scheduler:
            self.start_scheduler()

    def _start_workers(self) -> None:
        """One Celery worker per queue, each with the task-log server of its address."""
        for worker in workers():
            if worker.address != "127.0.0.1":  # 127.0.0.1's log server is already running
                self.supervisor.start(
                    log_server_service(worker.address, self.airflow_env, self.settings.log_dir)
                )
            service = worker_service(worker, self.airflow_env, self.settings.log_dir)
            self.supervisor.start(service)
            self.workers[worker.queue] = service
        for service in self.workers.values():
            self.supervisor.wait_ready(service)

    def start_scheduler(self) -> None:
        """The scheduler creates DAG runs: start it once the models have their champions."""
        self._start_component("scheduler")

    def _start_component(self, component: str) -> None:
        # Their own log servers would listen on every interface: ours is on loopback.
        options = ["--skip-serve-logs"] if component in SERVING_LOGS else []
        self.supervisor.start(
            Service(
                name=f"airflow {component}",
                command=[_tool("airflow"), component, *options],
                env=self.airflow_env,
                log_file=self.settings.log_dir / f"airflow-{component}.log",
            )
        )

    def check_ports(self, *, airflow: bool) -> None:
        """Fail before starting anything when the stack already runs or a port it needs is
        taken."""
        owner = running_owner(owner_file(self.settings))
        if owner is not None:
            raise StackError(
                f"the stack of {self.settings.home} is already running (`relearn stack up`, pid "
                f"{owner.pid}): use it, or stop it first with `make stop`"
            )
        if not self.settings.external_tracking_uri:
            self._require_free_port(self.settings.mlflow_port, "RELEARN_MLFLOW_PORT")
        if airflow:
            self._require_free_port(self.settings.airflow_port, "RELEARN_AIRFLOW_PORT")
            self._require_free_port(self.settings.log_server_port, "RELEARN_LOG_SERVER_PORT")
            if self.executor == "celery":
                self._require_free_port(redis_port(), "RELEARN_REDIS_PORT")

    def _require_free_port(self, port: int, variable: str) -> None:
        if port_in_use(self.settings.host, port):
            raise StackError(
                f"port {port} is already in use: stop what listens there or set {variable}"
            )

    def down(self, *, keep_database: bool = False) -> None:
        try:
            self.supervisor.stop_all()
        finally:  # a service that would not stop must not leave Postgres running too
            if self.postgres is not None and not keep_database:
                self.postgres.stop()

    def discard(self) -> None:
        """Stop everything and delete the embedded cluster (throw-away stacks of tests, benches)."""
        self.down()
        if self.postgres is not None:
            self.postgres.destroy()
