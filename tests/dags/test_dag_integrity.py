"""Every DAG imports cleanly, is tagged, retries, and documents itself."""

from __future__ import annotations

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


def test_plugin_loader_skips_the_installed_provider() -> None:
    """Airflow imports plugin files by bare stem: ``hooks/relearn.py`` would shadow ``relearn``."""
    from airflow._shared.module_loading import find_path_from_directory

    loaded = list(find_path_from_directory(str(ROOT / "plugins"), ".airflowignore"))
    assert not [path for path in loaded if path.endswith(".py")], loaded
