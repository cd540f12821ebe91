"""Pages: what a seller with a large account waits for, against a real server over loopback.

The account: 100 channels, 100,000 orders (with lines, a third of them shipped), 10,000 products
and 30,000 listings (300 per channel, 20 of them unmatched), 50 sync runs per channel. Built with
bulk inserts (``COPY`` for orders, lines and shipments), not one row at a time.

Ours: each page (channel list and page, orders list first / filtered / deep / search, order page,
products, listings by channel, and the API's equivalents) requested ``REQUESTS`` times over
loopback from a gunicorn started here, signed in as the seller (session cookie or API key);
p50/p95 per page. Queries per page are counted in this process with ``CaptureQueriesContext``
on the same views (the tests check they do not grow with the account). Floor, measured in the
same run, interleaved with the pages: a trivial authenticated page (the API keys settings page:
session, membership, base template, one small query) — what any signed-in page costs.
Target: p95 ≤ 150 ms on every page.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import ROOT, database_url, median, percentile, report, setup_django, temporary_database

#: The issue's figures; the environment may shrink them for the suite's smoke run.
CHANNELS = int(os.environ.get("CHANNELS", "100"))
ORDERS = int(os.environ.get("ORDERS", "100000"))
PRODUCTS = int(os.environ.get("PRODUCTS", "10000"))
LISTINGS_PER_CHANNEL = int(os.environ.get("LISTINGS_PER_CHANNEL", "300"))
RUNS_PER_CHANNEL = int(os.environ.get("RUNS_PER_CHANNEL", "50"))
REQUESTS = int(os.environ.get("REQUESTS", "20"))
TARGET_P95_MS = 150.0

STATUSES = [("1", "Pending"), ("2", "Paid"), ("3", "Shipped"), ("5", "Complete"), ("7", "Cancelled")]
FIRST_NAMES = ["Anna", "Ben", "Carla", "Dmitri", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "we", "zu", "bra", "del", "fin", "gor", "hal"]


def surnames(count: int, rng: random.Random) -> list[str]:
    """Made-up surnames (three syllables), so a search for one matches few orders."""
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize())
    return sorted(names)


def build_account(rng: random.Random) -> dict[str, Any]:
    """The large account, written in bulk; returns what the pages need (ids, names, cursors)."""
    from django.db import connection
    from django.utils import timezone

    from accounts.services import create_api_key, sign_up
    from channels.models import (
        ChannelSchedule,
        ConnectionState,
        SalesChannel,
        SyncJob,
        SyncRun,
        store_key_for,
    )
    from config.keyset import encode_cursor
    from inventory.models import Listing, Product
    from orders.download import insert_rows
    from orders.models import Order, OrderLine, Shipment, ShipmentState

    user, account = sign_up(
        email="bench@example.com", password="bench-password-9", account_name="Bench seller"
    )
    _key, api_key = create_api_key(account, actor=None, name="bench")
    now = timezone.now()
    facts = {
        "base_currency": "EUR",
        "order_statuses": [{"code": code, "name": name} for code, name in STATUSES],
        "currencies": ["EUR"],
    }
    channels = [
        SalesChannel(
            id=uuid.uuid4(),
            account=account,
            platform=("opencart", "xcart", "threedcart")[n % 3],
            name=f"Store {n:03d}",
            store_url=f"https://store{n}.example.com",
            enabled=True,
            connection_state=ConnectionState.OK,
            credentials={"api_username": "Default", "api_key": f"secret-key-{n:03d}-" + "x" * 20},
            settings={"stock_sync": True, "price_sync": n % 2 == 0},
            store_facts=facts,
            last_sync_at=now - timedelta(minutes=n % 7),
            last_success_at=now - timedelta(minutes=n % 7),
        )
        for n in range(CHANNELS)
    ]
    for channel in channels:  # what ``save`` keeps; bulk_create does not call it
        channel.store_key = store_key_for(channel.store_url)
    SalesChannel.objects.bulk_create(channels, batch_size=1000)
    ChannelSchedule.objects.bulk_create(
        [ChannelSchedule(channel_id=c.pk, account_id=account.pk) for c in channels], batch_size=1000
    )
    products = [
        Product(
            id=uuid.uuid4(),
            account=account,
            sku=f"SKU-{n:06d}",
            name=f"Product {n}",
            on_hand=rng.randint(0, 50),
            price=Decimal(rng.randint(100, 9999)) / 100,
        )
        for n in range(PRODUCTS)
    ]
    Product.objects.bulk_create(products, batch_size=2000)
    unmatched = max(1, LISTINGS_PER_CHANNEL // 15)
    listings = []
    for n, channel in enumerate(channels):
        for k, product in enumerate(
            rng.sample(products, min(len(products), LISTINGS_PER_CHANNEL - unmatched))
        ):
            listings.append(
                Listing(
                    account=account,
                    channel=channel,
                    product=product,
                    sku=product.sku,
                    name=product.name,
                    remote_id=f"{n}-{k}",
                    store_quantity=product.on_hand,
                )
            )
        listings.extend(
            Listing(
                account=account,
                channel=channel,
                sku=f"STORE-{n}-{k}",
                name="Store only",
                remote_id=f"{n}-u{k}",
            )
            for k in range(unmatched)
        )
    Listing.objects.bulk_create(listings, batch_size=5000)
    runs = [
        SyncRun(
            account=account,
            channel=channel,
            job=(SyncJob.ORDERS, SyncJob.STOCK, SyncJob.PRICES, SyncJob.SHIPMENTS)[k % 4],
            state="ok" if k % 9 else "failed",
            fetched=k,
            updated=k % 5,
            error="" if k % 9 else "The store did not answer in 30 s.",
        )
        for channel in channels
        for k in range(RUNS_PER_CHANNEL)
    ]
    SyncRun.objects.bulk_create(runs, batch_size=5000)

    people = surnames(2000, rng)
    skus = [p.sku for p in products]
    span = timedelta(days=730).total_seconds()
    chunk = 10_000
    for start in range(0, ORDERS, chunk):
        orders, lines, shipments = [], [], []
        for n in range(start, min(ORDERS, start + chunk)):
            channel = channels[n % len(channels)]
            code, name = STATUSES[rng.randrange(len(STATUSES))]
            surname = people[rng.randrange(len(people))]
            first = FIRST_NAMES[n % len(FIRST_NAMES)]
            order = Order(
                id=uuid.uuid4(),
                account=account,
                channel=channel,
                external_id=str(100000 + n),
                number=f"#{100000 + n}",
                placed_at=now - timedelta(seconds=rng.random() * span),
                status_code=code,
                status_name=name,
                currency="EUR",
                subtotal=Decimal("40.00"),
                shipping=Decimal("4.90"),
                tax=Decimal("0"),
                discount=Decimal("0"),
                total=Decimal("44.90"),
                customer_name=f"{first} {surname}",
                customer_email=f"{first.lower()}.{surname.lower()}{n % 97}@example.com",
                shipping_address={"name": f"{first} {surname}", "city": "Berlin", "country": "DE"},
                raw={"order_id": 100000 + n, "comment": "x" * 200},
                content_hash=f"{n:064d}",
            )
            orders.append(order)
            for position in range(1 + n % 3):
                lines.append(
                    OrderLine(
                        account=account,
                        order=order,
                        position=position,
                        external_line_id=f"{n}-{position}",
                        sku=skus[(n * 7 + position) % len(skus)],
                        name="Item",
                        quantity=2,
                        unit_price=Decimal("10.00"),
                        tax=Decimal("0"),
                        line_total=Decimal("20.00"),
                    )
                )
            if n % 3 == 0:
                shipments.append(
                    Shipment(
                        account=account,
                        order=order,
                        channel=channel,
                        tracking_numbers=[f"TRACK{n}"],
                        lines=[{"external_line_id": f"{n}-0", "quantity": 2}],
                        is_partial=n % 2 == 1,
                        state=ShipmentState.CONFIRMED,
                        confirmed_at=now,
                        updated_at=now,  # auto_now: COPY does not fill it
                    )
                )
        insert_rows(Order, orders)
        insert_rows(OrderLine, lines)
        insert_rows(Shipment, shipments)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does to a live database
            cursor.execute("ANALYZE")

    ordered = Order.objects.filter(account=account).order_by("-placed_at", "-id")
    deep = ordered.values_list("placed_at", "id")[max(0, (ORDERS * 3) // 4)]
    middle_channel = channels[len(channels) // 2]
    return {
        "user": user,
        "account": account,
        "api_key": api_key,
        "channel": middle_channel,
        "order": ordered.filter(channel=middle_channel).first(),
        "deep_cursor": encode_cursor(*deep),
        "surname": people[len(people) // 3],
    }


def pages(data: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(UI pages, API pages) as (name, path); the floor is the first UI page."""
    from django.urls import reverse

    channel, order = data["channel"], data["order"]
    orders = reverse("orders:list")
    ui = [
        ("floor: API keys page", reverse("api_keys")),
        ("channel list", reverse("channels:list")),
        ("channel page", reverse("channels:detail", args=[channel.pk])),
        ("orders list, first page", orders),
        ("orders list, filtered", f"{orders}?status=Paid&shipping=unshipped"),
        ("orders list, one channel", f"{orders}?channel={channel.pk}"),
        ("orders list, deep (3/4 down)", f"{orders}?after={data['deep_cursor']}"),
        ("orders list, search", f"{orders}?q={data['surname'].lower()}"),
        ("order page", reverse("orders:detail", args=[order.pk])),
        ("products", reverse("inventory:product_list")),
        ("listings by channel", reverse("inventory:unmatched")),
        ("listings of one channel", f"{reverse('inventory:unmatched')}?channel={channel.pk}"),
    ]
    api = [
        ("API channels", "/api/v1/channels/"),
        ("API channel", f"/api/v1/channels/{channel.pk}/"),
        ("API orders", "/api/v1/orders/"),
        ("API orders, filtered", f"/api/v1/orders/?channel={channel.pk}&status=2"),
        ("API order", f"/api/v1/orders/{order.pk}/"),
        ("API products", "/api/v1/products/"),
        ("API listings", "/api/v1/listings/"),
        ("API listings, unmatched", f"/api/v1/listings/?channel={channel.pk}&unmatched=true"),
    ]
    return ui, api


def count_queries(
    data: dict[str, Any], ui: list[tuple[str, str]], api: list[tuple[str, str]]
) -> dict[str, int]:
    """Statements per page, counted in this process on the same views the server runs."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    browser = Client(HTTP_HOST="localhost")
    browser.force_login(data["user"])
    machine = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Api-Key {data['api_key']}")
    counts = {}
    for client, listed in ((browser, ui), (machine, api)):
        for name, path in listed:
            client.get(path)  # warm: a key's first use is recorded, caches filled
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {path} answered {response.status_code}")
            counts[name] = len(queries.captured_queries)
    return counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(db_name: str, work_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn on loopback against the benchmark database (production settings, one worker)."""
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(db_name),
        "DEBUG": "0",
        "STORELINK_VAR_DIR": str(work_dir),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    log = (work_dir / "gunicorn.log").open("ab")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            tail = (work_dir / "gunicorn.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"gunicorn did not start:\n{tail}")
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def session_cookie(user: Any) -> str:
    """A signed-in session for ``user`` (the session row is in the benchmark database)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def main() -> int:
    own_dir = not os.environ.get("STORELINK_VAR_DIR")
    work_dir = Path(os.environ.get("STORELINK_VAR_DIR") or tempfile.mkdtemp(prefix="storelink-bench-pages-"))
    os.environ["STORELINK_VAR_DIR"] = str(work_dir)
    try:
        return measure(work_dir)
    finally:
        if own_dir:  # collected static files and the server's log: tens of MB per run
            shutil.rmtree(work_dir, ignore_errors=True)


def measure(work_dir: Path) -> int:
    setup_django()
    import httpx
    from django.core.management import call_command

    # Production serves hashed static names from a manifest: collect them as a deployment does.
    call_command("collectstatic", interactive=False, verbosity=0)
    rng = random.Random(14)
    with temporary_database("pages") as db_name:
        started = time.perf_counter()
        data = build_account(rng)
        built = time.perf_counter() - started
        ui, api = pages(data)
        queries = count_queries(data, ui, api)
        process, base = start_server(db_name, work_dir)
        try:
            headers = {name: {"Cookie": session_cookie(data["user"])} for name, _ in ui}
            headers.update({name: {"Authorization": f"Api-Key {data['api_key']}"} for name, _ in api})
            timings: dict[str, list[float]] = {name: [] for name, _ in ui + api}
            sizes: dict[str, int] = {}
            with httpx.Client(base_url=base, timeout=60) as http:
                for round_number in range(REQUESTS + 2):  # two warm-up rounds, not counted
                    # Interleaved: every page, the floor included, sees the same machine state.
                    for name, path in ui + api:
                        began = time.perf_counter()
                        response = http.get(path, headers=headers[name])
                        seconds = time.perf_counter() - began
                        if response.status_code != 200:
                            raise RuntimeError(f"{name}: {path} answered {response.status_code}")
                        sizes[name] = len(response.content)
                        if round_number >= 2:
                            timings[name].append(seconds)
        finally:
            stop_server(process)

    floor_name = ui[0][0]
    floor = median(timings[floor_name])
    rows = [
        (
            "account",
            f"{CHANNELS} channels, {ORDERS:,} orders, {PRODUCTS:,} products, "
            f"{CHANNELS * LISTINGS_PER_CHANNEL:,} listings; built in {built:.0f} s",
        ),
        ("requests per page", f"{REQUESTS} over loopback (gunicorn, 1 worker), after 2 warm-up rounds"),
    ]
    over = []
    for name, _path in ui + api:
        p50, p95 = median(timings[name]) * 1000, percentile(timings[name], 0.95) * 1000
        if p95 > TARGET_P95_MS:
            over.append(name)
        rows.append(
            (
                name,
                f"queries {queries[name]:>2}   p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   "
                f"ratio p50/floor {median(timings[name]) / floor:4.1f}   {sizes[name] / 1024:6.1f} KiB",
            )
        )
    rows.append(("pages over p95 150 ms", ", ".join(over) if over else "none"))
    report("bench.pages — a large account's pages over loopback", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
