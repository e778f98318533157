"""An outcome's time is read as the API always read it (pydantic's datetime): services that
send Unix time must not have their outcomes rejected after an upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from relearn.collect.record import _moment

RECEIVED = datetime(2026, 3, 1, tzinfo=UTC)
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, RECEIVED),
        (1767225600, NEW_YEAR),
        ("1767225600", NEW_YEAR),
        (1767225600000, NEW_YEAR),  # milliseconds
        ("2026-01-01T00:00:00", NEW_YEAR),  # no zone: UTC
        ("2026-01-01T02:00:00+02:00", datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))),
        ("soon", None),
        (True, None),
        ([2026], None),
    ],
)
def test_an_outcome_time_is_read_as_pydantic_reads_it(given, expected) -> None:
    assert _moment(given, RECEIVED) == expected
