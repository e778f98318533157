"""The second shipped specialist (credit_risk, ``sklearn_hgb``, three classes) through a DAG.

Its drifted traffic (risk rules changed, incomes and debts moved) goes through the same
retraining steps as churn's: refit, gated against its champion, registered, served by pyfunc.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from relearn.registry import CHALLENGER, aliases, model_uri, registry_client
from relearn.retraining.artifacts import load_registered_classifier
from relearn.simulate.world import World
from relearn.store.db import transaction
from relearn.store.runs import find_run
from relearn.training.sklearn_hgb import SklearnHGBClassifier
from tests.conftest import ROOT
from tests.integration.traffic import log_traffic

pytestmark = pytest.mark.integration

RETRAINING = ("record_run", "prepare_data", "train", "validate_model", "register")
# This module's period: two days of drifted credit_risk traffic.
SHIFT = datetime(2026, 9, 7, tzinfo=UTC)
END = SHIFT + timedelta(days=2)


@pytest.fixture(scope="module")
def credit_cfg(config):
    return config.model("credit_risk")


@pytest.fixture(scope="module")
def dag(stack):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "auto_reinforcement.py")).dags[
        "auto_reinforcement"
    ]


def test_drifted_credit_risk_gives_a_gated_hgb_candidate_served_by_pyfunc(
    dag, credit_cfg, database_url, tracking_uri
):
    log_traffic(
        credit_cfg,
        database_url,
        tracking_uri,
        start=SHIFT,
        end=END,
        concept_shift=1.0,
        covariate_shift=1.0,
        seed=51,
    )
    run = dag.test(logical_date=END, run_conf={"model": "credit_risk", "lookback_days": 2})
    states = {ti.task_id.split(".")[-1]: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert {states[t] for t in RETRAINING} == {"success"}, states
    with transaction(database_url) as connection:
        row = find_run(connection, run.run_id, credit_cfg.name)
    # Whether the gate blesses it depends on what earlier DAG tests left in the shared log;
    # that it decided on real numbers, and registered a servable HGB version, does not.
    assert row.status == "completed", row.metrics
    assert row.metrics["gate"]["checks"], row.metrics
    assert row.metrics["training"]["history"][0]["iterations"] >= 1
    if row.metrics["gate"]["blessed"]:
        challenger = aliases(registry_client(tracking_uri), credit_cfg.name)[CHALLENGER]
        assert challenger == row.model_version

    served = load_registered_classifier(tracking_uri, model_uri(credit_cfg.name, row.model_version))
    assert isinstance(served, SklearnHGBClassifier)
    frame, _ = World(credit_cfg).sample(50, END, np.random.default_rng(0))
    proba = served.predict_proba(frame)
    assert proba.shape == (50, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
