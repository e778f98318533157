"""Provider metadata so Airflow lists Relearn's hooks and connection types."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "relearn",
        "name": "Relearn",
        "description": "Keeps production classifiers learning from their own predictions.",
        "versions": ["0.1.0"],
        "hook-class-names": [],
        "connection-types": [
            {
                "hook-class-name": "relearn_airflow.hooks.relearn.RelearnHook",
                "connection-type": "relearn",
            }
        ],
    }
