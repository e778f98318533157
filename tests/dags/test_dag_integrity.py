"""Every DAG imports cleanly, is tagged, retries, is bounded in time, and documents itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAG found"


def test_one_dag_per_file_named_after_it(dagbag) -> None:
    files = sorted(p.stem for p in (ROOT / "dags").glob("*.py") if not p.stem.startswith("_"))
    assert sorted(dagbag.dag_ids) == files


def test_tags_retries_and_docs(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries} < 2"


def test_every_task_and_every_run_is_bounded_in_time(dagbag) -> None:
    """A hung training or MLflow call must not hold a worker slot, nor a run block the next."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.dagrun_timeout, f"{dag_id} has no dagrun_timeout"
        for task in dag.tasks:
            limit = task.execution_timeout
            assert limit and limit > timedelta(0), f"{dag_id}.{task.task_id} has no timeout"
            assert limit <= dag.dagrun_timeout, f"{dag_id}.{task.task_id} outlives its run"


def test_training_gets_more_time_than_a_check(dagbag) -> None:
    health = dagbag.dags["model_health"].get_task("check_health").execution_timeout
    reinforcement = dagbag.dags["auto_reinforcement"]
    assert reinforcement.get_task("retrain.train").execution_timeout > health
    assert reinforcement.dagrun_timeout > dagbag.dags["model_health"].dagrun_timeout


def test_one_setting_sets_every_dags_retry_delay(monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("RELEARN_RETRY_DELAY_SECONDS", "5")
    shortened = DagBag(dag_folder=str(ROOT / "dags"))
    assert shortened.import_errors == {}
    delays = {dag_id: dag.default_args["retry_delay"] for dag_id, dag in shortened.dags.items()}
    assert delays == dict.fromkeys(shortened.dag_ids, timedelta(seconds=5))


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf"])
def test_a_bad_retry_delay_is_refused(monkeypatch, raw) -> None:
    from relearn_airflow.limits import retry_delay

    assert retry_delay(timedelta(minutes=2)) == timedelta(minutes=2)
    monkeypatch.setenv("RELEARN_RETRY_DELAY_SECONDS", raw)
    with pytest.raises(ValueError, match="RELEARN_RETRY_DELAY_SECONDS must be a number of sec"):
        retry_delay(timedelta(minutes=2))


def test_limits_come_from_the_environment(monkeypatch) -> None:
    from relearn_airflow.limits import Limit, timeout

    monkeypatch.setenv("RELEARN_TIMEOUT_TRAINING_MINUTES", "360")
    assert timeout(Limit.TRAINING) == timedelta(hours=6)
    monkeypatch.setenv("RELEARN_TIMEOUT_TRAINING_MINUTES", "-1")
    with pytest.raises(ValueError, match="RELEARN_TIMEOUT_TRAINING_MINUTES must be a positive"):
        timeout(Limit.TRAINING)


def test_request_sensor_waits_as_long_as_configured_and_soft_fails(dagbag) -> None:
    from relearn_airflow.limits import Limit, timeout

    sensor = dagbag.dags["manual_retraining"].get_task("wait_for_request")
    assert sensor.timeout == timeout(Limit.REQUEST_WAIT).total_seconds() == 7 * 24 * 3600
    assert sensor.soft_fail
    assert dagbag.dags["manual_retraining"].dagrun_timeout > timeout(Limit.REQUEST_WAIT)


def _validate(dag, conf: dict) -> dict:
    """What the scheduler's side does with a run's conf before creating the run (the REST API
    answers HTTP 400 when this raises): validate it against the *serialized* DAG's Params."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return serialized.params.deep_merge(conf).validate()


@pytest.mark.parametrize(
    "dag_id",
    ["model_health", "auto_reinforcement", "drift_monitor", "ab_promotion", "request_retraining"],
)
def test_an_unknown_model_is_refused_at_trigger_time(dagbag, config, dag_id) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags[dag_id]
    assert dag.params.get_param("model").schema["enum"][-len(config.model_names) :] == (
        config.model_names
    )
    assert _validate(dag, {"model": "churn"})["model"] == "churn"
    for unknown in ("nope", "Churn"):
        with pytest.raises(ParamValidationError, match="model"):
            _validate(dag, {"model": unknown})


@pytest.mark.parametrize("dag_id", ["model_health", "auto_reinforcement", "ab_promotion"])
def test_an_empty_model_still_means_every_model(dagbag, dag_id) -> None:
    assert _validate(dagbag.dags[dag_id], {"model": None})["model"] is None


def test_plugin_loader_skips_the_installed_provider() -> None:
    """Airflow imports plugin files by bare stem: ``hooks/relearn.py`` would shadow ``relearn``."""
    from airflow._shared.module_loading import find_path_from_directory

    loaded = list(find_path_from_directory(str(ROOT / "plugins"), ".airflowignore"))
    assert not [path for path in loaded if path.endswith(".py")], loaded
