"""Expire one model's old rows: archive a day, verify the archive, then delete in batches.

Order per UTC day before the cutoff, so a retry (or a crash anywhere) never loses a row and
never archives a row twice:

1. an archive recorded earlier whose rows are not all handled yet is downloaded, verified
   and its rows deleted (no new export);
2. rows still in the day (never archived, arrived later, or changed since) go to a new part:
   exported in one snapshot, uploaded, recorded, downloaded and verified, then deleted;
3. deletes run in short transactions of ``retention.batch_size`` rows by primary key, each
   only for rows whose content digest equals the archived one, and each re-reading the
   running retrainings under a lock: a window pinned by one is never touched.

Rows whose ``predicted_at`` no UTC day can hold ('-infinity', 'infinity', BC, after year
9999: other services write the log, and Postgres accepts them) go through the same steps as
one more bucket, ``unplaceable``, after the days: kept in an archive like any row, never
lost, and never able to stop the run. The days are visited in a loop whose start day grows
strictly and stays below the cutoff, so it ends.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from relearn.retention import archive as files
from relearn.retraining.options import recorded_window
from relearn.store import retention as store
from relearn.store.db import connect, transaction

if TYPE_CHECKING:
    from collections.abc import Iterator

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)

_EVERYTHING = datetime.min.replace(tzinfo=UTC)
_PROGRESS_EVERY = 20  # batches between progress lines


class DayStatus(StrEnum):
    EXPIRED = "expired"  # archived, verified, deleted
    WOULD_EXPIRE = "would_expire"  # dry run: what a real run would archive and delete
    PROTECTED = "protected"  # a retraining started meanwhile pinned the day: left for later


@dataclass(frozen=True)
class DayOutcome:
    day: date | None  # None: the unplaceable bucket
    status: DayStatus
    rows: int  # in the log when the day was reached
    archived: int  # exported by this run
    deleted: int
    kept: int  # still in the log afterwards (arrived or changed meanwhile, or protected)


@dataclass(frozen=True)
class RetentionResult:
    model_name: str
    dry_run: bool
    cutoff: date  # days before it are expired
    days: tuple[DayOutcome, ...]
    # Other tables: rows deleted (or, in a dry run, that would be).
    other: dict[str, int] = field(default_factory=dict)

    @property
    def archived(self) -> int:
        return sum(d.archived for d in self.days)

    @property
    def deleted(self) -> int:
        return sum(d.deleted for d in self.days)

    def summary(self) -> str:
        verb = "would expire" if self.dry_run else "expired"
        rows = sum(d.rows for d in self.days) if self.dry_run else self.deleted
        others = ", ".join(f"{n} {table}" for table, n in self.other.items())
        days = sum(d.day is not None for d in self.days)
        unplaceable = sum(d.rows for d in self.days if d.day is None)
        bucket = f", {unplaceable} with a predicted_at no day can hold" if unplaceable else ""
        return (
            f"{self.model_name}: {verb} {rows} predictions of {days} day(s) before "
            f"{self.cutoff}{bucket} (archived {self.archived}); other tables: "
            f"{others or 'nothing'}"
        )


def protected_since(windows: list[dict]) -> datetime | None:
    """The earliest start of a running retraining's window (``recorded_window``: a decay
    retraining's ``lookback_hours`` or else ``lookback_days`` before its ``window_end``).

    A run whose window cannot be read protects everything: better keep than lose.
    """
    starts = []
    for params in windows:
        try:
            starts.append(recorded_window(params)[0])
        except (KeyError, TypeError, ValueError, OverflowError):
            return _EVERYTHING
    return min(starts, default=None)


def cutoff_day(now: datetime, days: int, windows: list[dict]) -> date:
    """Days strictly before the returned one are expired: older than ``days`` and not in
    a running retraining's window."""
    cutoff = (now - timedelta(days=days)).astimezone(UTC).date()
    since = protected_since(windows)
    if since is None:
        return cutoff
    if since == _EVERYTHING:
        return date.min
    return min(cutoff, since.astimezone(UTC).date())


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _label(day: date | None) -> str:
    return files.UNPLACEABLE if day is None else day.isoformat()


def _protected(cutoff: date, day: date | None) -> bool:
    """Whether the day must stay. The unplaceable bucket is in no retraining's window: it stays
    only while an unreadable window protects everything."""
    return cutoff == date.min if day is None else cutoff <= day


@dataclass(frozen=True)
class _Run:
    services: Services
    model_cfg: ModelConfig
    now: datetime
    trigger_key: str

    @property
    def name(self) -> str:
        return self.model_cfg.name

    @property
    def batch_size(self) -> int:
        return self.model_cfg.retention.batch_size


def expire_model(
    services: Services,
    model_cfg: ModelConfig,
    *,
    now: datetime,
    trigger_key: str,
    dry_run: bool = False,
) -> RetentionResult:
    """Apply the model's retention as of ``now`` (``trigger_key``: the DAG run or CLI call)."""
    run = _Run(services, model_cfg, now, trigger_key)
    with transaction(services.database_url) as connection:
        windows = store.running_windows(connection, run.name, lock=False)
    cutoff = cutoff_day(now, model_cfg.retention.days, windows)
    wanted = cutoff_day(now, model_cfg.retention.days, [])
    if cutoff < wanted:
        # A run that died without being marked failed would hold retention back forever:
        # say so, so an operator can fail it (its row in model_retraining_runs).
        log.warning(
            "%s: keeping everything from %s on (not %s): %d running retraining run(s) pin "
            "their windows; a run that is not really running any more should be marked failed",
            run.name,
            cutoff,
            wanted,
            len(windows),
        )
    expire = _preview_day if dry_run else _expire_day
    days = [expire(run, day) for day in _days_before(run, cutoff)]
    if not _protected(cutoff, None):
        bucket = expire(run, None)
        if bucket.rows or bucket.deleted:
            days.append(bucket)
    other = _expire_other_tables(run, dry_run=dry_run)
    result = RetentionResult(run.name, dry_run, cutoff, tuple(days), other)
    if not dry_run and result.deleted:
        _vacuum(services)
    log.info("%s", result.summary())
    return result


def _days_before(run: _Run, cutoff: date) -> Iterator[date]:
    """The model's days with rows before ``cutoff``, oldest first.

    Each query starts the day after the previous answer and ``oldest_day`` never answers
    earlier than its start, so the start grows strictly and the loop ends before ``cutoff``:
    at most one query per day with rows, plus one.
    """
    from_day = date.min
    while from_day < cutoff:
        with transaction(run.services.database_url) as connection:
            day = store.oldest_day(connection, run.name, from_day=from_day, before=cutoff)
        if day is None:
            return
        yield day
        from_day = day + timedelta(days=1)


def _day_rows(run: _Run, day: date | None) -> int:
    with transaction(run.services.database_url) as connection:
        return store.day_rows(connection, run.name, day)


def _preview_day(run: _Run, day: date | None) -> DayOutcome:
    rows = _day_rows(run, day)
    log.info("%s %s: would archive and delete %d rows", run.name, _label(day), rows)
    return DayOutcome(day, DayStatus.WOULD_EXPIRE, rows, 0, 0, rows)


def _expire_day(run: _Run, day: date | None) -> DayOutcome:
    rows = _day_rows(run, day)
    with transaction(run.services.database_url) as connection:
        known = store.archives(connection, run.name, day)
    deleted = archived = 0
    for pending in (a for a in known if a.status == store.ARCHIVED):
        log.info("%s %s: resuming archive part %d", run.name, _label(day), pending.part)
        removed, protected = _delete_archived(run, pending)
        deleted += removed
        if protected:
            return DayOutcome(day, DayStatus.PROTECTED, rows, 0, deleted, _day_rows(run, day))
    if _day_rows(run, day):
        part = max((a.part for a in known), default=-1) + 1
        new = _archive_day(run, day, part)
        if new is not None:
            archived = new.row_count
            removed, protected = _delete_archived(run, new)
            deleted += removed
            if protected:
                status = DayStatus.PROTECTED
                return DayOutcome(day, status, rows, archived, deleted, _day_rows(run, day))
    return DayOutcome(day, DayStatus.EXPIRED, rows, archived, deleted, _day_rows(run, day))


def _archive_day(run: _Run, day: date | None, part: int) -> store.Archive | None:
    """Export, upload and record the day's rows as ``part``; None when the day is empty."""
    mlflow_run_id = files.retention_run(run.services, run.name)
    with tempfile.TemporaryDirectory(prefix="relearn-archive-") as tmp:
        path = Path(tmp) / "export.parquet"
        count, digest = files.write_day(run.services, run.name, day, path)
        if not count:
            return None
        sha = files.file_sha256(path)
        uri = files.upload(run.services, mlflow_run_id, path, day, part)
    with transaction(run.services.database_url) as connection:
        recorded = store.record_archive(
            connection,
            model_name=run.name,
            day=day,
            part=part,
            row_count=count,
            digest=digest,
            file_sha256=sha,
            artifact_uri=uri,
            mlflow_run_id=mlflow_run_id,
            trigger_key=run.trigger_key,
        )
    log.info("%s %s: archived %d rows as part %d (%s)", run.name, _label(day), count, part, uri)
    return recorded


def _delete_archived(run: _Run, archive: store.Archive) -> tuple[int, bool]:
    """Delete the verified archive's unchanged rows: (rows deleted, stopped by protection)."""
    deleted = batches = 0
    with tempfile.TemporaryDirectory(prefix="relearn-archive-") as tmp:
        path = files.download_verified(run.services, archive, tmp)
        for ids, digests in files.archived_rows(path, run.batch_size):
            with transaction(run.services.database_url) as connection:
                windows = store.running_windows(connection, run.name, lock=True)
                cutoff = cutoff_day(run.now, run.model_cfg.retention.days, windows)
                if _protected(cutoff, archive.day):
                    log.warning(
                        "%s %s: a running retraining's window now covers the day; "
                        "%d rows deleted, the rest stay until it ends",
                        run.name,
                        _label(archive.day),
                        deleted,
                    )
                    return deleted, True
                before = None if archive.day is None else _start(cutoff)
                removed = store.delete_archived(connection, run.name, ids, digests, before=before)
                store.count_deleted(connection, archive.id, removed)
            deleted += removed
            batches += 1
            if batches % _PROGRESS_EVERY == 0:
                log.info(
                    "%s %s part %d: %d of %d rows deleted",
                    run.name,
                    _label(archive.day),
                    archive.part,
                    deleted,
                    archive.row_count,
                )
    with transaction(run.services.database_url) as connection:
        store.finish_archive(connection, archive.id)
    log.info(
        "%s %s part %d: deleted %d of %d archived rows (the rest changed or were gone)",
        run.name,
        _label(archive.day),
        archive.part,
        deleted,
        archive.row_count,
    )
    return deleted, False


def _expire_other_tables(run: _Run, *, dry_run: bool) -> dict[str, int]:
    rc = run.model_cfg.retention
    keep = {
        "prediction_quarantine": rc.quarantine_days,
        "health_checks": rc.health_check_days,
        "drift_reports": rc.drift_report_days,
        "usage_events": rc.usage_event_days,
        "alerts": rc.alert_days,
    }
    counts = {}
    for table in store.EXPIRING_TABLES:
        before = run.now - timedelta(days=keep[table])
        total = 0
        with transaction(run.services.database_url) as connection:
            if dry_run:
                total = store.count_expired(connection, table, run.name, before)
        while not dry_run:
            with transaction(run.services.database_url) as connection:
                removed = store.delete_expired(connection, table, run.name, before, run.batch_size)
            total += removed
            if removed < run.batch_size:
                break
        counts[table] = total
    return counts


def _vacuum(services: Services) -> None:
    """Deleted rows' space becomes reusable by new predictions now, so the table stays at
    about ``retention.days`` of rows instead of growing until autovacuum comes by."""
    connection = connect(services.database_url)
    try:
        connection.autocommit = True
        store.vacuum_log(connection)
    finally:
        connection.close()
