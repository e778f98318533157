"""Each retraining step runs in its own Airflow task process: importing one step must not
load the heavy libraries only another step needs (torch is ~210 MB, Great Expectations ~150 MB
on top of MLflow), since an import at the top of any module it reaches counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "great_expectations", "matplotlib")
# What a fresh process has loaded after importing only the step (and the operator's helpers).
# (record, publish and runlog import less than evaluate: not checked, each check is a process.)
ALLOWED = {
    "relearn.retraining.prepare": {"great_expectations"},
    # matplotlib is imported when the plots are drawn, after fitting (the step's peak).
    "relearn.retraining.train": {"torch"},
    # It loads torch when it loads a torch model, not for a model of another kind.
    "relearn.retraining.evaluate": set(),
}


def loaded_after_import(module: str) -> set[str]:
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(output.splitlines()[-1]))


@pytest.mark.parametrize("module", list(ALLOWED))
def test_a_step_imports_only_the_heavy_libraries_it_uses(module: str) -> None:
    assert loaded_after_import(module) == ALLOWED[module]
