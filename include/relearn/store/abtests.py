"""``ab_tests`` and ``ab_decisions`` rows, and per-arm counts aggregated from the prediction log.

A challenger from drift-triggered retraining asks for a test (``pending``); the A/B promotion
workflow (``relearn.abtest.deploy``) starts it and moves it through its stages. The counts are
raw: ``relearn.abtest.arms`` turns them into the figures (F1, variances) the policy reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

PENDING, RUNNING, PAUSED = "pending", "running", "paused"
PROMOTED, ROLLED_BACK, ABORTED = "promoted", "rolled_back", "aborted"
# A test in one of these states holds the model: no second challenger is tested meanwhile.
LIVE = (PENDING, RUNNING, PAUSED)
# A test in one of these states is serving traffic (or could again: paused).
ACTIVE = (RUNNING, PAUSED)

_COLUMNS = (
    "id, model_name, champion_version, challenger_version, status, traffic_percent, stages, "
    "policy, stage_index, created_at, started_at, stage_started_at, ended_at, approval, reason"
)
# The columns a test's lifecycle changes; the rest are fixed when it is requested.
_UPDATABLE = frozenset(
    {
        "status",
        "champion_version",
        "traffic_percent",
        "policy",
        "stage_index",
        "started_at",
        "stage_started_at",
        "ended_at",
        "approval",
        "reason",
    }
)


@dataclass(frozen=True)
class ABTest:
    id: uuid.UUID
    model_name: str
    champion_version: str | None
    challenger_version: str
    status: str
    traffic_percent: int
    stages: list[int]
    policy: str
    stage_index: int
    created_at: datetime
    started_at: datetime | None
    stage_started_at: datetime | None
    ended_at: datetime | None
    approval: str | None
    reason: str | None


def request_test(
    connection: Connection,
    *,
    model_name: str,
    champion_version: str | None,
    challenger_version: str,
    stages: list[int],
    retraining_run_id: uuid.UUID | str | None,
    reason: str,
) -> ABTest:
    """A ``pending`` test of the challenger (once per version); returns the stored row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ab_tests (model_name, champion_version, challenger_version, stages, "
            "retraining_run_id, reason) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (model_name, challenger_version) DO NOTHING",
            (
                model_name,
                champion_version,
                challenger_version,
                json.dumps(stages),
                None if retraining_run_id is None else str(retraining_run_id),
                reason,
            ),
        )
    test = find_test(connection, model_name, challenger_version)
    if test is None:  # cannot happen inside one transaction
        raise RuntimeError(f"A/B test of {model_name} v{challenger_version} vanished")
    return test


def _one(connection: Connection, where: str, params: tuple) -> ABTest | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_COLUMNS} FROM ab_tests WHERE {where}", params)
        row = cursor.fetchone()
    return None if row is None else ABTest(*row)


def get_test(connection: Connection, test_id: uuid.UUID | str) -> ABTest:
    test = _one(connection, "id = %s", (str(test_id),))
    if test is None:
        raise LookupError(f"no A/B test {test_id}")
    return test


def find_test(connection: Connection, model_name: str, challenger_version: str) -> ABTest | None:
    return _one(
        connection,
        "model_name = %s AND challenger_version = %s",
        (model_name, str(challenger_version)),
    )


def live_test(
    connection: Connection, model_name: str, statuses: tuple[str, ...] = LIVE
) -> ABTest | None:
    """The model's test in one of ``statuses`` (running/paused before pending, then oldest)."""
    return _one(
        connection,
        "model_name = %s AND status = ANY(%s) ORDER BY (status = 'pending'), created_at LIMIT 1",
        (model_name, list(statuses)),
    )


def list_tests(connection: Connection, model_name: str | None = None) -> list[ABTest]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM ab_tests WHERE %(model)s IS NULL OR model_name = %(model)s "
            "ORDER BY created_at",
            {"model": model_name},
        )
        return [ABTest(*row) for row in cursor.fetchall()]


def update_test(connection: Connection, test_id: uuid.UUID | str, **fields: Any) -> None:
    """Set lifecycle columns of a test; any other name is refused (it would be SQL text)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)} on an A/B test")
    assignments = ", ".join(f"{name} = %({name})s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE ab_tests SET {assignments}, updated_at = now() WHERE id = %(id)s",
            {**fields, "id": str(test_id)},
        )


def abort_pending(connection: Connection, model_name: str, *, reason: str) -> int:
    """End the model's pending tests (their challenger is no longer worth testing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ab_tests SET status = 'aborted', reason = %s, ended_at = now(), "
            "updated_at = now() WHERE model_name = %s AND status = 'pending'",
            (reason, model_name),
        )
        return cursor.rowcount


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRow:
    test_id: uuid.UUID
    decided_at: datetime
    action: str
    traffic_before: int
    traffic_after: int
    reason: str
    numbers: dict[str, Any]
    decided_by: str
    trigger_key: str


def find_decision_of_run(
    connection: Connection, model_name: str, trigger_key: str
) -> tuple[DecisionRow, str] | None:
    """The decision a run key made for any of the model's tests, with that test's version."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.test_id, d.decided_at, d.action, d.traffic_before, d.traffic_after, "
            "d.reason, d.numbers, d.decided_by, d.trigger_key, t.challenger_version "
            "FROM ab_decisions d JOIN ab_tests t ON t.id = d.test_id "
            "WHERE t.model_name = %s AND d.trigger_key = %s ORDER BY d.id DESC LIMIT 1",
            (model_name, trigger_key),
        )
        row = cursor.fetchone()
    return None if row is None else (DecisionRow(*row[:-1]), row[-1])


def record_decision(connection: Connection, decision: DecisionRow) -> bool:
    """Insert the decision; False when this run key already decided for the test."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ab_decisions (test_id, decided_at, action, traffic_before, "
            "traffic_after, reason, numbers, decided_by, trigger_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (test_id, trigger_key) DO NOTHING",
            (
                str(decision.test_id),
                decision.decided_at,
                decision.action,
                decision.traffic_before,
                decision.traffic_after,
                decision.reason,
                json.dumps(decision.numbers),
                decision.decided_by,
                decision.trigger_key,
            ),
        )
        return cursor.rowcount == 1


def decisions(connection: Connection, test_id: uuid.UUID | str) -> list[DecisionRow]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT test_id, decided_at, action, traffic_before, traffic_after, reason, numbers, "
            "decided_by, trigger_key FROM ab_decisions WHERE test_id = %s ORDER BY decided_at, id",
            (str(test_id),),
        )
        return [DecisionRow(*row) for row in cursor.fetchall()]


# --- per-arm counts -------------------------------------------------------------------------


# Only units with an id were randomised between the arms (the router sends the others to the
# champion), so only they are compared. A row's arm is the version that served it, whatever
# its ``served_by`` says: a client that logged the challenger's prediction without saying
# ``served_by`` (stored as the champion's) still counts for the challenger.
_ARMS = """
    model_name = %(model)s AND predicted_at >= %(since)s AND predicted_at < %(until)s
    AND unit_id IS NOT NULL AND model_version IN (%(champion)s, %(challenger)s)
"""
_ARM = "CASE WHEN model_version = %(challenger)s THEN 'challenger' ELSE 'champion' END"
# An outcome counts once it had arrived by "now": a replay sees what the original run saw.
_LABELLED = "actual_label IS NOT NULL AND outcome_at < %(until)s"


@dataclass(frozen=True)
class ArmWindow:
    """The predictions a test compares: one model's two versions in ``[since, until)``."""

    model_name: str
    champion_version: str
    challenger_version: str
    since: datetime
    until: datetime

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "since": self.since,
            "until": self.until,
            "champion": str(self.champion_version),
            "challenger": str(self.challenger_version),
        }


@dataclass(frozen=True)
class ArmTotals:
    """One arm's prediction count, labelled and correct counts, and service figures."""

    predictions: int
    labelled: int
    correct: int
    mean_confidence: float | None
    latency_p95_ms: float | None


def arm_totals(connection: Connection, window: ArmWindow) -> dict[str, ArmTotals]:
    """Totals per arm (``champion``, ``challenger``) that had predictions in the window."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_ARM}, count(*), count(*) FILTER (WHERE {_LABELLED}), "
            f"count(*) FILTER (WHERE {_LABELLED} AND actual_label = predicted_label), "
            "avg(confidence), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            f"FROM prediction_log WHERE {_ARMS} GROUP BY 1",
            window.params(),
        )
        return {
            arm: ArmTotals(
                predictions=n,
                labelled=labelled,
                correct=correct,
                mean_confidence=None if confidence is None else float(confidence),
                latency_p95_ms=None if p95 is None else float(p95),
            )
            for arm, n, labelled, correct, confidence, p95 in cursor.fetchall()
        }


def arm_confusion(
    connection: Connection, window: ArmWindow
) -> dict[str, dict[tuple[str, str], int]]:
    """Labelled counts per arm and (predicted, actual) label pair."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_ARM}, predicted_label, actual_label, count(*) "
            f"FROM prediction_log WHERE {_ARMS} AND {_LABELLED} "
            "GROUP BY 1, 2, 3",
            window.params(),
        )
        confusion: dict[str, dict[tuple[str, str], int]] = {}
        for arm, predicted, actual, count in cursor.fetchall():
            confusion.setdefault(arm, {})[(predicted, actual)] = count
    return confusion


@dataclass(frozen=True)
class UnitSums:
    """One arm's labelled rows in one period, summed over units (``n``: rows, ``c``: correct).

    The sums of squares and products per unit are what a cluster-robust variance needs.
    """

    period: int
    arm: str
    n: int
    c: int
    units: int
    sum_n2: float
    sum_c2: float
    sum_cn: float


def unit_sums(
    connection: Connection, window: ArmWindow, boundaries: list[datetime]
) -> list[UnitSums]:
    """Per period between ``boundaries`` (traffic changes) and arm, ordered by period."""
    params = {**window.params(), "bounds": sorted(boundaries)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bucket, served_by, sum(n), sum(c), count(*), sum(n * n), sum(c * c), "
            "sum(c * n) FROM (SELECT width_bucket(predicted_at, %(bounds)s::timestamptz[]) "
            f"AS bucket, {_ARM} AS served_by, unit_id, count(*)::float8 AS n, "
            "count(*) FILTER (WHERE actual_label = predicted_label)::float8 AS c "
            f"FROM prediction_log WHERE {_ARMS} AND {_LABELLED} GROUP BY 1, 2, 3) AS per_unit "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        )
        return [
            UnitSums(bucket, arm, int(n), int(c), units, sum_n2, sum_c2, sum_cn)
            for bucket, arm, n, c, units, sum_n2, sum_c2, sum_cn in cursor.fetchall()
        ]
