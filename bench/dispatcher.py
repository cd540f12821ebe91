"""Dispatcher: 10,000 enabled channels, one tick with 1 % of them due and one with nothing due.

Ours: ``dispatch_due_jobs`` as the beat runs it (claim the due schedule rows in batches, write
their next due times, send the jobs), statements counted with ``CaptureQueriesContext``. The
broker is replaced by a list (publishing is the broker's cost, the same for any scheduler). Floor,
measured in the same run on the same tables: reading the due rows' ids with one plain indexed
``SELECT`` (no lock, no update, no join): the least any scheduler must do to learn what is due.
Targets: ≤ 20 statements and ≤ 200 ms for 100 due; ≤ 50 ms for an idle tick.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import timedelta
from typing import Any

from bench import median, report, setup_django, temporary_database, timed

#: The issue's figures; the environment may shrink them for the suite's smoke run.
CHANNELS = int(os.environ.get("CHANNELS", "10000"))
DUE = max(1, CHANNELS // 100)
ROUNDS = int(os.environ.get("ROUNDS", "7"))


def create_channels(account: Any) -> list[Any]:
    """Bulk-created enabled channels with their schedule rows, nothing due yet."""
    from django.utils import timezone

    from channels import sync
    from channels.models import ChannelSchedule, ConnectionState, SalesChannel

    rows = [
        SalesChannel(
            id=uuid.uuid4(),
            account=account,
            platform="opencart",
            name=f"Bench channel {n}",
            store_url=f"https://shop{n}.example.com",
            enabled=True,
            connection_state=ConnectionState.OK,
            credentials={"api_username": "Default", "api_key": "x" * 32},
            settings={"stock_sync": True, "price_sync": False},
        )
        for n in range(CHANNELS)
    ]
    SalesChannel.objects.bulk_create(rows, batch_size=2000)
    now = timezone.now()
    ChannelSchedule.objects.bulk_create(
        [
            ChannelSchedule(
                channel_id=row.pk,
                account_id=account.pk,
                orders_due_at=sync.spread_slot(row.pk, timedelta(minutes=5), now + timedelta(minutes=1)),
            )
            for row in rows
        ],
        batch_size=2000,
    )
    return rows


def main() -> int:
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts.models import Account
    from channels import sync
    from channels.models import ChannelSchedule

    sent: list[tuple[str, str]] = []
    sync.send_job = lambda channel_id, job: sent.append((str(channel_id), job))  # type: ignore[assignment]

    busy: list[float] = []
    idle: list[float] = []
    floor_busy: list[float] = []
    floor_idle: list[float] = []
    statements_busy: list[int] = []
    statements_idle: list[int] = []
    claimed_busy: list[int] = []
    with temporary_database("dispatcher"):
        account = Account.objects.create(name="Bench installation")
        channels = create_channels(account)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # what autovacuum does to a live database
                cursor.execute("ANALYZE")
        due_sql = (
            "SELECT channel_id FROM channels_channelschedule WHERE orders_due_at <= %s "
            "OR shipments_due_at <= %s OR stock_due_at <= %s OR prices_due_at <= %s"
        )

        def floor() -> int:
            now = timezone.now()
            with connection.cursor() as cursor:
                cursor.execute(due_sql, [now] * 4)
                return len(cursor.fetchall())

        def tick() -> tuple[int, list[tuple[str, str]]]:
            with CaptureQueriesContext(connection) as queries:
                claimed = sync.dispatch_due_jobs()
            return len(queries.captured_queries), claimed

        for round_number in range(ROUNDS):
            chosen = channels[round_number * DUE : (round_number + 1) * DUE] or channels[:DUE]
            ChannelSchedule.objects.filter(pk__in=[c.pk for c in chosen]).update(
                stock_due_at=timezone.now() - timedelta(seconds=1)
            )
            # The floor only reads, so it goes first (ours then claims what it found).
            seconds, found = timed(floor)
            assert found == DUE, found
            floor_busy.append(seconds)
            seconds, (statements, claimed) = timed(tick)
            busy.append(seconds)
            statements_busy.append(statements)
            claimed_busy.append(len(claimed))
            # Nothing due now: the idle tick and its floor, in alternating order.
            for side in ("floor", "ours") if round_number % 2 else ("ours", "floor"):
                if side == "floor":
                    seconds, found = timed(floor)
                    assert found == 0, found
                    floor_idle.append(seconds)
                else:
                    seconds, (statements, claimed) = timed(tick)
                    assert claimed == []
                    idle.append(seconds)
                    statements_idle.append(statements)

    report(
        f"bench.dispatcher — {CHANNELS:,} enabled channels, {DUE} due (1 %) and none due",
        [
            ("jobs claimed per busy tick", ", ".join(str(n) for n in claimed_busy) + f"  (expected {DUE})"),
            ("statements per busy tick", ", ".join(str(n) for n in statements_busy) + "  (target ≤ 20)"),
            ("statements per idle tick", ", ".join(str(n) for n in statements_idle)),
            ("ours: busy tick, median", f"{median(busy) * 1000:.1f} ms  (target ≤ 200 ms)"),
            ("ours: idle tick, median", f"{median(idle) * 1000:.1f} ms  (target ≤ 50 ms)"),
            ("floor: due ids, indexed SELECT, busy", f"{median(floor_busy) * 1000:.2f} ms"),
            ("floor: due ids, indexed SELECT, idle", f"{median(floor_idle) * 1000:.2f} ms"),
            ("ratio busy tick / floor", f"{median(busy) / median(floor_busy):.1f}"),
            ("ratio idle tick / floor", f"{median(idle) / median(floor_idle):.1f}"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
