"""What a failed command tells its user: one line saying what to do, and an exit code.

1: bad configuration or input; 2: a service of the stack cannot be reached. Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2

from relearn.abtest import DeployError
from relearn.services import NoChampionError
from relearn.settings import StackError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.settings import Settings

START_THE_STACK = "start the stack with `make run` (or `relearn stack up --no-airflow`)"
# Long enough for a busy local server to answer its health check, short enough for a person.
PROBE_TIMEOUT_SECONDS = 3.0
# SQLSTATE classes of a connection that failed or was cut (no SQLSTATE at all: libpq's own).
_CONNECTION_SQLSTATES = ("08", "57P")


@dataclass(frozen=True)
class Failure:
    exit_code: int
    message: str


class ServiceUnreachable(Exception):
    """A service of the stack does not answer; the message names it and what to start."""


def _hint(variable: str, external: bool) -> str:
    return f"check {variable} and that the server runs" if external else START_THE_STACK


def check_mlflow(settings: Settings) -> None:
    """Raise ``ServiceUnreachable`` unless the tracking server answers at once.

    The MLflow client retries a refused connection for minutes; a command that needs the
    server asks this first, so a stopped stack is one line within seconds.
    """
    uri = settings.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError:
        return  # something answered (an auth proxy may refuse /health): not our diagnosis
    except OSError as error:  # URLError, refused, timeout, unknown host
        reason = getattr(error, "reason", None) or error
        hint = _hint("MLFLOW_TRACKING_URI", settings.external_tracking_uri is not None)
        raise ServiceUnreachable(
            f"cannot reach the MLflow server at {uri} ({reason}): {hint}"
        ) from None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _lost_postgres(error: BaseException) -> psycopg2.OperationalError | None:
    """The connection failure behind ``error`` (through SQLAlchemy's wrapping too), if any.

    Not every OperationalError is one: a deadlock or a cancelled query is a database answer.
    """
    for cause in _chain(error):
        if isinstance(cause, psycopg2.OperationalError) and (
            cause.pgcode is None or cause.pgcode.startswith(_CONNECTION_SQLSTATES)
        ):
            return cause
    return None


def one_line(text: str) -> str:
    """Multi-line messages (parsers, validators) joined into the one line a CLI prints."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def explain(error: Exception, settings: Settings | None) -> Failure | None:
    """The exit code and line for a known kind of failure; ``None`` for a bug."""
    if isinstance(error, ServiceUnreachable | StackError):
        return Failure(2, one_line(str(error)))
    lost = _lost_postgres(error)
    if lost is not None:
        external = settings is not None and not settings.embedded_postgres
        hint = _hint("RELEARN_DATABASE_URL", external)
        reason = one_line(str(lost)).split(";")[0]
        return Failure(2, f"cannot reach Postgres ({reason}): {hint}")
    if isinstance(error, ValueError | FileNotFoundError | NoChampionError | DeployError):
        return Failure(1, one_line(str(error)))
    return None
