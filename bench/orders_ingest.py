"""Order ingest: 20,000 orders × 3 lines from an X-Cart store over loopback into the database.

The account is a real seller's: a product master of the store's SKUs, listed on two channels, so
every page of orders also flags unknown SKUs and counts the reservations it moves on the listings.

The store's pages are served pre-rendered from memory: the sandbox X-Cart store answers one
recording pass, and a static server then replays those exact bytes for both sides, so the figure
is Storelink's cost and not the sandbox's (which renders each page from SQLite). The connector's
clock is frozen for the recording and the runs, so they ask for the same URLs.

Ours: the whole orders job as a worker runs it (``run_channel_job``: lease, SyncRun, connector,
``download_orders`` paging through the store and bulk-upserting each page with its checkpoint).
Floor, measured in the same run against the same static server: the very same page URLs fetched
raw with httpx (and their JSON decoded), plus a ``COPY`` of the same order and line rows into bare
tables — no mapping, no hashing, no upsert. The floor runs before and after ours; the faster one
counts.

Also printed: queries per write of a batch of pages (must not depend on its size), and what a second, full
re-download of the unchanged store writes (must be 0 rows). The stock jobs the pages request go
to an in-process broker: nothing consumes them here, and a shared Redis must not collect them.

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python -m bench.orders_ingest``
(``ORDERS=2000`` for a quick look).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import report, setup_django, temporary_database, timed

ORDERS = int(os.environ.get("ORDERS", "20000"))
LINES = 3
PRODUCTS = 60
DAYS = 30


class ThreeOfEverything(random.Random):
    """The X-Cart sandbox draws 1–3 lines (and 1–3 units) per order; the benchmark wants 3 lines."""

    def randint(self, a: int, b: int) -> int:
        return b if (a, b) == (1, 3) else super().randint(a, b)


def seeded_store() -> tuple[Any, Any]:
    from connectors.sandbox import SandboxServer, make_sandbox
    from connectors.sandbox import xcart as xcart_sandbox

    app = make_sandbox("xcart")
    shim = types.SimpleNamespace(
        **{name: getattr(random, name) for name in dir(random) if not name.startswith("__")}
    )
    shim.Random = ThreeOfEverything
    real_random = xcart_sandbox.random
    xcart_sandbox.random = shim  # type: ignore[assignment]
    try:
        app.seed(PRODUCTS, 0, DAYS, 1)
        with app.transaction() as db:
            rng = ThreeOfEverything(2)
            now = int(app.now())
            for _ in range(ORDERS):
                app._insert_order(db, rng, now - rng.randint(300, DAYS * 86400 - 600), "P", "N")
    finally:
        xcart_sandbox.random = real_random
    return app, SandboxServer(app).start()


class StaticStore:
    """Replays recorded store replies (status, content type, date, body) by path and query."""

    def __init__(self, pages: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.pages = pages
        self.misses = 0
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                page = store.pages.get(self.path)
                if page is None:
                    store.misses += 1
                    page = (404, {"Content-Type": "application/json"}, b'{"error": "not recorded"}')
                status, headers, body = page
                self.send_response_only(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder:
    """An httpx transport that sends to the real store and keeps every reply for the static server."""

    KEPT_HEADERS = ("content-type", "date")

    def __init__(self) -> None:
        import httpx

        self.inner = httpx.HTTPTransport()
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def handle_request(self, request: Any) -> Any:
        import httpx

        response = self.inner.handle_request(request)
        body = response.read()
        headers = {k: v for k, v in response.headers.items() if k.lower() in self.KEPT_HEADERS}
        self.pages[request.url.raw_path.decode("ascii")] = (response.status_code, headers, body)
        response.close()
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    def close(self) -> None:
        self.inner.close()


def freeze_connector_clock() -> None:
    """The X-Cart connector's window ends at "now": frozen, every run asks for the same pages."""
    from connectors.xcart import connector as xcart_connector

    frozen = time.time()
    clock = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("__")}
    )
    clock.time = lambda: frozen
    xcart_connector.time = clock  # type: ignore[assignment]


def record_pages(channel: Any) -> dict[str, tuple[int, dict[str, str], bytes]]:
    """One pass of the first download's requests against the sandbox store, replies kept."""
    import httpx

    from channels.services import connector_for

    recorder = Recorder()
    connector = connector_for(channel, http=httpx.Client(timeout=60, transport=recorder))  # type: ignore[arg-type]
    try:
        for _page in connector.fetch_orders(None):
            pass
    finally:
        connector.close()
    return recorder.pages


def product_master(account: Any, app: Any, channels: list[Any]) -> int:
    """A product per SKU the store sells, listed on each of ``channels``; returns the SKU count."""
    from inventory.models import Listing, Product

    rows = app.db.execute(
        "SELECT product_id, sku FROM products UNION ALL SELECT product_id, sku FROM variants"
    ).fetchall()
    skus = {str(row["sku"]): str(row["product_id"]) for row in rows if row["sku"]}
    products = Product.objects.bulk_create(
        Product(account=account, sku=sku, name=f"Product {sku}", on_hand=1_000_000) for sku in skus
    )
    Listing.objects.bulk_create(
        Listing(
            account=account,
            channel=channel,
            product=product,
            sku=product.sku,
            remote_id=skus[product.sku],
            remote_variant_id=product.sku,
            name=product.name,
        )
        for channel in channels
        for product in products
    )
    return len(skus)


class QueryCounter:
    """Reads Django's query log (COPY statements included): total and writes to the order tables."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.total = 0
        connection.queries_log.clear()

    @property
    def count(self) -> int:
        return len(self.connection.queries_log)

    @property
    def writes(self) -> int:
        return sum(
            1
            for query in self.connection.queries_log
            if query["sql"].lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "COPY")
            and ('"orders_order"' in query["sql"] or '"orders_orderline"' in query["sql"])
        )


def run_ours(channel: Any, page_urls: list[str] | None = None) -> tuple[float, Any, QueryCounter, list[int]]:
    """The orders job through the sync engine; records page URLs and per-page query counts."""
    import httpx
    from django.db import connection

    from channels import services as channel_services
    from channels import sync
    from orders import download

    connection.force_debug_cursor = True
    counter = QueryCounter()
    marks: list[int] = []
    real_upsert = download.upsert_orders
    real_connector_for = channel_services.connector_for

    def upsert(channel: Any, orders: Any, **options: Any) -> Any:
        marks.append(counter.count)
        return real_upsert(channel, orders, **options)

    def record(request: httpx.Request) -> None:
        if page_urls is not None and "_path=order&" in str(request.url):
            page_urls.append(str(request.url))

    def connector_for(channel: Any, *, http: Any = None) -> Any:
        client = httpx.Client(timeout=60, event_hooks={"request": [record]})
        return real_connector_for(channel, http=client)

    download.upsert_orders = upsert
    channel_services.connector_for = connector_for
    try:
        seconds, run = timed(lambda: sync.run_channel_job(channel.pk, "orders", download.download_orders))
    finally:
        connection.force_debug_cursor = False
        download.upsert_orders = real_upsert
        channel_services.connector_for = real_connector_for
    # from one write's upsert to the next (a write is a batch of pages): the upsert, the reservations
    # it moved, its checkpoint and the run's heartbeat
    per_write = [after - before for before, after in itertools.pairwise(marks)] or [0]
    counter.total = counter.count  # the next run's counter clears the same query log
    return seconds, run, counter, per_write


def floor(page_urls: list[str], rows: tuple[list[tuple], list[tuple]]) -> float:
    """Raw GETs of the same pages (JSON decoded) + COPY of the same rows into bare tables."""
    import httpx
    from django.db import connection

    def fetch() -> int:
        decoded = 0
        with httpx.Client(timeout=60) as client:
            for url in page_urls:
                decoded += len(json.loads(client.get(url).content))
        return decoded

    fetch_seconds, _ = timed(fetch)
    order_rows, line_rows = rows
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS floor_orders, floor_lines")
        cursor.execute("CREATE TABLE floor_orders (LIKE orders_order INCLUDING DEFAULTS)")
        cursor.execute("CREATE TABLE floor_lines (LIKE orders_orderline INCLUDING DEFAULTS)")

    def copy() -> None:
        with connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy("COPY floor_orders FROM STDIN") as copy_in:
                for row in order_rows:
                    copy_in.write_row(row)
            with raw.copy("COPY floor_lines FROM STDIN") as copy_in:
                for row in line_rows:
                    copy_in.write_row(row)

    copy_seconds, _ = timed(copy)
    return fetch_seconds + copy_seconds


def stored_rows() -> tuple[list[tuple], list[tuple]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orders_order")
        orders = [tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row) for row in cursor]
        cursor.execute("SELECT * FROM orders_orderline")
        lines = [tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row) for row in cursor]
    return orders, lines


def main() -> None:
    os.environ["CELERY_BROKER_URL"] = "memory://"
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench.orders_ingest needs PostgreSQL (COPY is the floor): set DATABASE_URL.")
        return
    with temporary_database("orders_ingest"):
        from accounts.services import sign_up
        from channels.models import ChannelSchedule
        from channels.services import store_facts_to_dict, test_connection
        from orders.download import WRITE_BATCH_ORDERS, WRITE_BATCH_SECONDS

        _seed_seconds, (app, server) = timed(seeded_store)
        static: StaticStore | None = None
        try:
            from channels.models import ConnectionState, SalesChannel

            _user, account = sign_up("bench@example.com", "bench-password-123456", "Bench")
            settings = {**app.connector_settings(), "order_lookback_days": DAYS + 1}
            facts = test_connection("xcart", app.connector_store_url(), app.connector_credentials(), settings)
            channel, other = (
                SalesChannel.objects.create(
                    account=account,
                    platform="xcart",
                    name=name,
                    store_url=url,
                    connection_state=ConnectionState.OK,
                    credentials=app.connector_credentials(),
                    settings=settings,
                    store_facts=store_facts_to_dict(facts),
                )
                # the second store is never asked anything here: its listings only count changes
                for name, url in (
                    ("bench", app.connector_store_url()),
                    (
                        "bench (second store)",
                        app.connector_store_url().replace(server.url, "http://127.0.0.1:9"),
                    ),
                )
            )
            skus = product_master(account, app, [channel, other])
            freeze_connector_clock()
            static = StaticStore(record_pages(channel))
            channel.store_url = app.connector_store_url().replace(server.url, static.url)
            channel.save(update_fields=["store_url"])
            page_urls: list[str] = []
            ours_seconds, run, counter, per_write = run_ours(channel, page_urls)
            rows = stored_rows()
            floor_first = floor(page_urls, rows)
            ChannelSchedule.objects.filter(pk=channel.pk).update(orders_checkpoint=None)
            again_seconds, again, again_counter, _ = run_ours(channel)
            floor_second = floor(page_urls, rows)
            best_floor = min(floor_first, floor_second)
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS floor_orders, floor_lines")
            report(
                "orders_ingest",
                [
                    (
                        "orders × lines",
                        f"{len(rows[0])} orders, {len(rows[1])} lines ({ORDERS} seeded × {LINES})",
                    ),
                    (
                        "account",
                        f"product master of {skus} SKUs, listed on 2 channels; "
                        f"store pages replayed from memory ({len(static.pages)} recorded, "
                        f"{static.misses} not found)",
                    ),
                    ("run", f"{run.state}: fetched {run.fetched}, created {run.created}"),
                    ("ours", f"{ours_seconds:.2f} s ({len(rows[0]) / ours_seconds:.0f} orders/s)"),
                    (
                        "floor (raw GET + COPY)",
                        f"{best_floor:.2f} s (runs: {floor_first:.2f} s, {floor_second:.2f} s)",
                    ),
                    ("ratio", f"{ours_seconds / best_floor:.2f} (must be ≤ 2.0, aim 1.5)"),
                    (
                        "pages",
                        f"{len(page_urls)}, written in {len(per_write) + 1} batches of up to "
                        f"{WRITE_BATCH_ORDERS} orders or {WRITE_BATCH_SECONDS:g} s",
                    ),
                    (
                        "queries per write",
                        f"min {min(per_write)}, max {max(per_write)} "
                        f"(constant: {min(per_write) == max(per_write)}); "
                        f"{counter.total / max(1, len(page_urls)):.1f} per page, the whole job included",
                    ),
                    (
                        "second run (unchanged store)",
                        f"{again_seconds:.2f} s, created {again.created}, updated {again.updated}, "
                        f"order/line writes {again_counter.writes}",
                    ),
                ],
            )
        finally:
            if static is not None:
                static.stop()
            server.stop()


if __name__ == "__main__":
    main()
