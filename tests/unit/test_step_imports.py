"""Each retraining step runs in its own Airflow task process: importing one step must not
load the heavy libraries only another step needs (torch is ~210 MB, Great Expectations ~150 MB
on top of MLflow), since an import at the top of any module it reaches counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "great_expectations", "matplotlib")
# What a fresh process has loaded after importing only the step (and the operator's helpers).
# (record, publish and runlog import less than evaluate: not checked, each check is a process.)
ALLOWED = {
    "relearn.retraining.prepare": {"great_expectations"},
    # torch is imported with a torch model (see below); matplotlib when the plots are drawn,
    # after fitting (the step's peak).
    "relearn.retraining.train": set(),
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


# A fresh process fits, saves and loads back a classifier of the kind given on its command line
# and prints whether torch, and torch's compiler stack (dynamo and sympy, ~70 MB: the first
# ``torch.optim`` optimizer imports it), were loaded.
FIT_AND_LOAD = """
import json, sys, tempfile
from pathlib import Path
from relearn.config import load_config
from relearn.training.factory import load_classifier, new_classifier
from relearn.simulate.world import World
import numpy as np
import pandas as pd

model_cfg = load_config(sys.argv[1]).model(sys.argv[2])
rng = np.random.default_rng(0)
at = pd.DatetimeIndex(pd.date_range("2026-01-01", periods=200, freq="min", tz="UTC"))
features, labels = World(model_cfg).sample(200, at, rng)
classifier = new_classifier(model_cfg)
classifier.fit(features, list(labels), epochs=1)
with tempfile.TemporaryDirectory() as tmp:
    classifier.save(Path(tmp))
    load_classifier(tmp).predict_proba(features)
print(json.dumps(["torch" in sys.modules, "torch._dynamo" in sys.modules]))
"""


@pytest.mark.parametrize(("model", "loads_torch"), [("churn", True), ("credit_risk", False)])
def test_torch_is_loaded_only_for_a_torch_model(model: str, loads_torch: bool) -> None:
    """The kinds are imported when a classifier of that kind is built or loaded: the steps of
    a scikit-learn model never pay for torch, and training the MLP never for torch's compiler."""
    config = Path(__file__).resolve().parents[2] / "relearn.yaml"
    output = subprocess.run(
        [sys.executable, "-c", FIT_AND_LOAD, str(config), model],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(output.splitlines()[-1]) == [loads_torch, False]
