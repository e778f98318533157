"""Retraining on volume: is a model due for a run because enough new outcomes came in?

The product rule: at least ``reinforcement.min_new_labelled`` predictions got their outcome
since the model's last retraining run (of any source), and at least
``reinforcement.min_interval_hours`` passed since that run. Off unless ``min_new_labelled``
is set. A due model is retrained by the same steps as the daily run, with source
``auto_volume``; this module only decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from relearn.store import runs, volume
from relearn.store.db import transaction

if TYPE_CHECKING:
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

AUTO_VOLUME = "auto_volume"


class VolumeVerdict(StrEnum):
    DUE = "due"
    OFF = "off"  # min_new_labelled is not set for this model
    RUNNING = "running"  # a retraining of the model is still running
    TOO_SOON = "too_soon"  # the last run started less than min_interval_hours ago
    TOO_FEW = "too_few"  # fewer than min_new_labelled new outcomes since the last run


@dataclass(frozen=True)
class VolumeDecision:
    """The verdict and what it was based on (counts are None when not needed for it)."""

    model_name: str
    verdict: VolumeVerdict
    reason: str
    new_labelled: int | None = None
    last_run_at: datetime | None = None

    @property
    def due(self) -> bool:
        return self.verdict is VolumeVerdict.DUE


def volume_decision(services: Services, model_cfg: ModelConfig, *, now: datetime) -> VolumeDecision:
    """Whether ``model_cfg`` should be retrained on volume at ``now``.

    "The last run" is the latest ``window_end`` (the time a run was started for) not after
    ``now``, so a replayed hour judges by its own past. New outcomes are counted over the
    predictions the retraining would read (its ``lookback_days``).
    """
    rf = model_cfg.reinforcement
    name = model_cfg.name
    if rf.min_new_labelled is None:
        return VolumeDecision(name, VolumeVerdict.OFF, "reinforcement.min_new_labelled is not set")
    with transaction(services.database_url) as connection:
        running = runs.running_run(connection, name)
        last = runs.last_window_end(connection, name, runs.SOURCES, until=now)
        if running is not None:
            run_id, source = running
            return VolumeDecision(
                name,
                VolumeVerdict.RUNNING,
                f"retraining run {run_id} ({source}) is still running",
                last_run_at=last,
            )
        interval = timedelta(hours=rf.min_interval_hours)
        if last is not None and now - last < interval:
            return VolumeDecision(
                name,
                VolumeVerdict.TOO_SOON,
                f"the last run was for {last.isoformat()}, less than "
                f"{rf.min_interval_hours:g} h before {now.isoformat()}",
                last_run_at=last,
            )
        count = volume.count_new_labelled(
            connection,
            name,
            labelled_after=last,
            until=now,
            predicted_after=now - timedelta(days=rf.lookback_days),
        )
    since = f"since the last run ({last.isoformat()})" if last else "and no run yet"
    reason = f"{count} new outcome(s) {since}; {rf.min_new_labelled} wanted"
    verdict = VolumeVerdict.TOO_FEW if count < rf.min_new_labelled else VolumeVerdict.DUE
    log.info("%s: retraining on volume %s: %s", name, verdict, reason)
    return VolumeDecision(name, verdict, reason, new_labelled=count, last_run_at=last)
