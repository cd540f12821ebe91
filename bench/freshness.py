"""Freshness: how long from a product change (committed) to the new value on the store.

Real ``celery -A config worker`` and ``celery -A config beat`` processes run against a throw-away
database and a sandbox X-Cart store over loopback. Each of 50 changes sets a new quantity and a new
price on one product; the clock stops when the store itself reports both (its stock and price, read
from the sandbox's own tables). The p50 and p95 are reported as they are: a job's write and one
raw write to the store are different operations, so no ratio between them is printed.

The broker is Redis when ``REDIS_URL`` is set or a Redis answers on 127.0.0.1:6379 (a database
index of its own), else Celery's filesystem broker, which polls once a second (reported).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import (
    ROOT,
    channel_for,
    database_url,
    percentile,
    report,
    setup_django,
    temporary_database,
)
from config.broker import filesystem_transport_options

CHANGES = 50
PRODUCTS = 60
WAIT_SECONDS = 30.0
#: Outside the indexes the e2e tests pick (8–15) and the demo's default (0).
REDIS_DB = 6


def _broker(var_dir: Path, db: int = REDIS_DB) -> tuple[str, dict[str, Any], str]:
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        try:
            socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
            redis_url = "redis://127.0.0.1:6379/0"
        except OSError:
            redis_url = ""
    if redis_url:
        base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url.rstrip("/")
        return f"{base}/{db}", {}, "Redis"
    options = filesystem_transport_options(var_dir / "broker")
    return "filesystem://", options, "filesystem (polls every second)"


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("celery")), "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_worker_and_beat(name: str, env: dict[str, str], work_dir: Path) -> list[subprocess.Popen[bytes]]:
    """A real worker (threads, as many as a small deployment runs) and beat, logging into ``work_dir``."""
    worker = [
        "worker",
        "--loglevel=WARNING",
        "--pool=threads",
        "--concurrency=4",
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        f"--hostname=bench-{name}-{os.getpid()}@%h",
    ]
    beat = [
        "beat",
        "--loglevel=WARNING",
        "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
        f"--pidfile={work_dir / 'beat.pid'}",
    ]
    return [_start(worker, env, work_dir / "worker.log"), _start(beat, env, work_dir / "beat.log")]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait_until(condition: Any, timeout: float = WAIT_SECONDS) -> float:
    """Seconds until ``condition()`` holds, polled every 5 ms; raises after ``timeout``."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the change did not reach the store in time")
        time.sleep(0.005)
    return time.perf_counter() - started


def main() -> int:
    setup_django()
    from accounts.models import Account
    from bench.stock_push import store_listings
    from config.celery import app as celery_app
    from connectors.sandbox import SandboxServer, make_sandbox
    from inventory.catalog import upsert_products
    from inventory.matching import save_listings
    from inventory.models import Product

    work_dir = Path(tempfile.mkdtemp(prefix="storelink-bench-freshness-"))
    broker_url, transport_options, broker_name = _broker(work_dir / "var")
    latencies: list[float] = []
    with temporary_database("freshness") as db_name:
        app = make_sandbox("xcart", flavour="addon")
        app.seed(PRODUCTS, 0, 1, 5)
        with SandboxServer(app):
            account = Account.objects.create(name="Bench seller")
            channel = channel_for(account, app, stock_sync=True, price_sync=True, api_flavour="addon")
            listings = [item for item in store_listings(app) if not item.remote_variant_id]
            save_listings(channel, store_listings(app))
            celery_app.conf.broker_url = broker_url
            celery_app.conf.broker_transport_options = transport_options
            env = {
                **os.environ,
                "DATABASE_URL": database_url(db_name),
                "CELERY_BROKER_URL": broker_url,
                "STORELINK_VAR_DIR": str(work_dir / "var"),
                "ALLOW_PRIVATE_STORE_HOSTS": "1",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
            processes = start_worker_and_beat("freshness", env, work_dir)
            try:
                # The master starts equal to the store; the first change also warms the worker up.
                upsert_products(
                    account,
                    [{"sku": item.sku, "on_hand": item.quantity, "price": item.price} for item in listings],
                    actor=None,
                )
                for number in range(CHANGES + 1):
                    item = listings[number % len(listings)]
                    product = Product.objects.get(account=account, sku=item.sku)
                    quantity = product.on_hand + 7
                    price = (product.price or Decimal(0)) + Decimal("1.25")
                    upsert_products(
                        account, [{"sku": item.sku, "on_hand": quantity, "price": price}], actor=None
                    )
                    seconds = _wait_until(
                        lambda sku=item.sku, quantity=quantity, price=price: (
                            app.stock_of(sku) == quantity and app.price_of(sku) == price
                        ),
                        timeout=120 if number == 0 else WAIT_SECONDS,
                    )
                    if number:  # the first one includes the worker's start-up
                        latencies.append(seconds)
            finally:
                _stop(processes)
                celery_app.conf.broker_url = None

    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    report(
        "bench.freshness — product change → new stock and price on the store (worker + beat running)",
        [
            ("changes measured", f"{len(latencies)} (after one warm-up change)"),
            ("broker", broker_name),
            ("p50", f"{p50 * 1000:.0f} ms"),
            ("p95", f"{p95 * 1000:.0f} ms  (aim: under 5 s; commercial hubs publish 15–60 minutes)"),
            ("max", f"{max(latencies) * 1000:.0f} ms"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
