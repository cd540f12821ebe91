"""End to end: a stock and a price change on a Product reach the sandbox stores, through real
``celery -A config worker`` and ``celery -A config beat`` processes and the test database.

Nothing is called directly: the product change commits in this process, ``request_job`` puts the
push tasks on a private broker after commit, the worker re-reads the channel, reads the store's
listings (first run), matches them by SKU and pushes; the store is then checked from its side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Role
from channels.models import ConnectionState, SalesChannel, SyncRun, SyncState
from connectors.sandbox import SandboxApp, SandboxServer, make_sandbox
from inventory import services
from inventory.models import Listing
from tests.factories import MembershipFactory
from tests.inventory.stores import SANDBOX_CASES

# The same xdist group as every test that runs Celery processes (``make test`` uses ``--dist
# loadgroup``): they run one after another, so two never share a broker database.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
]

ROOT = Path(settings.BASE_DIR)
WAIT_SECONDS = 40


def wait_for(
    condition: Callable[[], Any], what: str, logs: Callable[[], str], timeout: float = WAIT_SECONDS
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs()}")


class Celery:
    """Worker and beat processes on this test's database and a broker nobody else reads."""

    def __init__(self, tmp_path: Path, extra_env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []
        redis_url = os.environ.get("REDIS_URL", "")
        if redis_url:
            base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url.rstrip("/")
            self.broker_url = f"{base}/{8 + zlib.crc32(str(tmp_path).encode()) % 8}"
            self.transport_options: dict[str, Any] = {}
        else:
            folder = tmp_path / "var" / "broker"
            for sub in ("queue", "processed"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            self.broker_url = "filesystem://"
            self.transport_options = {
                "data_folder_in": str(folder / "queue"),
                "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"),
                "store_processed": False,
            }
        db = connection.settings_dict
        auth = f"{db.get('USER') or 'postgres'}" + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{auth}@{host}/{db['NAME']}",
            "CELERY_BROKER_URL": self.broker_url,
            "STORELINK_VAR_DIR": str(tmp_path / "var"),
            "ALLOW_PRIVATE_STORE_HOSTS": "1",
            "CONN_MAX_AGE": "0",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
            self.env["DEBUG"] = "1"  # the development keys this test process encrypted credentials with

    def start(self, *args: str) -> None:
        log = open(self.tmp_path / f"{args[0]}.log", "ab")  # noqa: SIM115  (lives as long as the process)
        self.processes.append(
            subprocess.Popen(
                [str(Path(sys.executable).with_name("celery")), "-A", "config", *args],
                cwd=self.tmp_path,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start_worker_and_beat(self) -> None:
        self.start(
            "worker",
            "--loglevel=INFO",
            "--pool=threads",
            "--concurrency=4",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            f"--hostname=inventory-e2e-{os.getpid()}@%h",
        )
        self.start(
            "beat",
            "--loglevel=INFO",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            f"--pidfile={self.tmp_path / 'beat.pid'}",
            "--max-interval=1",
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            for log in sorted(self.tmp_path.glob("*.log"))
        )


def _beat_rows() -> None:
    """The dispatcher's beat row (the transactional test database was flushed), ticking every second."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="Storelink: dispatch due sync jobs",
        defaults={"task": "channels.tasks.dispatch_due_jobs", "interval": interval, "expire_seconds": 5},
    )


def _reset_broker(app: Any) -> None:
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def stores() -> Iterator[list[tuple[str, SandboxApp]]]:
    """One seeded sandbox store per platform in the tree, over loopback."""
    with ExitStack() as stack:
        running = []
        for case in SANDBOX_CASES:
            platform, options = case.values
            app = make_sandbox(platform, **options)
            app.seed(9, 0, 1, 3)
            stack.enter_context(SandboxServer(app))
            running.append((platform, app))
        yield running


def test_stock_and_price_changes_on_a_product_reach_every_store(
    tmp_path: Path, stores: list[tuple[str, SandboxApp]], settings: Any
) -> None:
    from config.celery import app as celery_app

    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    extra_env: dict[str, str] = {}
    for _platform, store in stores:
        options = store.connector_options()
        keys = options.get("app_keys") or {}
        if options.get("api_base"):
            extra_env["THREEDCART_API_BASE"] = options["api_base"]
        if keys:
            extra_env["THREEDCART_PUBLIC_KEY"] = keys.get("threedcart_public_key") or keys.get(
                "public_key", ""
            )
            extra_env["THREEDCART_PRIVATE_KEY"] = keys.get("threedcart_private_key") or keys.get(
                "private_key", ""
            )
    for name in ("THREEDCART_API_BASE", "THREEDCART_PUBLIC_KEY", "THREEDCART_PRIVATE_KEY"):
        if name in extra_env:  # this process reads the stores too (to pick SKUs)
            setattr(settings, name, extra_env[name])
    membership = MembershipFactory(
        user__email="alice@example.com", account__name="Alice's Shop", role=Role.OWNER
    )
    account = membership.account
    channels = {}
    for platform, store in stores:
        channels[platform] = SalesChannel.objects.create(
            account=account,
            platform=platform,
            name=f"{platform} shop",
            store_url=store.connector_store_url(),
            connection_state=ConnectionState.OK,
            credentials=store.connector_credentials(),
            settings={
                **store.connector_settings(),
                "stock_sync": True,
                "price_sync": True,
                "prices_include_tax": False,
            },
        )
    _beat_rows()
    celery = Celery(tmp_path, extra_env)
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf.broker_url = celery.broker_url
    celery_app.conf.broker_transport_options = celery.transport_options
    _reset_broker(celery_app)
    try:
        celery.start_worker_and_beat()
        # Every store gets a product master entry for one of its SKUs (a variant where it has one).
        chosen: dict[str, str] = {}
        for platform, _store in stores:
            chosen[platform] = _store_skus(channels[platform])[-1]
        items = [{"sku": sku, "on_hand": 40, "price": "19.99"} for sku in chosen.values()]
        services.upsert_products(account, items, actor=membership.user)  # commits: jobs go out now

        def reached(quantity: int, price: Decimal) -> bool:
            return all(
                store.stock_of(chosen[platform]) == quantity and store.price_of(chosen[platform]) == price
                for platform, store in stores
            )

        wait_for(
            lambda: reached(40, Decimal("19.99")),
            "the first stock and price to reach the stores",
            celery.logs,
        )

        # The change under test: a warehouse corrects stock and the seller reprices.
        started = time.monotonic()
        services.upsert_products(
            account,
            [{"sku": sku, "on_hand": 17, "price": "24.50"} for sku in chosen.values()],
            actor=membership.user,
        )
        wait_for(lambda: reached(17, Decimal("24.50")), "the change to reach the stores", celery.logs)
        elapsed = time.monotonic() - started
        assert elapsed < WAIT_SECONDS

        for platform in chosen:
            listing = Listing.objects.get(channel=channels[platform], sku=chosen[platform])
            assert (listing.last_pushed_quantity, listing.last_pushed_price) == (17, Decimal("24.50"))
            runs = SyncRun.objects.filter(channel=channels[platform], job__in=["stock", "prices"])
            assert runs.filter(state=SyncState.SUCCEEDED).exists()
            assert not runs.filter(state=SyncState.FAILED).exists(), list(
                runs.values_list("error", flat=True)
            )
            # Only the changed SKU was written on the store, once per kind and change.
            writes = [w for w in dict(stores)[platform].writes() if w["kind"] in ("stock", "price")]
            assert {w["key"] for w in writes} <= {chosen[platform], *_remote_keys(listing)}, writes
    finally:
        celery.stop()
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
        _reset_broker(celery_app)


def _store_skus(channel: SalesChannel) -> list[str]:
    from channels.services import connector_for

    connector = connector_for(channel)
    try:
        return sorted(listing.sku for listing in connector.list_listings() if listing.sku)
    finally:
        connector.close()


def _remote_keys(listing: Listing) -> set[str]:
    """Stores key their write log by SKU or by their own ids; either identifies this listing."""
    return {listing.remote_id, listing.remote_variant_id, f"{listing.remote_id}:{listing.remote_variant_id}"}
