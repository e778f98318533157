"""The two arms of a test as the policy sees them: figures computed from the store's counts.

``relearn.store.abtests`` aggregates the prediction log (counts only); this module turns the
counts into accuracy, macro F1 (``relearn.evaluation``) and the per-period strata with their
cluster-robust variances (``relearn.abtest.stats``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relearn.abtest.stats import Stratum, cluster_variance
from relearn.evaluation import macro_f1_of_counts
from relearn.store import abtests

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

ARMS = ("champion", "challenger")


@dataclass(frozen=True)
class ArmStats:
    """One arm's predictions in a period: volume, outcomes and service figures."""

    arm: str
    version: str | None
    predictions: int
    labelled: int
    correct: int
    mean_confidence: float | None
    latency_p95_ms: float | None
    f1_macro: float | None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def error_rate(self) -> float | None:
        """Share of labelled predictions that were wrong."""
        return None if self.accuracy is None else 1 - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "accuracy": self.accuracy,
            "error_rate": self.error_rate,
        }


_NO_ROWS = abtests.ArmTotals(0, 0, 0, None, None)


def arm_stats(
    connection: Connection, window: abtests.ArmWindow, classes: list[str]
) -> dict[str, ArmStats]:
    """Figures per arm (``champion``, ``challenger``) for the window's versions."""
    totals = abtests.arm_totals(connection, window)
    confusion = abtests.arm_confusion(connection, window)
    versions = {"champion": window.champion_version, "challenger": window.challenger_version}
    result = {}
    for arm in ARMS:
        counts = totals.get(arm, _NO_ROWS)
        result[arm] = ArmStats(
            arm=arm,
            version=str(versions[arm]),
            predictions=counts.predictions,
            labelled=counts.labelled,
            correct=counts.correct,
            mean_confidence=counts.mean_confidence,
            latency_p95_ms=counts.latency_p95_ms,
            f1_macro=macro_f1_of_counts(confusion.get(arm, {}), classes),
        )
    return result


def strata(
    connection: Connection, window: abtests.ArmWindow, boundaries: list[datetime]
) -> list[Stratum]:
    """Labelled counts per arm in each period between ``boundaries`` (traffic changes), with
    the cluster-robust variance over units (each unit stays in one arm during a test)."""
    periods: dict[int, dict[str, tuple[int, int, float | None]]] = {}
    for row in abtests.unit_sums(connection, window, boundaries):
        variance = cluster_variance(
            row.n, row.c, units=row.units, sum_n2=row.sum_n2, sum_c2=row.sum_c2, sum_cn=row.sum_cn
        )
        periods.setdefault(row.period, {})[row.arm] = (row.n, row.c, variance)
    result = []
    for _, period in sorted(periods.items()):
        a_n, a_c, a_var = period.get("champion", (0, 0, None))
        b_n, b_c, b_var = period.get("challenger", (0, 0, None))
        result.append(Stratum(a_n, a_c, b_n, b_c, a_var, b_var))
    return result
