"""Orders CSV export: 20,000 orders × 3 lines streamed as the orders page's "Export" sends them.

Ours: every byte of the streamed response (``orders.bulk_views.export_rows`` through
``config.csvio.stream_csv``: a server-side cursor read in chunks, money formatted per currency,
formula cells escaped). Floor, in the same run on the same rows: PostgreSQL's own
``COPY (SELECT … JOIN …) TO STDOUT WITH CSV`` of the same columns, read by psycopg, nothing
formatted in Python.

Also printed: the export's peak Python memory for all orders and for a tenth of them; streaming
means the two are about the same (a list-building export would grow ten times).

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python -m bench.csv_export``
(``ORDERS=2000`` for a quick look).
"""

from __future__ import annotations

import os
import tracemalloc
import uuid
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from bench import report, setup_django, temporary_database, timed

ORDERS = int(os.environ.get("ORDERS", "20000"))
LINES = 3


def seed(account: Any, channel: Any) -> None:
    from django.utils import timezone

    from orders.download import insert_rows
    from orders.models import Order, OrderLine

    now = timezone.now()
    orders, lines = [], []
    for n in range(ORDERS):
        order_id = uuid.uuid4()
        orders.append(
            Order(
                id=order_id,
                account_id=account.pk,
                channel_id=channel.pk,
                external_id=str(n),
                number=f"#{100000 + n}",
                placed_at=now - timedelta(minutes=n),
                status_code="2",
                status_name="Processing",
                currency="EUR",
                subtotal=Decimal("30.00"),
                shipping=Decimal("4.95"),
                tax=Decimal("0"),
                discount=Decimal("0"),
                total=Decimal("34.95"),
                customer_name=f"Customer {n}",
                customer_email=f"c{n}@example.com",
                content_hash="x",
            )
        )
        for position in range(LINES):
            lines.append(
                OrderLine(
                    account_id=account.pk,
                    order_id=order_id,
                    position=position,
                    external_line_id=f"{n}-{position}",
                    sku=f"SKU-{position}",
                    name=f"Item {position}",
                    quantity=1,
                    unit_price=Decimal("10.00"),
                    tax=Decimal("0"),
                    line_total=Decimal("10.00"),
                )
            )
    insert_rows(Order, orders)
    insert_rows(OrderLine, lines)


def ours(account: Any, limit: int | None = None) -> int:
    from config import csvio
    from orders.bulk_views import ORDER_EXPORT_HEADER, export_rows
    from orders.models import Order

    orders = Order.objects.filter(account=account)
    if limit is not None:
        orders = orders.filter(
            pk__in=list(orders.order_by("-placed_at").values_list("pk", flat=True)[:limit])
        )
    response = csvio.stream_csv("orders.csv", ORDER_EXPORT_HEADER, export_rows(orders, UTC))
    return sum(len(chunk) for chunk in response.streaming_content)


def floor(account: Any) -> int:
    from django.db import connection

    sql = (
        "COPY (SELECT o.number, c.name, o.placed_at, o.status_name, o.customer_name, o.customer_email, "
        "o.currency, o.total, l.sku, l.name, l.quantity, l.unit_price, l.tax, l.line_total "
        "FROM orders_order o JOIN channels_saleschannel c ON c.id = o.channel_id "
        "LEFT JOIN orders_orderline l ON l.order_id = o.id WHERE o.account_id = %s "
        "ORDER BY o.placed_at DESC, o.id DESC, l.position) TO STDOUT WITH CSV HEADER"
    )
    size = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql, [account.pk]) as copy:
        for block in copy:
            size += len(block)
    return size


def peak_memory(operation: Any) -> int:
    tracemalloc.start()
    try:
        operation()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("csv_export: the floor is a PostgreSQL COPY; set DATABASE_URL to a PostgreSQL server.")
        return
    from accounts.models import Account
    from channels.models import SalesChannel

    with temporary_database("csv_export"):
        account = Account.objects.create(name="Bench shop")
        channel = SalesChannel.objects.create(
            account=account, platform="xcart", name="Bench store", store_url="https://bench.example.com"
        )
        seed(account, channel)
        floor_first, floor_bytes = timed(lambda: floor(account))
        ours_seconds, ours_bytes = timed(lambda: ours(account))
        floor_second, _ = timed(lambda: floor(account))
        floor_seconds = min(floor_first, floor_second)
        full_peak = peak_memory(lambda: ours(account))
        tenth_peak = peak_memory(lambda: ours(account, limit=max(1, ORDERS // 10)))
        rows = ORDERS * LINES
        report(
            f"orders CSV export, {ORDERS} orders × {LINES} lines",
            [
                (
                    "ours",
                    f"{ours_seconds:.2f} s ({rows / ours_seconds:,.0f} lines/s, {ours_bytes / 1e6:.1f} MB)",
                ),
                ("floor (COPY TO)", f"{floor_seconds:.2f} s ({floor_bytes / 1e6:.1f} MB)"),
                ("ratio ours/floor", f"{ours_seconds / floor_seconds:.1f}"),
                ("peak memory, all orders", f"{full_peak / 1e6:.1f} MB"),
                ("peak memory, a tenth", f"{tenth_peak / 1e6:.1f} MB"),
                ("memory ratio all/tenth", f"{full_peak / max(1, tenth_peak):.2f} (streaming: about 1)"),
            ],
        )


if __name__ == "__main__":
    main()
