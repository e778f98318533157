"""Connections to Relearn's database: short transactions, parameterised SQL only."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.extras

from relearn.settings import libpq_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from psycopg2.extensions import connection as Connection

psycopg2.extras.register_uuid()


def connect(url: str) -> Connection:
    return psycopg2.connect(libpq_url(url), connect_timeout=10)


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    """One connection, one transaction: committed on success, rolled back on any error."""
    connection = connect(url)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def table_exists(connection: Connection, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",))
        return bool(cursor.fetchone()[0])
