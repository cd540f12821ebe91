"""Database helpers the sync jobs share.

:func:`execute_ctes` runs a job's named data-modifying CTEs (its last writes, recorded results) as
one statement: a push of 100 items and its bookkeeping cost one round trip, not one per table.
"""

from __future__ import annotations

from typing import Any

from django.db import connection


def execute_ctes(writes: list[tuple[str, list[Any]]]) -> None:
    """Run named data-modifying CTEs (``("name AS (UPDATE …)", params)``) as one statement."""
    if not writes:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH " + ", ".join(cte for cte, _params in writes) + " SELECT 1",
            [param for _cte, params in writes for param in params],
        )
