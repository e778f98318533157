"""Helpers for running Relearn's operators and sensors directly, outside a DAG run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ROOT

if TYPE_CHECKING:
    from datetime import datetime

FRESH_MODEL = "fresh_model"


def task_context(
    *, dag_id: str = "plugin_test", run_id: str = "r1", at: datetime | None = None, **params: Any
) -> dict[str, Any]:
    """The parts of an Airflow context the operators read."""
    return {
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id),
        "run_id": run_id,
        "data_interval_end": at,
        "params": params,
    }


@pytest.fixture(scope="session")
def fresh_config(tmp_path_factory) -> tuple[str, str]:
    """(config path, model name) of a configured model that was never bootstrapped."""
    text = (ROOT / "relearn.yaml").read_text().replace("name: churn", f"name: {FRESH_MODEL}", 1)
    path = tmp_path_factory.mktemp("config") / "relearn.yaml"
    path.write_text(text)
    return str(path), FRESH_MODEL
