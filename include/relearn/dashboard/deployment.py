"""Deployment: which version each alias serves, its registered metrics, and the alias history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from relearn.abtest.aliases import PREVIOUS_CHAMPION
from relearn.dashboard.links import mlflow_run_url, mlflow_version_url
from relearn.registry import CHALLENGER, CHAMPION, aliases
from relearn.services import experiment_name
from relearn.store import dashboard

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from psycopg2.extensions import connection as Connection

ALIASES = (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION)
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class AliasedVersion:
    """One alias and the registered version it points at, with the version's run metrics."""

    alias: str
    version: str
    registered_at: datetime | None
    metrics: dict[str, float]
    version_url: str
    run_url: str | None


@dataclass(frozen=True)
class AliasChange:
    alias: str
    version: str | None
    previous_version: str | None
    changed_at: datetime
    changed_by: str
    reason: str


@dataclass(frozen=True)
class Deployment:
    aliases: list[AliasedVersion]
    history: list[AliasChange]


def experiment_id(client: MlflowClient, model: str) -> str | None:
    """The id of the model's MLflow experiment (for run links); None before its first run."""
    found = client.get_experiment_by_name(experiment_name(model))
    return found.experiment_id if found else None


def _aliased(
    client: MlflowClient, mlflow_ui: str, model: str, alias: str, version: str
) -> AliasedVersion:
    found = client.get_model_version(model, version)
    metrics: dict[str, Any] = {}
    run_url = None
    if found.run_id:
        run = client.get_run(found.run_id)
        metrics = dict(sorted(run.data.metrics.items()))
        run_url = mlflow_run_url(mlflow_ui, run.info.experiment_id, found.run_id)
    registered = (
        datetime.fromtimestamp(found.creation_timestamp / 1000, UTC)
        if found.creation_timestamp
        else None
    )
    return AliasedVersion(
        alias=alias,
        version=str(version),
        registered_at=registered,
        metrics=metrics,
        version_url=mlflow_version_url(mlflow_ui, model, version),
        run_url=run_url,
    )


def read_deployment(
    connection: Connection, client: MlflowClient, mlflow_ui: str, model: str
) -> Deployment:
    """The aliases Relearn moves (in that order) and the newest alias changes."""
    current = aliases(client, model)
    return Deployment(
        aliases=[
            _aliased(client, mlflow_ui, model, alias, current[alias])
            for alias in ALIASES
            if alias in current
        ],
        history=[
            AliasChange(**row) for row in dashboard.alias_history(connection, model, HISTORY_LIMIT)
        ],
    )
