"""The model_health DAG runs for real (``dag.test()`` on the Postgres metadata DB)."""

from __future__ import annotations

import pytest

from relearn.store.db import transaction
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_health_dag_records_a_check_per_model(champion, database_url, tracking_uri, model_cfg):
    from datetime import UTC, datetime

    import numpy as np
    from airflow.dag_processing.dagbag import DagBag

    from relearn.services import Services
    from relearn.serving.predictor import Predictor
    from relearn.simulate.world import World

    frame, _ = World(model_cfg).sample(20, datetime.now(UTC), np.random.default_rng(9))
    with Predictor(Services(database_url, tracking_uri), model_cfg) as predictor:
        predictor.predict(frame)

    dag = DagBag(dag_folder=str(ROOT / "dags" / "model_health.py")).dags["model_health"]
    run = dag.test()
    assert run.state == "success"
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name, status, champion_version, details FROM health_checks"
            " WHERE trigger_key = %s",
            (run.run_id,),
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    assert sorted(rows) == ["churn", "credit_risk"]
    # credit_risk has its champion but served nothing in the window: degraded, not failed.
    assert rows["credit_risk"][0] == "degraded", rows["credit_risk"]
    status, version, details = rows["churn"]
    assert (status, version) == ("healthy", champion.version), details
    assert details["window"]["predictions"] >= 20
    assert details["reference_accuracy"] == pytest.approx(champion.metrics["accuracy"], abs=1e-6)
