"""One model's page: every section read at one moment, from Postgres and the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from relearn.dashboard.abtest import ABTestView, read_abtest
from relearn.dashboard.analysis import AnalysisView, read_analysis
from relearn.dashboard.deployment import Deployment, experiment_id, read_deployment
from relearn.dashboard.health import Health, read_health
from relearn.dashboard.runs import RequestView, RunView, read_requests, read_runs
from relearn.dashboard.trends import Trends, read_trends
from relearn.registry import registry_client
from relearn.store.alerts import AlertRow, recent_alerts
from relearn.store.db import transaction

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.services import Services

ALERTS_WINDOW = timedelta(days=30)
ALERTS_LIMIT = 20


@dataclass(frozen=True)
class ModelPage:
    model: str
    generated_at: datetime
    deployment: Deployment
    health: Health
    alerts: list[AlertRow]  # newest first, the last ALERTS_WINDOW
    analysis: AnalysisView | None  # the latest daily error analysis
    runs: list[RunView]
    trends: Trends
    abtest: ABTestView | None
    requests: list[RequestView]


def read_page(
    services: Services, model_cfg: ModelConfig, *, now: datetime, bucket: str, mlflow_ui: str
) -> ModelPage:
    """Every section of ``model_cfg``'s page; ``mlflow_ui`` is the MLflow UI's address for links.

    The database sections are read in one read-only snapshot, so they agree with each other.
    """
    name = model_cfg.name
    client = registry_client(services.tracking_uri)
    experiment = experiment_id(client, name)
    with transaction(services.database_url) as connection:
        connection.set_session(readonly=True, isolation_level="REPEATABLE READ")
        return ModelPage(
            model=name,
            generated_at=now,
            deployment=read_deployment(connection, client, mlflow_ui, name),
            health=read_health(connection, name, now=now),
            alerts=recent_alerts(
                connection, since=now - ALERTS_WINDOW, model_name=name, limit=ALERTS_LIMIT
            ),
            analysis=read_analysis(connection, name),
            runs=read_runs(connection, name, mlflow_ui, experiment),
            trends=read_trends(connection, name, now=now, bucket=bucket),
            abtest=read_abtest(connection, name, list(model_cfg.classes), now=now),
            requests=read_requests(connection, name),
        )
