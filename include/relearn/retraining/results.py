"""What a retraining step reports: a ``StepStatus`` and the few references the step made.

Results carry references (ids, digests, versions), never data, so they are small and
JSON-serialisable as they are handed over (Airflow XComs, the bench's report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    """How a step left the run; ``terminal`` ones leave nothing for later steps to do."""

    RUNNING = "running"  # start: the run is recorded
    READY = "ready"  # prepare: the dataset is snapshot
    TRAINED = "trained"  # train: the candidate is logged
    EVALUATED = "evaluated"  # evaluate: the candidate is gated, publish is next
    PUBLISHED = "published"  # publish: registered, and aliased if blessed
    INSUFFICIENT = "insufficient"  # prepare: too few errors; the run is completed
    DRY_RUN = "dry_run"  # evaluate: gated in a dry run; the run is completed
    FINISHED = "finished"  # the run had finished before this step: nothing to do

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


# The one list of statuses after which the steps that follow are skipped.
TERMINAL = frozenset({StepStatus.INSUFFICIENT, StepStatus.DRY_RUN, StepStatus.FINISHED})


@dataclass(frozen=True)
class StepResult:
    """One step's outcome for one retraining run.

    :param status: how the step left the run.
    :param retraining_run_id: the ``model_retraining_runs`` id the step worked on.
    :param model: the model's name.
    :param detail: one line for logs (and the reason a skipped task shows).
    """

    status: StepStatus
    retraining_run_id: str
    model: str
    detail: str = ""
    errors: int | None = None
    dataset_digest: str | None = None
    candidate_model_id: str | None = None
    blessed: bool | None = None
    version: str | None = None
    run_status: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def to_xcom(self) -> dict[str, Any]:
        """The set fields as plain JSON values (the status as its string)."""
        values = {key: value for key, value in asdict(self).items() if value is not None}
        return {**values, "status": self.status.value}


def finished(
    retraining_run_id: str,
    model: str,
    run_status: str,
    *,
    version: str | None = None,
    blessed: bool | None = None,
) -> StepResult:
    """The result of any step that finds its run already finished."""
    return StepResult(
        StepStatus.FINISHED,
        retraining_run_id,
        model,
        detail=f"run {retraining_run_id} is already {run_status}: nothing more to do",
        blessed=blessed,
        version=version,
        run_status=run_status,
    )
