"""Retention against the real Postgres and MLflow: archive, verify, then delete; never more."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from relearn.registry import registry_client
from relearn.retention import DayStatus, expire_model
from relearn.retention import archive as files
from relearn.retention.expire import _archive_day, _Run
from relearn.services import Services
from relearn.store import retention as store
from relearn.store.db import transaction

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def services(database_url, tracking_uri) -> Services:
    return Services(database_url, tracking_uri)


@pytest.fixture
def model(model_cfg):
    """The churn schema under a fresh name: each test has the log to itself."""
    return model_cfg.model_copy(update={"name": f"ret_{uuid.uuid4().hex[:10]}"})


def insert_predictions(url: str, model_name: str, times: list[datetime]) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in times]
    with transaction(url) as connection, connection.cursor() as cursor:
        for i, (pid, at) in enumerate(zip(ids, times, strict=True)):
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version, unit_id, "
                "predicted_at, features, predicted_label, confidence, actual_label, outcome_at) "
                "VALUES (%s, %s, '1', %s, %s, %s, 'yes', 0.8, 'no', %s)",
                (
                    pid,
                    model_name,
                    f"u{i}",
                    at,
                    json.dumps({"tenure_months": i, "contract": "monthly"}),
                    at + timedelta(hours=6),
                ),
            )
    return ids


def log_ids(url: str, model_name: str) -> set[str]:
    with transaction(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT prediction_id::text FROM prediction_log WHERE model_name = %s", (model_name,)
        )
        return {row[0] for row in cursor.fetchall()}


def archive_rows(url: str, model_name: str) -> list[store.Archive]:
    with transaction(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT day FROM prediction_archives WHERE model_name = %s", (model_name,)
        )
        days = sorted(row[0] for row in cursor.fetchall())
        return [a for day in days for a in store.archives(connection, model_name, day)]


def download(services: Services, archive: store.Archive, tmp: Path) -> Path:
    return Path(
        registry_client(services.tracking_uri).download_artifacts(
            archive.mlflow_run_id, files.artifact_path(archive.day, archive.part), str(tmp)
        )
    )


def test_old_rows_are_archived_then_deleted_and_recent_rows_kept(services, model, tmp_path):
    old = [NOW - timedelta(days=100, hours=h) for h in (1, 2, 3)] + [NOW - timedelta(days=120)]
    recent = [NOW - timedelta(days=d) for d in (1, 30, 89)]
    old_ids = insert_predictions(services.database_url, model.name, old)
    recent_ids = insert_predictions(services.database_url, model.name, recent)
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO feedback (prediction_id, rating, comment) VALUES (%s, 4, 'fine')",
            (old_ids[0],),
        )

    result = expire_model(services, model, now=NOW, trigger_key="test-1")

    assert log_ids(services.database_url, model.name) == set(recent_ids)
    assert (result.archived, result.deleted) == (4, 4)
    assert [d.status for d in result.days] == [DayStatus.EXPIRED, DayStatus.EXPIRED]
    assert result.cutoff == (NOW - timedelta(days=90)).date()
    archives = archive_rows(services.database_url, model.name)
    assert [(a.day, a.part, a.row_count, a.status, a.rows_deleted) for a in archives] == [
        ((NOW - timedelta(days=120)).date(), 0, 1, "deleted", 1),
        ((NOW - timedelta(days=100)).date(), 0, 3, "deleted", 3),
    ]
    exported: dict[str, dict] = {}
    for archive in archives:
        path = download(services, archive, tmp_path / str(archive.part) / str(archive.day))
        table = pq.read_table(path)
        assert table.num_rows == archive.row_count
        assert files.file_sha256(path) == archive.file_sha256
        digest = hashlib.sha256()
        for value in table.column(files.DIGEST_COLUMN).to_pylist():
            digest.update(value.encode() + b"\n")
        assert digest.hexdigest() == archive.digest
        exported |= {row["prediction_id"]: row for row in table.to_pylist()}
    assert set(exported) == set(old_ids)
    first = exported[old_ids[0]]
    assert json.loads(first["features"]) == {"tenure_months": 0, "contract": "monthly"}
    assert (first["confidence"], first["actual_label"], first["unit_id"]) == (0.8, "no", "u0")
    assert [(f["rating"], f["comment"]) for f in json.loads(first["feedback"])] == [(4, "fine")]
    assert exported[old_ids[1]]["feedback"] is None


def test_a_second_run_is_a_no_op(services, model):
    insert_predictions(services.database_url, model.name, [NOW - timedelta(days=95)])
    first = expire_model(services, model, now=NOW, trigger_key="first")
    before = archive_rows(services.database_url, model.name)

    again = expire_model(services, model, now=NOW, trigger_key="again")

    assert (first.archived, first.deleted) == (1, 1)
    assert (again.archived, again.deleted, again.days) == (0, 0, ())
    assert archive_rows(services.database_url, model.name) == before


def test_dry_run_changes_nothing(services, model):
    ids = insert_predictions(
        services.database_url, model.name, [NOW - timedelta(days=d) for d in (95, 95, 200, 2)]
    )
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO health_checks (model_name, checked_at, status, details) "
            "VALUES (%s, %s, 'healthy', '{}')",
            (model.name, NOW - timedelta(days=40)),
        )

    result = expire_model(services, model, now=NOW, trigger_key="dry", dry_run=True)

    assert [(d.status, d.rows) for d in result.days] == [
        (DayStatus.WOULD_EXPIRE, 1),
        (DayStatus.WOULD_EXPIRE, 2),
    ]
    assert (result.archived, result.deleted) == (0, 0)
    assert result.other["health_checks"] == 1
    assert log_ids(services.database_url, model.name) == set(ids)
    assert archive_rows(services.database_url, model.name) == []
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM health_checks WHERE model_name = %s", (model.name,))
        assert cursor.fetchone()[0] == 1


def test_a_running_retrainings_window_is_never_touched(services, model):
    window_end = NOW - timedelta(days=95)  # a replay of an old period, lookback 7 days
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO model_retraining_runs (id, model_name, source, status, params, "
            "trigger_key) VALUES (%s, %s, 'manual', 'running', %s, %s)",
            (
                uuid.uuid4(),
                model.name,
                json.dumps({"window_end": window_end.isoformat(), "lookback_days": 7}),
                f"cli__{uuid.uuid4()}",
            ),
        )
    in_window = insert_predictions(
        services.database_url, model.name, [window_end - timedelta(days=3)]
    )
    older = insert_predictions(services.database_url, model.name, [NOW - timedelta(days=110)])

    result = expire_model(services, model, now=NOW, trigger_key="pinned")

    assert log_ids(services.database_url, model.name) == set(in_window)
    assert result.deleted == 1 and older[0] not in log_ids(services.database_url, model.name)
    assert result.cutoff == (window_end - timedelta(days=7)).date()


def test_a_retry_resumes_the_recorded_archive_and_keeps_changed_rows(services, model):
    """A crash after the archive was recorded: the retry exports nothing again, and a row
    that changed in between (a late outcome) is not deleted but archived anew."""
    day_start = NOW - timedelta(days=100)
    ids = insert_predictions(
        services.database_url, model.name, [day_start + timedelta(minutes=m) for m in (1, 2, 3)]
    )
    first = _archive_day(_Run(services, model, NOW, "crashed"), day_start.date(), 0)
    assert first is not None and first.row_count == 3
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE prediction_log SET actual_label = 'yes' WHERE prediction_id = %s", (ids[0],)
        )

    result = expire_model(services, model, now=NOW, trigger_key="retry")

    assert log_ids(services.database_url, model.name) == set()
    archives = archive_rows(services.database_url, model.name)
    assert [(a.part, a.row_count, a.rows_deleted, a.status) for a in archives] == [
        (0, 3, 2, "deleted"),  # resumed, not exported again; the changed row stayed
        (1, 1, 1, "deleted"),  # the changed row, archived with its new label
    ]
    assert result.archived == 1 and result.deleted == 3


def test_an_archive_that_does_not_match_its_record_deletes_nothing(services, model):
    day_start = NOW - timedelta(days=100)
    ids = insert_predictions(services.database_url, model.name, [day_start])
    recorded = _archive_day(_Run(services, model, NOW, "crashed"), day_start.date(), 0)
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE prediction_archives SET row_count = 2 WHERE id = %s", (recorded.id,))

    with pytest.raises(files.ArchiveError, match="1 rows with digest"):
        expire_model(services, model, now=NOW, trigger_key="tampered")

    assert log_ids(services.database_url, model.name) == set(ids)


def test_quarantine_health_checks_drift_reports_usage_events_and_alerts_follow_their_own_retention(
    services, model
):
    rc = model.retention
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        for age in (rc.health_check_days + 1, rc.health_check_days - 1):
            cursor.execute(
                "INSERT INTO health_checks (model_name, checked_at, status, details, trigger_key)"
                " VALUES (%s, %s, 'healthy', '{}', %s)",
                (model.name, NOW - timedelta(days=age), f"h{age}"),
            )
        for age in (rc.drift_report_days + 1, rc.drift_report_days - 1):
            cursor.execute(
                "INSERT INTO drift_reports (id, model_name, checked_at, window_start, rows, "
                "labelled_rows, threshold, verdict, features, action, trigger_key) VALUES "
                "(%s, %s, %s, %s, 0, 0, 0.2, 'stable', '{}', 'none', %s)",
                (
                    uuid.uuid4(),
                    model.name,
                    NOW - timedelta(days=age),
                    NOW - timedelta(days=age, hours=24),
                    f"d{age}",
                ),
            )
        for age in (rc.usage_event_days + 1, rc.usage_event_days - 1):
            cursor.execute(
                "INSERT INTO usage_events (model_name, event_type, unit_id, occurred_at) "
                "VALUES (%s, 'click', %s, %s)",
                (model.name, f"e{age}", NOW - timedelta(days=age)),
            )
        for age in (rc.alert_days + 1, rc.alert_days - 1):
            cursor.execute(
                "INSERT INTO alerts (model_name, kind, severity, subject, message, "
                "recommendation, raised_at, trigger_key) "
                "VALUES (%s, 'drift', 'warning', %s, 'm', 'r', %s, 't')",
                (model.name, f"a{age}", NOW - timedelta(days=age)),
            )
        for status in ("completed", "running"):
            run_id = uuid.uuid4()
            cursor.execute(
                "INSERT INTO model_retraining_runs (id, model_name, source, status, params, "
                "trigger_key) VALUES (%s, %s, 'manual', %s, %s, %s)",
                (
                    run_id,
                    model.name,
                    status,
                    json.dumps({"window_end": NOW.isoformat(), "lookback_days": 7}),
                    f"cli__{run_id}",
                ),
            )
            for age in (rc.quarantine_days + 1, rc.quarantine_days - 1):
                cursor.execute(
                    "INSERT INTO prediction_quarantine (retraining_run_id, prediction_id, "
                    "reasons, row_data, quarantined_at) VALUES (%s, %s, '[]', '{}', %s)",
                    (run_id, f"p{age}", NOW - timedelta(days=age)),
                )

    result = expire_model(services, model, now=NOW, trigger_key="others")

    assert result.other == {
        "prediction_quarantine": 1,
        "health_checks": 1,
        "drift_reports": 1,
        "usage_events": 1,
        "alerts": 1,
    }
    with transaction(services.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.status, q.prediction_id FROM prediction_quarantine q "
            "JOIN model_retraining_runs r ON r.id = q.retraining_run_id "
            "WHERE r.model_name = %s ORDER BY 1, 2",
            (model.name,),
        )
        # the completed run's old row went; the running run keeps its rows however old
        assert cursor.fetchall() == [
            ("completed", f"p{rc.quarantine_days - 1}"),
            ("running", f"p{rc.quarantine_days - 1}"),
            ("running", f"p{rc.quarantine_days + 1}"),
        ]
        cursor.execute("SELECT trigger_key FROM health_checks WHERE model_name = %s", (model.name,))
        assert cursor.fetchall() == [(f"h{rc.health_check_days - 1}",)]
        cursor.execute("SELECT unit_id FROM usage_events WHERE model_name = %s", (model.name,))
        assert cursor.fetchall() == [(f"e{rc.usage_event_days - 1}",)]
        cursor.execute("SELECT subject FROM alerts WHERE model_name = %s", (model.name,))
        assert cursor.fetchall() == [(f"a{rc.alert_days - 1}",)]


def test_days_are_utc_days_whatever_the_session_zone(services, model, monkeypatch, tmp_path):
    """02:00 UTC is the evening before in New York: the row still belongs to its UTC day."""
    monkeypatch.setenv("PGTZ", "America/New_York")
    early = datetime.combine(
        (NOW - timedelta(days=100)).date(), datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=2)
    insert_predictions(services.database_url, model.name, [early])

    result = expire_model(services, model, now=NOW, trigger_key="utc")

    assert result.deleted == 1
    (archive,) = archive_rows(services.database_url, model.name)
    assert archive.day == early.date()
    row = pq.read_table(download(services, archive, tmp_path)).to_pylist()[0]
    assert row["predicted_at"] == early.strftime("%Y-%m-%d %H:%M:%S+00")


# Values Postgres accepts for a timestamptz that no UTC day (no Python date) can hold.
UNPLACEABLE = ("-infinity", "infinity", "4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59+00")


def insert_raw_times(url: str, model_name: str, times: tuple[str, ...]) -> list[str]:
    """Rows as another team's service may write them: any timestamp text Postgres accepts."""
    ids = [str(uuid.uuid4()) for _ in times]
    with transaction(url) as connection, connection.cursor() as cursor:
        for pid, at in zip(ids, times, strict=True):
            cursor.execute(
                "INSERT INTO prediction_log (prediction_id, model_name, model_version, "
                "predicted_at, features, predicted_label, confidence, outcome_at) "
                "VALUES (%s, %s, '1', %s::timestamptz, '{}', 'no', 0.5, %s::timestamptz)",
                (pid, model_name, at, at),
            )
    return ids


@pytest.mark.timeout(180)  # the old loop could spin forever: fail instead of hanging
def test_timestamps_no_day_can_hold_are_archived_apart_and_the_run_ends(services, model, tmp_path):
    hostile = insert_raw_times(services.database_url, model.name, UNPLACEABLE)
    (old,) = insert_predictions(services.database_url, model.name, [NOW - timedelta(days=100)])
    (recent,) = insert_predictions(services.database_url, model.name, [NOW - timedelta(days=1)])

    result = expire_model(services, model, now=NOW, trigger_key="hostile")

    assert log_ids(services.database_url, model.name) == {recent}
    assert [(d.day, d.rows, d.deleted) for d in result.days] == [
        ((NOW - timedelta(days=100)).date(), 1, 1),
        (None, 4, 4),  # the explicit bucket of rows no day can hold
    ]
    with transaction(services.database_url) as connection:
        bucket = store.archives(connection, model.name, None)
    assert [(a.part, a.row_count, a.status) for a in bucket] == [(0, 4, "deleted")]
    path = download(services, bucket[0], tmp_path)
    assert "prediction_archive/unplaceable/" in bucket[0].artifact_uri
    rows = {r["prediction_id"]: r for r in pq.read_table(path).to_pylist()}
    assert set(rows) == set(hostile) and old not in rows
    assert sorted(r["predicted_at"] for r in rows.values()) == sorted(UNPLACEABLE)

    again = expire_model(services, model, now=NOW, trigger_key="hostile-again")
    assert (again.archived, again.deleted, again.days) == (0, 0, ())


def test_rows_no_day_can_hold_are_counted_by_a_dry_run(services, model):
    # A BC day alone used to fail the task (Python has no year before 1).
    ids = insert_raw_times(services.database_url, model.name, UNPLACEABLE[1:3])

    result = expire_model(services, model, now=NOW, trigger_key="dry", dry_run=True)

    assert [(d.day, d.status, d.rows) for d in result.days] == [(None, DayStatus.WOULD_EXPIRE, 2)]
    assert log_ids(services.database_url, model.name) == set(ids)
