"""Shared plumbing every feature uses: where state lives, how things are named, the clock.

A leaf module: it imports nothing of Relearn's but ``settings``, so abtest, drift, retraining,
the CLIs and the Airflow hooks can all depend on it without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relearn.settings import Settings


@dataclass(frozen=True)
class Services:
    """Where Relearn's state lives: its database and the MLflow tracking server."""

    database_url: str
    tracking_uri: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """The running stack's services (``relearn.settings``)."""
        return cls(settings.database_url("relearn"), settings.tracking_uri)


def experiment_name(model_name: str) -> str:
    """The MLflow experiment holding every run (bootstrap, retraining, drift) of one model."""
    return f"relearn/{model_name}"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only clock Relearn reads)."""
    return datetime.now(UTC)


class NoChampionError(LookupError):
    """A model has no ``champion`` yet: a step that needs one is skipped, not failed.

    Raised by retraining, drift and A/B steps; the Airflow operators turn it into a skip with
    this message, the CLI into one line. Only the health check reports it as a problem.
    """

    def __init__(self, model_name: str) -> None:
        super().__init__(
            f"'{model_name}' has no champion yet: run `relearn bootstrap --model {model_name}`"
        )
        self.model_name = model_name
