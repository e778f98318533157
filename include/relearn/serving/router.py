"""Which arm serves a unit. Today only the champion; the A/B router plugs in here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

CHAMPION_ARM = "champion"


class Router(Protocol):
    """Chooses an arm name per unit id; the Predictor loads one model per arm it sees."""

    def arms(self, unit_ids: Sequence[str | None]) -> list[str]: ...


class ChampionRouter:
    """Everything goes to the champion."""

    def arms(self, unit_ids: Sequence[str | None]) -> list[str]:
        return [CHAMPION_ARM] * len(unit_ids)
