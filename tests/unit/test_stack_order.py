"""``make run`` starts the scheduler (the only creator of DAG runs) after the bootstrap."""

from __future__ import annotations

from relearn.settings import load_settings
from relearn_dev import demo


class RecordingStack:
    """Records the stack's start-up calls in order (the real ones are tested elsewhere)."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start_database(self) -> None:
        self.events.append("database migrated")

    def start_mlflow(self) -> None:
        self.events.append("mlflow")

    def start_airflow(self, *, scheduler: bool = True) -> None:
        self.events.append("airflow with scheduler" if scheduler else "airflow without scheduler")

    def start_scheduler(self) -> None:
        self.events.append("scheduler")


def test_no_dag_can_run_before_the_champions_exist(tmp_path, monkeypatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(demo, "_bootstrap_all", lambda _settings: events.append("bootstrap"))
    monkeypatch.setattr(demo, "_seed_traffic", lambda *_args: events.append("seed traffic"))
    settings = load_settings({"RELEARN_HOME": str(tmp_path)})

    demo.bring_up(RecordingStack(events), settings, airflow=True)

    assert events == [
        "database migrated",
        "mlflow",
        "airflow without scheduler",
        "bootstrap",
        "seed traffic",
        "scheduler",
    ]


def test_without_airflow_nothing_schedules(tmp_path, monkeypatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(demo, "_bootstrap_all", lambda _settings: events.append("bootstrap"))
    monkeypatch.setattr(demo, "_seed_traffic", lambda *_args: events.append("seed traffic"))

    demo.bring_up(
        RecordingStack(events), load_settings({"RELEARN_HOME": str(tmp_path)}), airflow=False
    )

    assert events == ["database migrated", "mlflow", "bootstrap", "seed traffic"]
