"""Relearn turns MLflow's telemetry off in every process that uses it.

Offline, the telemetry thread's failed config fetch deletes an environment variable while the
process's MLflow requests read the environment; tasks failed with
"failed with exception '_MLFLOW_TELEMETRY_SESSION_ID'" under the real scheduler.
"""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import relearn.services, mlflow\n"
    "from mlflow.telemetry.utils import is_telemetry_disabled\n"
    "raise SystemExit(0 if is_telemetry_disabled() else 1)\n"
)

# Variables MLflow reads as "in CI or a test": pytest sets one, which hid the failure here.
CI_MARKERS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL")


def _user_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CI_MARKERS and k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    }
    return {**env, **extra}


def test_importing_relearn_turns_mlflow_telemetry_off() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], env=_user_env(), check=False)
    assert result.returncode == 0


def test_a_user_can_still_turn_it_on() -> None:
    env = _user_env(MLFLOW_DISABLE_TELEMETRY="false")
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, check=False)
    assert result.returncode == 1
