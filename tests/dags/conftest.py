"""DAG runs cover every configured model: the other specialists get their champion too.

The DAGs map their work over the models of ``relearn.yaml`` (churn first, then credit_risk).
The tests feed traffic to churn and assert on its tasks (map index 0); credit_risk, with a
champion but no traffic in the tests' periods, runs alongside and must never break a run.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def specialist_champions(request, config) -> None:
    """Bootstrap every configured model but churn (the session's ``champion`` fixture)."""
    if not any(item.get_closest_marker("integration") for item in request.session.items):
        return  # DAG-integrity tests only: no stack needed
    from relearn.bootstrap import bootstrap_model
    from relearn.services import Services

    settings = request.getfixturevalue("settings")
    services = Services(settings.database_url("relearn"), settings.tracking_uri)
    for model_cfg in config.models:
        if model_cfg.name != "churn":
            bootstrap_model(services, model_cfg)
