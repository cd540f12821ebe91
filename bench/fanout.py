"""Job fan-out: which stock jobs a product edit and an order download ask for, and what that costs.

The account a real seller has: 100 channels, 10,000 products, each listed on its home channel and
the two next to it (30,000 listings). Two changes:

- One SKU (listed on 3 of the 100 channels) changes its quantity on hand through
  ``upsert_products``, the path of the UI, the API and the admin: stock jobs requested (must be
  exactly the 3 channels listing it), statements including the after-commit claim, and time.
  Floor, in the same run on the same tables: the one ``UPDATE`` of the product's row.
- A 2,000-order download on one channel (``download_orders``, pages of 100 from an in-memory
  connector, so the store costs nothing): stock jobs requested per page (must be the channels
  listing that page's SKUs, counted here with a query of their own) and statements per page.

The broker is replaced by a list (publishing is the broker's cost). Run:
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python -m bench.fanout``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bench import median, report, setup_django, temporary_database, timed

CHANNELS = int(os.environ.get("CHANNELS", "100"))
PRODUCTS = int(os.environ.get("PRODUCTS", "10000"))
ORDERS = int(os.environ.get("ORDERS", "2000"))
PAGE = int(os.environ.get("PAGE", "100"))
ROUNDS = int(os.environ.get("ROUNDS", "7"))
#: Each product is listed on its home channel and the next ones: 3 channels per SKU.
LISTED_ON = 3


def build_account() -> tuple[Any, list[Any], list[str]]:
    """The account, its channels (syncing stock) and the SKUs by product number."""
    from django.utils import timezone

    from accounts.models import Account
    from channels.models import ChannelSchedule, ConnectionState, SalesChannel
    from inventory.models import Listing, Product

    account = Account.objects.create(name="Bench seller")
    channels = [
        SalesChannel(
            id=uuid.uuid4(),
            account=account,
            platform="opencart",
            name=f"Store {n}",
            store_url=f"https://shop{n}.example.com",
            enabled=True,
            connection_state=ConnectionState.OK,
            credentials={"api_username": "Default", "api_key": "x" * 32},
            settings={"stock_sync": True, "price_sync": True, "processed_status": "3"},
        )
        for n in range(CHANNELS)
    ]
    SalesChannel.objects.bulk_create(channels, batch_size=2000)
    later = timezone.now() + timedelta(hours=1)
    ChannelSchedule.objects.bulk_create(
        [ChannelSchedule(channel_id=c.pk, account_id=account.pk, orders_due_at=later) for c in channels]
    )
    skus = [f"SKU-{n:05d}" for n in range(PRODUCTS)]
    now = timezone.now()
    products = [
        Product(account=account, sku=sku, name=sku, on_hand=1000, price=Decimal("9.99"), created_at=now)
        for sku in skus
    ]
    Product.objects.bulk_create(products, batch_size=5000)
    listings = [
        Listing(
            account=account,
            channel=channels[(home(n) + step) % CHANNELS],
            product=product,
            sku=product.sku,
            remote_id=str(n + 1),
            store_quantity=1000,
            last_pushed_quantity=1000,
            created_at=now,
        )
        for n, product in enumerate(products)
        for step in range(min(LISTED_ON, CHANNELS))
    ]
    Listing.objects.bulk_create(listings, batch_size=5000)
    return account, channels, skus


def home(product_number: int) -> int:
    """The channel a product is mostly sold on (products spread evenly over the channels)."""
    return product_number * CHANNELS // PRODUCTS


def orders_for(skus: list[str], count: int, start: int) -> list[Any]:
    """Canonical orders of one line each, drawn from ``skus`` in turn."""
    from django.utils import timezone

    from connectors import base

    now = timezone.now()
    return [
        base.Order(
            external_id=f"B{start + n}",
            number=f"B{start + n}",
            placed_at=now - timedelta(seconds=start + n),
            updated_at=now,
            status_code="1",
            status_name="Pending",
            currency="EUR",
            subtotal=Decimal("9.99"),
            shipping=Decimal(0),
            tax=Decimal(0),
            discount=Decimal(0),
            total=Decimal("9.99"),
            lines=(
                base.OrderLine(
                    external_line_id="1",
                    sku=skus[(start + n) % len(skus)],
                    name="Bench product",
                    quantity=1,
                    unit_price=Decimal("9.99"),
                    line_total=Decimal("9.99"),
                ),
            ),
        )
        for n in range(count)
    ]


class InMemoryStore:
    """A connector whose order download is ``ORDERS`` orders in pages of ``PAGE``."""

    def __init__(self, skus: list[str]) -> None:
        self.pages = [orders_for(skus, min(PAGE, ORDERS - start), start) for start in range(0, ORDERS, PAGE)]

    def fetch_orders(self, checkpoint: Any) -> Iterator[Any]:
        from connectors import base

        for number, orders in enumerate(self.pages):
            yield base.OrderPage(orders=orders, checkpoint=f"page-{number + 1}")


def main() -> int:
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from channels import sync
    from channels.models import SyncJob
    from inventory import stock_queue
    from inventory.catalog import upsert_products
    from inventory.models import Listing, Product
    from orders.download import download_orders

    sent: list[tuple[str, str]] = []
    sync.send_job = lambda channel_id, job: sent.append((str(channel_id), str(job)))  # type: ignore[assignment]
    requested: list[tuple[str, str]] = []
    real_request_jobs = stock_queue.request_jobs

    def counting_request_jobs(channels: Any, job: str) -> None:
        channels = list(channels)
        requested.extend((str(channel.pk), str(job)) for channel in channels)
        real_request_jobs(channels, job)

    stock_queue.request_jobs = counting_request_jobs  # type: ignore[assignment]

    edit_jobs: list[int] = []
    edit_sent: list[int] = []
    edit_statements: list[int] = []
    edit_seconds: list[float] = []
    edit_strays = 0  # stock jobs asked of channels that do not list the SKU
    floor_seconds: list[float] = []
    with temporary_database("fanout"):
        account, channels, skus = build_account()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        target = skus[len(skus) // 2]
        listed = Listing.objects.filter(account=account, sku=target).values_list("channel_id", flat=True)
        listed_on = {str(pk) for pk in listed}

        def edit(quantity: int) -> int:
            with CaptureQueriesContext(connection) as queries:
                upsert_products(account, [{"sku": target, "on_hand": quantity}], actor=None)
            if os.environ.get("SHOW_QUERIES"):
                for query in queries.captured_queries:
                    print(query["time"], query["sql"][:300])
            return len(queries.captured_queries)

        def floor(quantity: int) -> int:
            return Product.objects.filter(account=account, sku=target).update(on_hand=quantity)

        for round_number in range(ROUNDS):
            requested.clear()
            sent.clear()
            for side in ("floor", "ours") if round_number % 2 else ("ours", "floor"):
                if side == "ours":
                    seconds, statements = timed(lambda n=500 + round_number: edit(n))
                    edit_seconds.append(seconds)
                    edit_statements.append(statements)
                else:
                    seconds, _ = timed(lambda n=600 + round_number: floor(n))
                    floor_seconds.append(seconds)
            stock = {channel for channel, job in requested if job == SyncJob.STOCK}
            edit_strays += len(stock - listed_on)
            edit_jobs.append(sum(1 for _, job in requested if job == SyncJob.STOCK))
            edit_sent.append(sum(1 for _, job in sent if job == SyncJob.STOCK))

        # A download on one channel: its orders name the SKUs it lists.
        channel = channels[0]
        sold = list(Listing.objects.filter(channel=channel).order_by("sku").values_list("sku", flat=True))
        store = InMemoryStore(sold)
        sold_skus = {line.sku for page in store.pages for order in page for line in order.lines}
        listing_sold = {
            str(pk)
            for pk in Listing.objects.filter(account=account, sku__in=sold_skus)
            .values_list("channel_id", flat=True)
            .distinct()
        }
        requested.clear()
        sent.clear()
        with CaptureQueriesContext(connection) as queries:
            seconds, result = timed(lambda: download_orders(channel, store))
        download_statements = len(queries.captured_queries)
        assert result.created == ORDERS, result
        download_jobs = sum(1 for _, job in requested if job == SyncJob.STOCK)
        download_sent = sum(1 for _, job in sent if job == SyncJob.STOCK)
        download_channels = {channel_id for channel_id, job in requested if job == SyncJob.STOCK}
        # Pages are written in batches (one transaction each), so the requests are one per channel
        # listing the batch's SKUs, per batch.
        download_batches = sum(1 for query in queries.captured_queries if query["sql"] == "COMMIT")

    pages = len(store.pages)
    report(
        f"bench.fanout — {CHANNELS} channels, {PRODUCTS:,} products, {PRODUCTS * LISTED_ON:,} listings",
        [
            (
                "stock jobs requested per edit",
                ", ".join(str(n) for n in edit_jobs) + f"  (expected {len(listed_on)})",
            ),
            ("stock jobs sent per edit", ", ".join(str(n) for n in edit_sent)),
            ("stock jobs on channels not listing it", str(edit_strays)),
            ("statements per edit (with commit claim)", ", ".join(str(n) for n in edit_statements)),
            ("ours: one SKU edit, median", f"{median(edit_seconds) * 1000:.2f} ms"),
            ("floor: one UPDATE of the product, median", f"{median(floor_seconds) * 1000:.2f} ms"),
            ("ratio edit / floor", f"{median(edit_seconds) / median(floor_seconds):.1f}"),
            (
                f"download: {ORDERS:,} orders in {pages} pages",
                f"{seconds:.2f} s, {download_statements / pages:.1f} statements per page",
            ),
            (
                "download: stock jobs requested",
                f"{download_jobs} in {download_batches} transactions "
                f"(every channel on every page would be {CHANNELS * pages})",
            ),
            ("download: stock jobs sent", str(download_sent)),
            (
                "download: channels asked",
                f"{len(download_channels)} of {CHANNELS} "
                f"(channels listing the orders' SKUs: {len(listing_sold)}, "
                f"others asked: {len(download_channels - listing_sold)})",
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
