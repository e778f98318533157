"""The arm of a logged prediction: the one that served its model version.

An A/B test compares its arms by the rows each served, so a row counted in the wrong arm (or
in none) biases the verdict. A client that does not say ``served_by`` gets the arm the live
test serves its ``model_version`` from; one that says the other arm contradicts the test
and its row is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relearn.serving.router import CHALLENGER_ARM, CHAMPION_ARM

# The arm a row was served by (``GET /assignment`` tells a client).
ARMS = (CHAMPION_ARM, CHALLENGER_ARM)


@dataclass(frozen=True)
class ArmVersions:
    """The versions behind the arms of the model's A/B test in progress: a row's arm is the
    one serving its ``model_version`` (``served_by`` defaults to it, and may not contradict it)."""

    champion: str | None
    challenger: str


def served_by(
    given: list[Any], versions: list[Any], arms: ArmVersions | None
) -> tuple[list[Any], list[int]]:
    """The arm of each row (the given one, else the one serving its version, else the
    champion) and the rows whose given arm the live test contradicts (the challenger's
    version said to be served by the champion, or the other way round)."""
    if arms is None:
        return [CHAMPION_ARM if v is None else v for v in given], []
    by_version = {arms.challenger: CHALLENGER_ARM}
    if arms.champion is not None:
        by_version[arms.champion] = CHAMPION_ARM
    served = [str(v) if v is not None else None for v in versions]
    inferred = [by_version.get(version, CHAMPION_ARM) for version in served]
    contradicted = [
        i
        for i, (arm, version) in enumerate(zip(given, served, strict=True))
        if arm in ARMS and by_version.get(version, arm) != arm
    ]
    return [inferred[i] if arm is None else arm for i, arm in enumerate(given)], contradicted
