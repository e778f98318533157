"""Where the page links to: the MLflow UI (a model version, a run) and Airflow's UI pages.

Airflow links are paths on the api-server that serves the page (the page is same-origin), so
they stay right behind any host name or proxy prefix the browser used.
"""

from __future__ import annotations

from urllib.parse import quote

REQUIRED_ACTIONS_PATH = "required_actions"


def _part(value: str) -> str:
    return quote(str(value), safe="")


def mlflow_version_url(mlflow_ui: str, model: str, version: str) -> str:
    return f"{mlflow_ui.rstrip('/')}/#/models/{_part(model)}/versions/{_part(version)}"


def mlflow_run_url(mlflow_ui: str, experiment_id: str | None, run_id: str) -> str | None:
    if experiment_id is None:
        return None
    return f"{mlflow_ui.rstrip('/')}/#/experiments/{_part(experiment_id)}/runs/{_part(run_id)}"


def airflow_run_path(dag_id: str, dag_run_id: str) -> str:
    """The DAG run's page in Airflow's UI (its tasks and their logs)."""
    return f"dags/{_part(dag_id)}/runs/{_part(dag_run_id)}"
