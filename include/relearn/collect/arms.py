"""The arm of a logged prediction: the one that served its model version.

An A/B test compares its arms by the rows each served, so a row counted in the wrong arm (or
in none) biases the verdict. During a test a row's arm is the one the test serves its
``model_version`` from, whatever ``served_by`` says (a client that leaves it out, or that
still says the old arm while a promotion completes).
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
    one serving its ``model_version``."""

    champion: str | None
    challenger: str


def served_by(given: list[Any], versions: list[Any], arms: ArmVersions | None) -> list[Any]:
    """The arm of each row: during a test, the arm serving its version; otherwise the given
    arm, else the champion. A given arm the test contradicts is corrected, not rejected: the
    registry's aliases move before the test is marked ended, and for that moment the
    assignment already names the new champion's version while the test still serves it as the
    challenger (every such row would be lost). A value that is no arm at all stays, for the row
    checks to reject."""
    if arms is None:
        return [CHAMPION_ARM if arm is None else arm for arm in given]
    by_version = {arms.challenger: CHALLENGER_ARM}
    if arms.champion is not None:
        by_version[arms.champion] = CHAMPION_ARM
    served = []
    for arm, version in zip(given, versions, strict=True):
        version_arm = by_version.get(None if version is None else str(version))
        if arm is not None and arm not in ARMS:
            served.append(arm)
        else:
            served.append(version_arm or arm or CHAMPION_ARM)
    return served
