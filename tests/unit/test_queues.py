"""Queue names and the executor choice of the local stack, from the environment."""

from __future__ import annotations

import pytest

from relearn.settings import StackError, load_settings
from relearn_airflow.queues import default_queue, training_queue
from relearn_dev.stack.executor import celery_env, executor_from_env


def test_queues_default_and_follow_the_environment(monkeypatch):
    monkeypatch.delenv("RELEARN_QUEUE_DEFAULT", raising=False)
    monkeypatch.delenv("RELEARN_QUEUE_TRAINING", raising=False)
    assert (default_queue(), training_queue()) == ("default", "training")
    monkeypatch.setenv("RELEARN_QUEUE_TRAINING", "gpu")
    assert training_queue() == "gpu"


@pytest.mark.parametrize("name", ["training,default", "two words"])
def test_a_queue_name_is_one_name(monkeypatch, name):
    monkeypatch.setenv("RELEARN_QUEUE_TRAINING", name)
    with pytest.raises(ValueError, match="RELEARN_QUEUE_TRAINING"):
        training_queue()


def test_the_executor_is_local_unless_celery_is_asked_for():
    assert executor_from_env({}) == "local"
    assert executor_from_env({"RELEARN_EXECUTOR": " Celery "}) == "celery"
    with pytest.raises(StackError, match="RELEARN_EXECUTOR='kubernetes'"):
        executor_from_env({"RELEARN_EXECUTOR": "kubernetes"})


def test_celery_settings_keep_the_broker_on_loopback_behind_a_password(tmp_path, monkeypatch):
    monkeypatch.setenv("RELEARN_HOME", str(tmp_path))
    monkeypatch.setenv("RELEARN_REDIS_PORT", "6391")
    env = celery_env(load_settings())
    password = (tmp_path / "redis" / "password").read_text().strip()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{password}@127.0.0.1:6391/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert (tmp_path / "redis" / "password").stat().st_mode & 0o077 == 0
