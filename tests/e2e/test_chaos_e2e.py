"""A short chaos run: the whole system through store faults, a killed worker and a broker restart,
and afterwards the stores and Storelink agree without anyone stepping in.

Three sandbox stores (two X-Cart, one OpenCart) selling from one product master answer 20 % of
requests with a 500, a dropped connection, an HTML page or a cut-off reply. Meanwhile orders are
placed on the stores, one is cancelled there, and a warehouse POSTs shipments through the API; one
of the two workers (started as the Procfile starts them) is SIGKILLed and started again, and the
test's own Redis is killed and started again. Then the faults stop, and within a bounded wait every
store order must be in Storelink exactly once with the store's status, every shipment confirmed on
its store exactly once (counted in the store's write log), and every listing's stock on the store
equal to the availability Storelink computes from the product master and its reservations.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client

from accounts.services import create_api_key
from channels.models import SalesChannel
from connectors.sandbox import SandboxApp, SandboxServer
from connectors.xcart import mapping as xcart_mapping
from inventory.availability import available_quantity, reserved_by_sku
from inventory.catalog import upsert_products
from inventory.models import Listing
from orders.models import Order, Shipment, ShipmentState
from tests.e2e.conftest import CeleryProcesses, fast_beat_schedule
from tests.e2e.private_redis import PrivateRedis, redis_server_binary
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
    pytest.mark.skipif(redis_server_binary() is None, reason="needs redis-server (make test installs it)"),
]

ON_HAND = 40
#: Mixed faults on every store request (control requests excepted), from a fixed seed.
FAULTS = {"error_rate": 0.2, "kinds": ["500", "timeout", "garbage", "truncated"], "timeout_seconds": 1.0}
FAULT_SEED = 11
#: The chaos phase: one step every STEP_SECONDS, the kill and the restart at fixed steps.
STEPS = 24
STEP_SECONDS = 2.5
KILL_AT, RESTART_WORKER_AT, REDIS_RESTART_AT = 6, 8, 14
#: Short leases and back-offs so recovery fits in a short test; the visibility timeout is shorter
#: than the run so a killed worker's unacknowledged tasks come back during it.
ENV = {
    "SYNC_LEASE_SECONDS": "6",
    "SHIPMENT_RETRY_BASE_SECONDS": "1",
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "20",
}
#: How long the stores and Storelink may take to agree once the faults stop. Orders are
#: downloaded every minute, so a change made during the faults may need a minute and a retry.
SETTLE_SECONDS = 180.0


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """Requested before ``celery`` so it outlives the processes (their teardown empties it)."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Shop:
    """One sandbox store, its server and the channel pointing at it."""

    def __init__(self, app: SandboxApp, server: SandboxServer, channel: SalesChannel) -> None:
        self.app, self.server, self.channel = app, server, channel

    @property
    def platform(self) -> str:
        return self.app.platform

    def faults(self, values: dict[str, Any]) -> None:
        """Through the control end point, which also re-seeds the store's fault generator."""
        response = httpx.post(f"{self.server.url}/__sandbox__/faults", json=values, timeout=10)
        response.raise_for_status()

    def orders(self) -> dict[str, dict[str, str]]:
        """Every order a download returns, as the store holds it now: id → status codes."""
        if self.platform == "xcart":
            with self.app.lock:
                rows = self.app.db.execute(
                    "SELECT o.order_id, s.code, p.code FROM orders o "
                    "JOIN status_shipping s ON s.id = o.shipping_status_id "
                    "JOIN status_payment p ON p.id = o.payment_status_id WHERE s.code != 'NF'"
                ).fetchall()
            return {str(row[0]): {"status": str(row[1]), "payment": str(row[2])} for row in rows}
        rows = self.app.query(
            f"SELECT order_id, order_status_id FROM {self.app.t('order')} WHERE order_status_id > 0"
        )
        return {str(row["order_id"]): {"status": str(row["order_status_id"])} for row in rows}

    def confirmations(self, order_id: str, tracking: str) -> int:
        """How many times the store was told about this tracking number on this order."""
        kind = "tracking" if self.platform == "xcart" else "history"
        return sum(
            1
            for write in self.app.writes()
            if write["kind"] == kind and str(write["key"]) == order_id and tracking in str(write["value"])
        )


def _order_disagreement(shop: Shop) -> str | None:
    on_store = shop.orders()
    rows = list(
        Order.objects.filter(channel=shop.channel).values_list("external_id", "status_code", "store_closed")
    )
    copies = Counter(external_id for external_id, _status, _closed in rows)
    doubled = sorted(external_id for external_id, count in copies.items() if count > 1)
    if doubled:
        return f"{shop.channel.name}: orders stored more than once: {doubled}"
    missing = sorted(set(on_store) - set(copies), key=int)
    if missing:
        return f"{shop.channel.name}: store orders not in Storelink: {missing}"
    unknown = sorted(set(copies) - set(on_store), key=int)
    if unknown:
        return f"{shop.channel.name}: orders the store does not have: {unknown}"
    for external_id, status, closed in rows:
        store = on_store[external_id]
        if status != store["status"]:
            return (
                f"{shop.channel.name}: order {external_id} is {status!r} in Storelink, "
                f"{store['status']!r} on the store"
            )
        if shop.platform == "xcart" and closed != xcart_mapping.is_closed(store["payment"], store["status"]):
            return (
                f"{shop.channel.name}: order {external_id} closed={closed} in Storelink, store statuses "
                f"{store['status']}/{store['payment']}"
            )
    return None


def _shipment_disagreement(shops: list[Shop]) -> str | None:
    by_channel = {shop.channel.pk: shop for shop in shops}
    for shipment in Shipment.objects.select_related("order").order_by("created_at"):
        shop = by_channel[shipment.order.channel_id]
        if shipment.state != ShipmentState.CONFIRMED:
            return (
                f"{shop.channel.name}: shipment {shipment.pk} of order {shipment.order.external_id} is "
                f"{shipment.state} after {shipment.attempts} attempt(s); last error: {shipment.last_error!r}"
            )
        for tracking in shipment.tracking_numbers:
            told = shop.confirmations(shipment.order.external_id, tracking)
            if told != 1:
                return (
                    f"{shop.channel.name}: tracking {tracking} of order {shipment.order.external_id} "
                    f"was written {told} times on the store"
                )
    return None


def _listing_disagreement(shops: list[Shop], account: Any) -> str | None:
    reserved = reserved_by_sku(account)
    by_channel = {shop.channel.pk: shop for shop in shops}
    listings = Listing.objects.filter(
        channel__in=[shop.channel for shop in shops], product__isnull=False, removed_at__isnull=True
    ).select_related("product")
    if not listings.exists():
        return "no listing is linked to a product yet"
    for listing in listings:
        expected = available_quantity(
            listing.product.on_hand, reserved.get(listing.sku, 0), listing.buffer, listing.max_quantity
        )
        shop = by_channel[listing.channel_id]
        on_store = shop.app.stock_of(listing.sku)
        if on_store != expected:
            return (
                f"{shop.channel.name}: {listing.sku} is {on_store} on the store, Storelink computes "
                f"{expected} (on hand {listing.product.on_hand}, reserved {reserved.get(listing.sku, 0)})"
            )
    return None


def _disagreement(shops: list[Shop], account: Any) -> str | None:
    """Why the stores and Storelink do not agree yet, in words; ``None`` when they do."""
    for shop in shops:
        reason = _order_disagreement(shop)
        if reason:
            return reason
    return _shipment_disagreement(shops) or _listing_disagreement(shops, account)


def _settle(celery: CeleryProcesses, shops: list[Shop], account: Any, what: str, timeout: float) -> float:
    """Wait until :func:`_disagreement` is ``None``; returns the seconds it took."""
    started = time.monotonic()
    reason: str | None = "not checked yet"
    while time.monotonic() - started < timeout:
        reason = _disagreement(shops, account)
        if reason is None:
            return time.monotonic() - started
        time.sleep(1.0)
    raise AssertionError(f"{what}: still disagreeing after {timeout:.0f}s: {reason}\n{celery.logs(60)}")


def _store_skus(channel: SalesChannel) -> list[str]:
    from channels.services import connector_for

    connector = connector_for(channel)
    try:
        return sorted({listing.sku for listing in connector.list_listings() if listing.sku})
    finally:
        connector.close()


def _next_order_to_ship(shops: list[Shop], shipped: set[Any]) -> Order | None:
    return (
        Order.objects.filter(channel__in=[shop.channel for shop in shops], store_closed=False)
        .exclude(pk__in=shipped)
        .exclude(shipments__isnull=False)
        .order_by("placed_at")
        .first()
    )


def test_after_a_chaos_run_the_stores_and_storelink_agree(
    private_redis: PrivateRedis, celery: CeleryProcesses
) -> None:
    # ``private_redis`` first: the processes are stopped before their broker goes away.
    celery.use_broker(private_redis.url)
    celery.env.update(ENV)
    fast_beat_schedule(sweep_stale_runs=True)
    user, account = make_owner("alice@example.com", "Alice's Shop")
    _key, plaintext = create_api_key(account, actor=user, name="Warehouse")
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    with ExitStack() as stack:
        shops: list[Shop] = []
        for platform, name, orders in (
            ("xcart", "X-Cart one", 16),
            ("xcart", "X-Cart two", 8),
            ("opencart", "OpenCart", 12),
        ):
            app, server = stack.enter_context(sandbox_store(platform, products=10, orders=orders, seed=7))
            channel = channel_for_store(account, app, name=name, price_sync=False)
            shops.append(Shop(app, server, channel))
        celery.start_production_worker("worker-1")
        celery.start_production_worker("worker-2")
        celery.start_beat()

        store_skus = {shop.channel.pk: _store_skus(shop.channel) for shop in shops}
        skus = sorted({sku for listed in store_skus.values() for sku in listed})
        upsert_products(account, [{"sku": sku, "on_hand": ON_HAND} for sku in skus], actor=user)
        _settle(celery, shops, account, "before the faults", timeout=120)

        for shop in shops:
            shop.faults({**FAULTS, "seed": FAULT_SEED})
        posted: list[str] = []
        shipped: set[Any] = set()
        placed: list[tuple[Shop, str]] = []
        cancelled = None
        for step in range(STEPS):
            shop = shops[step % len(shops)]
            if step % 2 == 0:
                placed.append((shop, shop.app.add_order(rng_seed=step)))
            if step % 3 == 1:
                order = _next_order_to_ship(shops, shipped)
                if order is not None:
                    shipped.add(order.pk)
                    response = api.post(
                        "/api/v1/shipments/",
                        {
                            "order": str(order.pk),
                            "carrier": "UPS",
                            "tracking_numbers": [f"1ZCHAOS{step:02d}"],
                        },
                        content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY=f"chaos-{step}",
                    )
                    assert response.status_code == 201, response.content
                    posted.append(response.json()["id"])
            if step == 10 and cancelled is None:
                xcart = shops[0]
                order = (
                    Order.objects.filter(channel=xcart.channel, store_closed=False)
                    .exclude(pk__in=shipped)
                    .order_by("-placed_at")
                    .first()
                )
                assert order is not None
                xcart.app.cancel_order(order.external_id)
                cancelled = order.external_id
                shipped.add(order.pk)  # never shipped: the store has cancelled it
            if step == KILL_AT:
                celery.kill("worker-1")
            if step == RESTART_WORKER_AT:
                celery.start_production_worker("worker-3")
            if step == REDIS_RESTART_AT:
                private_redis.restart()
            time.sleep(STEP_SECONDS)

        for shop in shops:
            shop.faults({"error_rate": 0.0})
        settled_in = _settle(celery, shops, account, "after the faults", timeout=SETTLE_SECONDS)
        print(f"chaos: agreed {settled_in:.0f}s after the faults stopped")

        assert len(posted) >= 6
        assert Shipment.objects.count() == len(posted)
        assert cancelled is not None
        assert Order.objects.get(channel=shops[0].channel, external_id=cancelled).store_closed
        # The listing check covered every SKU of every store, and reservations were in play.
        for shop in shops:
            linked = Listing.objects.filter(
                channel=shop.channel, product__isnull=False, removed_at__isnull=True
            )
            assert sorted(linked.values_list("sku", flat=True)) == store_skus[shop.channel.pk]
        assert any(
            stock < ON_HAND for shop in shops for stock in map(shop.app.stock_of, store_skus[shop.channel.pk])
        )
        for shop, external_id in placed:
            assert Order.objects.filter(channel=shop.channel, external_id=external_id).count() == 1
        for name in ("worker-2", "worker-3"):
            assert celery.processes[name].poll() is None, f"{name} exited\n{celery.logs()}"
        for log in celery.tmp_path.glob("worker-*.log"):
            assert "Unrecoverable error" not in log.read_text(errors="replace"), log.name
