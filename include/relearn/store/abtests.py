"""``ab_tests`` and ``ab_decisions`` rows, and per-arm figures aggregated from the prediction log.

A challenger from drift-triggered retraining asks for a test (``pending``); the A/B promotion
workflow (``relearn.abtest.deploy``) starts it and moves it through its stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relearn.abtest.stats import Stratum, cluster_variance

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
    """Set columns of a test (names are this module's own, never user input)."""
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
    run_key: str


def find_decision_of_run(
    connection: Connection, model_name: str, run_key: str
) -> tuple[DecisionRow, str] | None:
    """The decision a run key made for any of the model's tests, with that test's version."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.test_id, d.decided_at, d.action, d.traffic_before, d.traffic_after, "
            "d.reason, d.numbers, d.decided_by, d.run_key, t.challenger_version "
            "FROM ab_decisions d JOIN ab_tests t ON t.id = d.test_id "
            "WHERE t.model_name = %s AND d.run_key = %s ORDER BY d.id DESC LIMIT 1",
            (model_name, run_key),
        )
        row = cursor.fetchone()
    return None if row is None else (DecisionRow(*row[:-1]), row[-1])


def record_decision(connection: Connection, decision: DecisionRow) -> bool:
    """Insert the decision; False when this run key already decided for the test."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ab_decisions (test_id, decided_at, action, traffic_before, "
            "traffic_after, reason, numbers, decided_by, run_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (test_id, run_key) DO NOTHING",
            (
                str(decision.test_id),
                decision.decided_at,
                decision.action,
                decision.traffic_before,
                decision.traffic_after,
                decision.reason,
                json.dumps(decision.numbers),
                decision.decided_by,
                decision.run_key,
            ),
        )
        return cursor.rowcount == 1


def decisions(connection: Connection, test_id: uuid.UUID | str) -> list[DecisionRow]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT test_id, decided_at, action, traffic_before, traffic_after, reason, numbers, "
            "decided_by, run_key FROM ab_decisions WHERE test_id = %s ORDER BY decided_at, id",
            (str(test_id),),
        )
        return [DecisionRow(*row) for row in cursor.fetchall()]


# --- per-arm figures ------------------------------------------------------------------------


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


# Only units with an id were randomised between the arms (the router sends the others to the
# champion), so only they are compared.
_ARMS = """
    model_name = %(model)s AND predicted_at >= %(since)s AND predicted_at < %(until)s
    AND unit_id IS NOT NULL
    AND ((served_by = 'champion' AND model_version = %(champion)s)
         OR (served_by = 'challenger' AND model_version = %(challenger)s))
"""
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


def arm_stats(connection: Connection, window: ArmWindow, classes: list[str]) -> dict[str, ArmStats]:
    """Figures per arm (``champion``, ``challenger``) for the window's versions, in two queries."""
    params = window.params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT served_by, count(*), count(*) FILTER (WHERE {_LABELLED}), "
            f"count(*) FILTER (WHERE {_LABELLED} AND actual_label = predicted_label), "
            "avg(confidence), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            f"FROM prediction_log WHERE {_ARMS} GROUP BY served_by",
            params,
        )
        totals = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT served_by, predicted_label, actual_label, count(*) "
            f"FROM prediction_log WHERE {_ARMS} AND {_LABELLED} "
            "GROUP BY served_by, predicted_label, actual_label",
            params,
        )
        confusion: dict[str, dict[tuple[str, str], int]] = {}
        for arm, predicted, actual, count in cursor.fetchall():
            confusion.setdefault(arm, {})[(predicted, actual)] = count
    result = {}
    for arm, version in (
        ("champion", window.champion_version),
        ("challenger", window.challenger_version),
    ):
        n, labelled, correct, confidence, p95 = totals.get(arm, (0, 0, 0, None, None))
        result[arm] = ArmStats(
            arm=arm,
            version=str(version),
            predictions=n,
            labelled=labelled,
            correct=correct,
            mean_confidence=None if confidence is None else float(confidence),
            latency_p95_ms=None if p95 is None else float(p95),
            f1_macro=macro_f1(confusion.get(arm, {}), classes),
        )
    return result


def strata(connection: Connection, window: ArmWindow, boundaries: list[datetime]) -> list[Stratum]:
    """Labelled counts per arm in each period between ``boundaries`` (traffic changes), with
    the cluster-robust variance over units (each unit stays in one arm during a test)."""
    params = {**window.params(), "bounds": sorted(boundaries)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bucket, served_by, sum(n), sum(c), count(*), sum(n * n), sum(c * c), "
            "sum(c * n) FROM (SELECT width_bucket(predicted_at, %(bounds)s::timestamptz[]) "
            "AS bucket, served_by, unit_id, count(*)::float8 AS n, "
            "count(*) FILTER (WHERE actual_label = predicted_label)::float8 AS c "
            f"FROM prediction_log WHERE {_ARMS} AND {_LABELLED} GROUP BY 1, 2, 3) AS per_unit "
            "GROUP BY 1, 2",
            params,
        )
        arms: dict[int, dict[str, tuple[int, int, float | None]]] = {}
        for bucket, arm, n, c, units, sum_n2, sum_c2, sum_cn in cursor.fetchall():
            variance = cluster_variance(
                int(n), int(c), units=units, sum_n2=sum_n2, sum_c2=sum_c2, sum_cn=sum_cn
            )
            arms.setdefault(bucket, {})[arm] = (int(n), int(c), variance)
    result = []
    for _, period in sorted(arms.items()):
        a_n, a_c, a_var = period.get("champion", (0, 0, None))
        b_n, b_c, b_var = period.get("challenger", (0, 0, None))
        result.append(Stratum(a_n, a_c, b_n, b_c, a_var, b_var))
    return result


def macro_f1(confusion: dict[tuple[str, str], int], classes: list[str]) -> float | None:
    """Macro F1 over the configured classes from (predicted, actual) counts."""
    if not confusion:
        return None
    scores = []
    for label in classes:
        tp = confusion.get((label, label), 0)
        fp = sum(n for (p, a), n in confusion.items() if p == label and a != label)
        fn = sum(n for (p, a), n in confusion.items() if a == label and p != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores)
