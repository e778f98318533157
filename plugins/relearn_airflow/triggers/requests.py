"""``RetrainingRequestTrigger``: wakes when a retraining request is pending.

It only watches: Postgres ``LISTEN`` on the queue's NOTIFY channel, with a fallback poll every
``poll_interval`` seconds; the claim happens in the sensor afterwards, so a trigger that runs
twice (the triggerer may do that) changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from relearn_airflow.hooks.relearn import RelearnHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class RetrainingRequestTrigger(BaseTrigger):
    """Fires one event as soon as a request for one of ``model_names`` is pending.

    :param model_names: the models to watch; None watches every model.
    :param relearn_conn_id: connection to Relearn's database.
    :param poll_interval: seconds between checks when no notification arrives.
    :param known_models: every configured model; a pending request for any other model
        fires too, so the sensor fails it at once instead of leaving it pending.
    """

    def __init__(
        self,
        model_names: list[str] | None = None,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        poll_interval: float = 30.0,
        known_models: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.model_names = list(model_names) if model_names else None
        self.relearn_conn_id = relearn_conn_id
        self.poll_interval = float(poll_interval)
        self.known_models = list(known_models) if known_models else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_names": self.model_names,
                "relearn_conn_id": self.relearn_conn_id,
                "poll_interval": self.poll_interval,
                "known_models": self.known_models,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from relearn.store.requests import wait_for_pending

        url = await RelearnHook(self.relearn_conn_id).async_database_url()
        self.log.info("waiting for retraining requests (models: %s)", self.model_names or "all")
        # psycopg2 blocks; the wait runs in a thread, bounded by the poll interval.
        while not await asyncio.to_thread(
            wait_for_pending, url, self.model_names, self.poll_interval, self.known_models
        ):
            self.log.debug("no pending request after %.0fs", self.poll_interval)
        yield TriggerEvent({"status": "pending", "model_names": self.model_names})
