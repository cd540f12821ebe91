"""Stock push: 10,000 listings, 1 % of the products changed → exactly those 100 items sent.

The account holds what a real seller's does: 100,000 orders, 2,000 of them open (their units
reserved), on another channel of the account; a fifth of each round's changed SKUs have open
orders, so their reservations are computed.

Ours: the stock job timed at the worker's task entry (``inventory.tasks.push_stock`` as Celery
calls it: channel, lease, SyncRun, connector, the queue of changed listings and their
availability, push of what differs in the store's batches, per-item results saved with the run's
success). The rounds start from the steady state: the first job after the listings were read has
compared all 10,000 once. Floor, measured in the same run against the same sandbox X-Cart store:
the same 100 updates sent raw with httpx in the store's batch size (50), with no database at all.
Rounds alternate which side goes first; medians are compared. Over loopback and at 20 ms per
store request.

Setup reads the store's catalogue straight from the sandbox's tables (X-Cart links variants to
products one request per product, which is a listing refresh cost, not a push cost).
"""

from __future__ import annotations

import os
import random
import sys
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bench import channel_for, median, report, setup_django, temporary_database, timed

#: The issue's figures; the environment may shrink them for the suite's smoke run.
LISTINGS = int(os.environ.get("LISTINGS", "10000"))
ORDERS = int(os.environ.get("ORDERS", "100000"))
OPEN_ORDERS = int(os.environ.get("OPEN_ORDERS", "2000"))
CHANGED = LISTINGS // 100
ROUNDS = int(os.environ.get("ROUNDS", "21"))
#: Seconds the store takes per request: loopback as it is, and a fast shop a few hops away.
LATENCIES = (0.0, 0.02)
BATCH = 50  # X-Cart's batch size (connector capabilities)
VARIANT_PATH = "xc-productvariants-productvariant"


def store_listings(app: Any) -> list[Any]:
    """Every product and variant of the sandbox X-Cart store, as ``list_listings`` would map them."""
    from connectors.base import Listing

    with app.lock:
        products = {
            row["product_id"]: row
            for row in app.db.execute("SELECT product_id, sku, name, price, amount FROM products")
        }
        variants = list(
            app.db.execute(
                "SELECT id, product_id, sku, price, default_price, amount, default_amount FROM variants"
            )
        )
    listings = [
        Listing(
            sku=row["sku"],
            remote_id=str(product_id),
            quantity=int(row["amount"]),
            price=Decimal(row["price"]),
            name=row["name"],
        )
        for product_id, row in products.items()
    ]
    for row in variants:
        product = products[row["product_id"]]
        listings.append(
            Listing(
                sku=row["sku"],
                remote_id=str(row["product_id"]),
                remote_variant_id=str(row["id"]),
                quantity=int(product["amount"] if row["default_amount"] else row["amount"]),
                price=Decimal(product["price"] if row["default_price"] else row["price"]),
                name=product["name"],
            )
        )
    return listings


def raw_push(client: Any, admin_url: str, api_key: str, updates: list[tuple[Any, int]]) -> int:
    """The floor: the same updates as bare form-encoded PUTs, 50 per request, products then variants."""
    sent = 0
    products = [(listing, value) for listing, value in updates if not listing.remote_variant_id]
    variants = [(listing, value) for listing, value in updates if listing.remote_variant_id]
    for path, group in (("product", products), (VARIANT_PATH, variants)):
        for start in range(0, len(group), BATCH):
            body: list[tuple[str, str]] = []
            for index, (listing, value) in enumerate(group[start : start + BATCH]):
                if path == "product":
                    body += [
                        (f"model[{index}][product_id]", listing.remote_id),
                        (f"model[{index}][amount]", str(value)),
                    ]
                else:
                    body += [
                        (f"model[{index}][id]", listing.remote_variant_id),
                        (f"model[{index}][amount]", str(value)),
                        (f"model[{index}][defaultAmount]", "0"),
                    ]
            response = client.put(
                admin_url,
                params={"target": "RESTAPI", "_key": api_key, "_path": path},
                data=dict(body),
            )
            response.raise_for_status()
            sent += len(response.json())
    return sent


def _measure(
    app: Any,
    server: Any,
    client: Any,
    account: Any,
    channel: Any,
    by_sku: dict[str, Any],
    reserved_skus: list[str],
    rng: Any,
    work: list[float],
) -> Any:
    """``ROUNDS`` rounds: change 1 % of the products, run our job, send the raw floor (alternating)."""
    from django.db import connection

    from channels.models import SyncJob, SyncRun, SyncState
    from inventory.catalog import upsert_products
    from inventory.models import Product
    from inventory.tasks import push_stock

    reserving = max(1, CHANGED // 5)
    free = sorted(set(by_sku) - set(reserved_skus))
    ours: list[float] = []
    floor: list[float] = []
    queries: list[int] = []
    sent_counts: list[int] = []
    for round_number in range(ROUNDS):
        chosen = rng.sample(reserved_skus, reserving) + rng.sample(free, CHANGED - reserving)
        on_hand = dict(Product.objects.filter(account=account, sku__in=chosen).values_list("sku", "on_hand"))
        upsert_products(
            account,
            [{"sku": sku, "on_hand": on_hand[sku] + 1} for sku in chosen],
            actor=None,
        )

        def run_ours() -> None:
            app.clear_writes()
            executed: list[str] = []

            def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
                executed.append(sql)  # a counter, not Django's query log: that would be timed too
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):
                seconds, _ = timed(lambda: push_stock(str(channel.pk)))
            run = SyncRun.objects.filter(channel=channel, job=SyncJob.STOCK).latest("started_at")
            assert run.state == SyncState.SUCCEEDED, run.error
            ours.append(seconds)
            queries.append(len(executed))
            sent_counts.append(len([w for w in app.writes() if w["kind"] == "stock"]))

        def run_floor(
            chosen: list[str] = chosen,
            on_hand: dict[str, int] = on_hand,
            bump: int = round_number,
        ) -> None:
            updates = [(by_sku[sku], on_hand[sku] + 1000 + bump) for sku in chosen]
            seconds, sent = timed(lambda: raw_push(client, f"{server.url}/admin.php", app.rw_key, updates))
            assert sent == CHANGED
            floor.append(seconds)

        if round_number % 2:
            run_floor()
            run_ours()
        else:
            run_ours()
            run_floor()
    return ours, floor, queries, sent_counts, list(work)


def result_work(result: Any) -> list[float]:
    return result[4]


def seed_orders(account: Any, skus: list[str]) -> dict[str, int]:
    """``ORDERS`` orders of one line each on another channel of the account, ``OPEN_ORDERS`` of
    them open (the rest closed on the store); returns the units the open ones reserve per SKU."""
    from django.utils import timezone

    from channels.models import ConnectionState, SalesChannel
    from orders.download import insert_rows
    from orders.models import Order, OrderLine

    other = SalesChannel.objects.create(
        account=account,
        platform="opencart",
        name="Other store",
        store_url="https://other.example.com",
        connection_state=ConnectionState.OK,
        enabled=False,  # only its orders matter here
        credentials={"api_username": "Default", "api_key": "x" * 32},
        settings={"processed_status": "3"},
    )
    now = timezone.now()
    step = max(1, ORDERS // max(1, OPEN_ORDERS))
    reserved: dict[str, int] = {}
    for start in range(0, ORDERS, 10_000):
        orders, lines = [], []
        for n in range(start, min(ORDERS, start + 10_000)):
            is_open = n % step == 0 and n // step < OPEN_ORDERS
            sku = skus[(n * 7919) % len(skus)]
            order = Order(
                account=account,
                channel=other,
                external_id=str(n + 1),
                number=str(n + 1),
                placed_at=now - timedelta(minutes=n),
                status_code="1" if is_open else "5",
                status_name="Pending" if is_open else "Complete",
                currency="EUR",
                subtotal=Decimal(10),
                shipping=Decimal(0),
                tax=Decimal(0),
                discount=Decimal(0),
                total=Decimal(10),
                store_closed=not is_open,
                content_hash=f"{n:064d}",
            )
            orders.append(order)
            lines.append(
                OrderLine(
                    account=account,
                    order=order,
                    external_line_id="1",
                    sku=sku,
                    name=sku,
                    quantity=1,
                    unit_price=Decimal(10),
                    tax=Decimal(0),
                    line_total=Decimal(10),
                )
            )
            if is_open:
                reserved[sku] = reserved.get(sku, 0) + 1
        insert_rows(Order, orders)
        insert_rows(OrderLine, lines)
    return reserved


def main() -> int:
    setup_django()
    import httpx
    from django.db import connection

    import channels.sync
    from accounts.models import Account
    from channels.services import connector_for
    from connectors.sandbox import SandboxServer, make_sandbox
    from inventory import tasks
    from inventory.catalog import upsert_products
    from inventory.matching import save_listings
    from inventory.models import Listing
    from inventory.push import push_stock_for_channel

    real_sync_stock = tasks.sync_stock

    def measured_sync(channel: Any, connector: Any, run: Any = None) -> Any:
        seconds, summary = timed(lambda: real_sync_stock(channel, connector, run))
        work.append(seconds)
        return summary

    tasks.sync_stock = measured_sync  # type: ignore[assignment]

    # This process runs the job itself: product changes must not also enqueue it on a broker.
    channels.sync.send_job = lambda channel_id, job: None
    rng = random.Random(2024)
    work: list[float] = []

    with temporary_database("stock_push"):
        app = make_sandbox("xcart", flavour="addon")
        app.seed(LISTINGS // 2, 0, 1, 1)  # every third product has three variants: 2 listings per product
        with SandboxServer(app) as server:
            account = Account.objects.create(name="Bench seller")
            channel = channel_for(account, app, stock_sync=True, price_sync=False, api_flavour="addon")
            listings = store_listings(app)
            upsert_products(
                account,
                [{"sku": item.sku, "on_hand": item.quantity} for item in listings],
                actor=None,
            )
            save_listings(channel, listings)
            reserved = seed_orders(account, [item.sku for item in listings])
            stock = {item.sku: item.quantity for item in listings}
            # Reserved SKUs with stock beyond their reservations: a change of on hand moves them.
            reserved_skus = sorted(sku for sku, units in reserved.items() if stock[sku] > units + 1)
            total = Listing.objects.filter(channel=channel, product__isnull=False).count()
            # The first job after the listings were read compares all of them and settles their
            # change counters (what every channel goes through once); the rounds measure the
            # steady state after it: a change to 1 % of the products.
            connector = connector_for(channel)
            try:
                first = push_stock_for_channel(channel, connector)
            finally:
                connector.close()
            assert first.considered == total, "every listing is compared once"
            # The open orders' units are reserved: the first compare sends those SKUs' new
            # availability once, the rounds start from agreement.
            assert first.sent <= len(reserved), first
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # what autovacuum does to a live database
                    cursor.execute("ANALYZE")

            # Reserved SKUs without room to move are changed in no round (an extra unit would still
            # offer 0): every round sends exactly the 1 % it changed.
            stuck = set(reserved) - set(reserved_skus)
            by_sku = {
                listing.sku: listing
                for listing in Listing.objects.filter(channel=channel)
                if listing.sku not in stuck
            }
            scenarios = []
            with httpx.Client(timeout=30) as client:
                for latency in LATENCIES:
                    app.faults.update({"latency": latency})
                    work.clear()
                    result = _measure(app, server, client, account, channel, by_sku, reserved_skus, rng, work)
                    scenarios.append((latency, result))

    for latency, result in scenarios:
        ours, floor, queries, sent_counts, _work = result
        where = "over loopback" if not latency else f"{latency * 1000:.0f} ms per store request"
        report(
            f"bench.stock_push — 1 % of {LISTINGS:,} listings changed, {ORDERS:,} orders "
            f"({OPEN_ORDERS:,} open), X-Cart sandbox, {where}",
            [
                ("listings on the channel", f"{total}"),
                (
                    "items sent per run (ours)",
                    ", ".join(str(n) for n in sent_counts) + f"  (expected {CHANGED})",
                ),
                (
                    "ours: task entry to end, median",
                    f"{median(ours) * 1000:.1f} ms  (runs: {_ms(ours)})",
                ),
                (
                    "ours: planning and sending, median",
                    f"{median(result_work(result)) * 1000:.1f} ms",
                ),
                (
                    "floor: raw httpx PUTs, median",
                    f"{median(floor) * 1000:.1f} ms  (runs: {_ms(floor)})",
                ),
                ("database queries per job", ", ".join(str(n) for n in queries)),
                (
                    "ratio whole job / floor",
                    f"{median(ours) / median(floor):.2f}  (target ≤ 1.5 at 20 ms)",
                ),
                (
                    "ratio planning and sending / floor",
                    f"{median(result_work(result)) / median(floor):.2f}  "
                    "(lease, SyncRun and the results' commit excluded)",
                ),
            ],
        )
    return 0


def _ms(values: list[float]) -> str:
    return " ".join(f"{value * 1000:.0f}" for value in values)


if __name__ == "__main__":
    sys.exit(main())
