"""Relearn's core: keeps production classifiers learning from their logged predictions."""

import os

# MLflow's usage telemetry fetches its configuration in a background thread of every process.
# Where that call cannot leave the machine (offline, firewalled), the thread then deletes an
# environment variable while the process's own MLflow requests iterate the environment, and a
# request fails with "failed with exception '_MLFLOW_TELEMETRY_SESSION_ID'" (seen as failed
# Airflow tasks). Relearn sends nothing anywhere: off unless the user sets it.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
