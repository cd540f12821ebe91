"""Cross-channel freshness: how long a sale on one store leaves the other stores offering stock
that is gone, and what polling costs the stores while nothing happens.

Real ``celery -A config worker`` and ``celery -A config beat`` processes run against a throw-away
database with the beat schedule and order polling at their defaults, and three sandbox X-Cart
stores answering every request ~50 ms late (``LATENCY``), each with ``ORDERS`` open orders. One
product master sells the same SKUs on all three. First the stores are left alone for
``IDLE_SECONDS``: the store requests they receive per channel-minute are counted (the quick
"anything new?" probes), then one full download per channel is forced and counted too, and the
figure a seller's store sees is the probes plus one full download per order interval (5 minutes by
default). Then ``SALES`` sales, each one unit of a SKU not sold before, are placed on a store
picked at random, at random intervals (``GAP_MIN``–``GAP_MAX`` seconds); each clock stops when both
other stores, read from their own tables, offer one unit less.

The figures are reported against their targets (p95 of 90 s or less, 4 store requests or fewer per
channel-minute while idle), next to the store time of one probe at this latency, measured in the
same run. The broker is Redis when ``REDIS_URL`` is set or a Redis answers on 127.0.0.1:6379, else
Celery's filesystem broker; its Redis database is the one ``REDIS_URL`` names, else 5.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import channel_for, database_url, median, percentile, report, setup_django, temporary_database

STORES = int(os.environ.get("STORES", "3"))
SALES = int(os.environ.get("SALES", "12"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "120"))
GAP_MIN = float(os.environ.get("GAP_MIN", "3"))
GAP_MAX = float(os.environ.get("GAP_MAX", "30"))
LATENCY = float(os.environ.get("LATENCY", "0.05"))
#: A sale not on the other stores after this long counts as lost (reported, never hidden).
SALE_TIMEOUT = float(os.environ.get("SALE_TIMEOUT", "240"))
#: Open orders each store has before the run: a full download re-reads some of them in turn.
ORDERS = int(os.environ.get("ORDERS", "10"))
ON_HAND = 50
#: The Redis database when ``REDIS_URL`` names none: outside the indexes the e2e tests pick (8–15),
#: bench.freshness's (6) and the demo's (0). One named in ``REDIS_URL`` is used as it is, so runs
#: started with different ``REDIS_URL`` databases never take each other's jobs.
REDIS_DB = 5


def _redis_db() -> int:
    tail = os.environ.get("REDIS_URL", "").rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() and os.environ["REDIS_URL"].count("/") > 2 else REDIS_DB


def _sellable_skus(app: Any) -> list[str]:
    """Products without variants that no seeded order holds (so nothing reserves them before the
    sales), the same on every store seeded alike."""
    rows = app.db.execute(
        "SELECT sku FROM products WHERE product_id NOT IN (SELECT product_id FROM variants) "
        "AND sku NOT IN (SELECT sku FROM order_items) ORDER BY product_id"
    ).fetchall()
    return [row[0] for row in rows]


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _requests(apps: list[Any]) -> tuple[int, int]:
    return sum(app.request_count for app in apps), sum(app.probe_count for app in apps)


def main() -> int:
    setup_django()
    from django.utils import timezone

    from accounts.models import Account
    from bench.freshness import _broker, _stop, start_worker_and_beat
    from channels import sync
    from channels.models import ChannelSchedule
    from config.celery import app as celery_app
    from connectors.sandbox import SandboxServer, make_sandbox
    from inventory.catalog import upsert_products

    rng = random.Random(int(os.environ.get("SEED", "11")))
    work_dir = Path(tempfile.mkdtemp(prefix="storelink-bench-cross-channel-"))
    broker_url, transport_options, broker_name = _broker(work_dir / "var", _redis_db())
    latencies: list[float] = []
    lost = 0
    with temporary_database("cross_channel") as db_name:
        apps = [make_sandbox("xcart", flavour="addon") for _ in range(STORES)]
        skus: list[str] = []
        for app in apps:
            app.seed(max(60, SALES * 4), ORDERS, 1, 5)
            skus = _sellable_skus(app)
        servers = [SandboxServer(app).start() for app in apps]
        try:
            account = Account.objects.create(name="Bench seller")
            channels = [
                channel_for(
                    account,
                    app,
                    name=f"Store {number + 1}",
                    stock_sync=True,
                    price_sync=False,
                    api_flavour="auto",
                )
                for number, app in enumerate(apps)
            ]
            celery_app.conf.broker_url = broker_url
            celery_app.conf.broker_transport_options = transport_options
            env = {
                **os.environ,
                "DATABASE_URL": database_url(db_name),
                "CELERY_BROKER_URL": broker_url,
                "STORELINK_VAR_DIR": str(work_dir / "var"),
                "ALLOW_PRIVATE_STORE_HOSTS": "1",
                "LOG_LEVEL": "WARNING",
            }
            processes = start_worker_and_beat("cross-channel", env, work_dir)
            try:
                sold = skus[: min(len(skus), SALES)]
                upsert_products(account, [{"sku": sku, "on_hand": ON_HAND} for sku in sold], actor=None)
                _wait(
                    lambda: all(app.stock_of(sku) == ON_HAND for app in apps for sku in sold),
                    240,
                    "the product master to reach every store",
                )
                _wait(
                    lambda: (
                        ChannelSchedule.objects.filter(
                            channel__in=channels, orders_downloaded_at__isnull=False
                        ).count()
                        == len(channels)
                    ),
                    120,
                    "the first order download of every store",
                )
                for app in apps:
                    app.faults.update({"latency": LATENCY})
                time.sleep(float(os.environ.get("SETTLE_SECONDS", "15")))  # queued jobs finish first

                # -- idle: probes only, then one full download per channel -----------------------
                requests, probes = _requests(apps)
                started = time.monotonic()
                time.sleep(IDLE_SECONDS)
                idle_minutes = (time.monotonic() - started) / 60
                after_requests, after_probes = _requests(apps)
                idle_requests, idle_probes = after_requests - requests, after_probes - probes
                per_channel_minute = idle_requests / len(apps) / idle_minutes
                probe_share = idle_probes / idle_requests if idle_requests else 0.0

                before_full, _ = _requests(apps)
                long_ago = timezone.now() - timedelta(hours=1)
                ChannelSchedule.objects.filter(channel__in=channels).update(
                    orders_downloaded_at=long_ago, orders_due_at=timezone.now()
                )
                _wait(
                    lambda: (
                        ChannelSchedule.objects.filter(
                            channel__in=channels, orders_downloaded_at__gt=long_ago
                        ).count()
                        == len(channels)
                    ),
                    60,
                    "the forced full downloads",
                )
                full_download = (_requests(apps)[0] - before_full) / len(apps)
                interval_minutes = sync.order_interval(channels[0]).total_seconds() / 60
                amortised = per_channel_minute + full_download / interval_minutes

                # -- sales ----------------------------------------------------------------------
                pending: list[tuple[float, str, list[Any]]] = []
                next_sale = time.monotonic() + rng.uniform(GAP_MIN, GAP_MAX)
                remaining = list(sold)
                while remaining or pending:
                    now = time.monotonic()
                    if remaining and now >= next_sale:
                        sku = remaining.pop(0)
                        seller = rng.randrange(len(apps))
                        apps[seller].add_order(lines=[(sku, 1)])
                        others = [app for index, app in enumerate(apps) if index != seller]
                        pending.append((time.monotonic(), sku, others))
                        next_sale = time.monotonic() + rng.uniform(GAP_MIN, GAP_MAX)
                    for entry in list(pending):
                        placed, sku, others = entry
                        if all(app.stock_of(sku) == ON_HAND - 1 for app in others):
                            latencies.append(time.monotonic() - placed)
                            pending.remove(entry)
                        elif time.monotonic() - placed > SALE_TIMEOUT:
                            lost += 1
                            pending.remove(entry)
                    time.sleep(0.05)

                # -- floor: one probe's worth of store time at this latency ----------------------
                from channels.services import connector_for

                floor: list[float] = []
                connector = connector_for(channels[0])
                try:
                    checkpoint = ChannelSchedule.objects.get(pk=channels[0].pk).orders_checkpoint or ""
                    for _ in range(5):
                        began = time.perf_counter()
                        connector.orders_changed_since(checkpoint)
                        floor.append(time.perf_counter() - began)
                finally:
                    connector.close()
            finally:
                _stop(processes)
                celery_app.conf.broker_url = None
        finally:
            for server in servers:
                server.stop()

    if not latencies:
        print("no sale reached the other stores", file=sys.stderr)
        return 1
    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    report(
        "bench.cross_channel — a sale on one store → the other stores' new stock (worker + beat, "
        "default polling)",
        [
            ("stores", f"{len(apps)} sandbox X-Cart stores, {LATENCY * 1000:.0f} ms per request"),
            ("broker", broker_name),
            ("sales measured", f"{len(latencies)} (lost: {lost})"),
            ("p50", f"{p50:.1f} s"),
            ("p95", f"{p95:.1f} s  (target: 90 s or less)"),
            ("max", f"{max(latencies):.1f} s"),
            ("probes the stores answered over the whole run", f"{sum(app.probe_count for app in apps)}"),
            ("idle: store requests per channel-minute, probes", f"{per_channel_minute:.2f}"),
            ("idle: share of them that were probes", f"{probe_share * 100:.0f} %"),
            ("idle: store requests of one full download", f"{full_download:.1f}"),
            (
                "idle: store requests per channel-minute, with one full download per "
                f"{interval_minutes:g} min",
                f"{amortised:.2f}  (target: 4 or fewer)",
            ),
            ("store time of one probe at this latency, median", f"{median(floor) * 1000:.0f} ms"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
