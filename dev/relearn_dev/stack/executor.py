"""The CeleryExecutor topology of docker-compose.yaml, as local processes.

With ``RELEARN_EXECUTOR=celery`` the stack runs a real ``redis-server`` (Debian's package;
``make redis`` installs it) as the broker on 127.0.0.1 and one ``airflow celery worker`` per
queue (``relearn_airflow.queues``): the default queue and the training queue. Each worker
stands for a machine of its own: it records a loopback address of its own as its hostname
(127.0.0.1, 127.0.0.2, ...) and a task-log server listens there, so the api-server reads each
task's log from the worker that ran it, as it would across machines. LocalExecutor (``local``)
stays the default.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from relearn.settings import Settings, StackError, read_or_create_secret, sqlalchemy_url
from relearn_airflow.queues import default_queue, training_queue
from relearn_dev.stack.postgres import stack_database_url
from relearn_dev.stack.supervisor import Service

EXECUTOR_VARIABLE = "RELEARN_EXECUTOR"
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
REDIS_PORT_VARIABLE = "RELEARN_REDIS_PORT"
DEFAULT_REDIS_PORT = 6390  # not Redis's 6379: a system redis-server may already listen there
# Read by relearn_dev.stack.log_server for its hostname callable and its listening address.
WORKER_ADDRESS_VARIABLE = "RELEARN_WORKER_ADDRESS"


def executor_from_env(environ: dict[str, str] | None = None) -> str:
    """``local`` or ``celery`` from ``RELEARN_EXECUTOR`` (default ``local``)."""
    env = os.environ if environ is None else environ
    name = env.get(EXECUTOR_VARIABLE, "").strip().lower() or "local"
    if name not in EXECUTORS:
        choices = ", ".join(EXECUTORS)
        raise StackError(f"{EXECUTOR_VARIABLE}={name!r} is not an executor ({choices})")
    return name


def redis_port(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get(REDIS_PORT_VARIABLE, str(DEFAULT_REDIS_PORT))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{REDIS_PORT_VARIABLE}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def _redis_password(settings: Settings) -> str:
    return read_or_create_secret(settings.home / "redis" / "password")


def broker_url(settings: Settings) -> str:
    return f"redis://:{_redis_password(settings)}@{settings.host}:{redis_port()}/0"


def celery_env(settings: Settings) -> dict[str, str]:
    """Airflow's settings for the CeleryExecutor (broker on loopback, results in Postgres)."""
    results = sqlalchemy_url(stack_database_url(settings, "airflow"))
    return {
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS["celery"],
        "AIRFLOW__CELERY__BROKER_URL": broker_url(settings),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + results,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": default_queue(),
    }


def redis_service(settings: Settings) -> Service:
    """``redis-server`` on loopback with a password, persisting nothing (a queue, not a store)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError("redis-server is not installed: run `make redis` (Debian's package)")
    folder = settings.home / "redis"
    config = folder / "redis.conf"
    lines = [
        f"bind {settings.host}",
        f"port {redis_port()}",
        f"requirepass {_redis_password(settings)}",
        f"dir {folder}",
        'save ""',
        "appendonly no",
        "daemonize no",
    ]
    # The password is in the file (0600), never on a command line `ps` shows.
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return Service(
        name="redis",
        command=[binary, str(config)],
        env=dict(os.environ),
        log_file=settings.log_dir / "redis.log",
        ready_line="Ready to accept connections",
        ready_timeout=30.0,
    )


@dataclass(frozen=True)
class Worker:
    """One Celery worker: the queue it serves, its slots and the address it stands for."""

    queue: str
    concurrency: int
    address: str

    @property
    def name(self) -> str:
        return f"airflow celery worker ({self.queue})"


def workers(environ: dict[str, str] | None = None) -> list[Worker]:
    """One worker per queue; the training one has few slots (each fine-tune holds a core)."""
    env = os.environ if environ is None else environ
    return [
        Worker(default_queue(), int(env.get("RELEARN_DEFAULT_CONCURRENCY", "4")), "127.0.0.1"),
        Worker(training_queue(), int(env.get("RELEARN_TRAINING_CONCURRENCY", "2")), "127.0.0.2"),
    ]


def worker_service(worker: Worker, airflow_env: dict[str, str], log_dir: Path) -> Service:
    return Service(
        name=worker.name,
        command=[
            str(Path(sys.executable).parent / "airflow"),
            "celery",
            "worker",
            "--queues",
            worker.queue,
            "--concurrency",
            str(worker.concurrency),
            "--celery-hostname",
            f"{worker.queue}@{worker.address}",
            # Our log server below listens on the worker's address only (Airflow's on all).
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        ],
        env={**airflow_env, WORKER_ADDRESS_VARIABLE: worker.address},
        log_file=log_dir / f"airflow-worker-{worker.queue}.log",
        ready_line=" ready.",
    )


def log_server_service(address: str, airflow_env: dict[str, str], log_dir: Path) -> Service:
    """The task-log server of the worker standing for ``address``."""
    return Service(
        name=f"airflow log server ({address})",
        command=[sys.executable, "-m", "relearn_dev.stack.log_server"],
        env={**airflow_env, WORKER_ADDRESS_VARIABLE: address},
        log_file=log_dir / f"airflow-log-server-{address}.log",
    )
