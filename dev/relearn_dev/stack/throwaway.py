"""A throw-away stack for benchmarks: private home, free ports, removed on exit.

Every bench used to build this by hand; one context manager keeps them the same: the
caller's Relearn, Airflow and MLflow settings never leak in (a bench must not write to the
stack you develop against), Postgres (Relearn's schema migrated) and optionally MLflow are
started, and on exit everything is stopped and deleted, unless ``keep`` asks to leave it
running (the message says how to reuse and stop it). The process environment is restored.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2

from relearn.services import Services
from relearn.settings import libpq_url, load_settings
from relearn_dev.stack.services import Stack, throwaway_env

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.settings import Settings

_CALLER_PREFIXES = ("AIRFLOW", "RELEARN")
_CALLER_VARIABLES = ("MLFLOW_TRACKING_URI",)


@dataclass(frozen=True)
class Throwaway:
    """The running throw-away stack: ``services`` for the core, ``stack`` to start more
    (``start_mlflow``, ``migrate_airflow``, ``start_airflow``), ``home`` its directory."""

    stack: Stack
    home: Path
    services: Services

    @property
    def settings(self) -> Settings:
        return self.stack.settings


def _say(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _keep_message(home: Path, settings: Settings) -> str:
    return (
        f"kept the stack in {home}: reuse it with RELEARN_DATABASE_URL="
        f"{settings.database_url('relearn')} MLFLOW_TRACKING_URI={settings.tracking_uri}\n"
        f"stop it with RELEARN_HOME={home} RELEARN_PG_PORT={settings.pg_port} "
        f"RELEARN_MLFLOW_PORT={settings.mlflow_port} .venv/bin/relearn stack down && rm -rf {home}"
    )


@contextmanager
def throwaway_stack(
    project: Path, *, mlflow: bool = True, keep: bool = False
) -> Iterator[Throwaway]:
    """Postgres (and MLflow unless ``mlflow=False``) in a temporary home on free ports.

    :param project: the checkout whose ``relearn.yaml``, DAGs and plugins the stack uses.
    """
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_CALLER_PREFIXES) or name in _CALLER_VARIABLES:
            del os.environ[name]
    home = Path(tempfile.mkdtemp(prefix="relearn-bench-"))
    os.environ.update(throwaway_env(home, project))
    settings = load_settings()
    stack = Stack(settings, project)
    try:
        _say(f"starting Postgres{' and MLflow' if mlflow else ''} in {home}")
        stack.start_database()
        if mlflow:
            stack.start_mlflow()
        services = Services(settings.database_url("relearn"), settings.tracking_uri)
        yield Throwaway(stack, home, services)
    finally:
        if keep:
            print(_keep_message(home, settings), file=sys.stderr)
        else:
            _say("tearing the stack down")
            stack.discard()
            shutil.rmtree(home, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)


def sql_rows(database_url: str, statement: str, params: Any = None) -> list[tuple]:
    """Run one statement on its own autocommit connection (``VACUUM`` needs one); its rows."""
    connection = psycopg2.connect(libpq_url(database_url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()
