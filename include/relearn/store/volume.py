"""How many predictions got their outcome in a period: what retraining on volume waits for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection


def count_new_labelled(
    connection: Connection,
    model_name: str,
    *,
    labelled_after: datetime | None,
    until: datetime,
    predicted_after: datetime,
) -> int:
    """The model's predictions made in ``(predicted_after, until]`` whose outcome arrived in
    ``(labelled_after, until]`` (any time up to ``until`` when ``labelled_after`` is None).

    Only predictions a retraining would read count (``predicted_after``: the start of its
    window), which also keeps the scan on the labelled-window index. A row whose outcome has
    no ``outcome_at`` (written by another producer) counts as labelled when it was predicted.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM prediction_log
            WHERE model_name = %(model)s AND actual_label IS NOT NULL
              AND predicted_at > %(predicted_after)s AND predicted_at <= %(until)s
              AND coalesce(outcome_at, predicted_at) <= %(until)s
              AND (%(labelled_after)s::timestamptz IS NULL
                   OR coalesce(outcome_at, predicted_at) > %(labelled_after)s)
            """,
            {
                "model": model_name,
                "predicted_after": predicted_after,
                "until": until,
                "labelled_after": labelled_after,
            },
        )
        return int(cursor.fetchone()[0])
