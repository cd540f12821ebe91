"""End to end: what the store says about an order moves stock on the other channels, through real
``celery -A config worker`` and ``celery -A config beat`` processes and the test database.

An order cancelled on the sandbox store after it was downloaded stops reserving on the next
download, and the other store's stock goes up on the next push; a partial shipment confirmed on the
store keeps the order open (never moved to the processed status) and only the shipped unit leaves
the reservation. Run with X-Cart and with OpenCart stores (its bridge, a Pending order cancelled in
the admin, a history row for the partial shipment).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from channels import sync
from channels.models import SyncRun, SyncState
from inventory.availability import reserved_by_sku
from inventory.catalog import upsert_products
from orders.models import Order, Shipment, ShipmentState
from orders.shipments import record_shipment
from tests.e2e.conftest import CeleryProcesses, fast_beat_schedule
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
]

ON_HAND = 60


def _downloads(channel: Any) -> int:
    """Successful downloads so far (a row folds in the runs that changed nothing after it)."""
    runs = SyncRun.objects.filter(channel=channel, job="orders", state=SyncState.SUCCEEDED)
    return runs.aggregate(total=Sum("checks"))["total"] or 0


def _downloaded_after(channel: Any, count: int) -> bool:
    return _downloads(channel) > count


def _open_order_with(channel: Any, skus: set[str], *, units: int, exclude: set[Any]) -> Order:
    for order in Order.objects.filter(channel=channel, store_closed=False, held_unmapped_status=False):
        lines = list(order.lines.all())
        usable = order.pk not in exclude and all(line.sku in skus for line in lines)
        if usable and sum(line.quantity for line in lines) >= units:
            return order
    raise AssertionError("the sandbox seeded no suitable open order")


def _cancel_in_the_admin(store: Any, order_id: str) -> None:
    """What the store's admin does to cancel an order (X-Cart: payment status Cancelled)."""
    if store.platform == "opencart":
        store.change_status(order_id, 7, "Cancelled in the admin")
    else:
        store.cancel_order(order_id)
    _past_the_stores_second(store)


def _past_the_stores_second(store: Any) -> None:
    """OpenCart's bridge leaves changes of the current second to the next download (something may
    still change within it); a seller's next download is a minute later, this test's at once, so
    it steps past that second first (bounded: about a second)."""
    if store.platform != "opencart":
        return
    start = store.store_now()
    deadline = time.monotonic() + 3
    while store.store_now() <= start and time.monotonic() < deadline:
        time.sleep(0.05)


#: X-Cart (its partial shipments stay open natively) and OpenCart (where a shipment of 1 of 8
#: units used to set the whole order Shipped): each with its processed status.
PLATFORMS = [pytest.param("xcart", "S", id="xcart"), pytest.param("opencart", "3", id="opencart")]


@pytest.mark.parametrize(("platform", "processed"), PLATFORMS)
def test_a_cancelled_order_releases_stock_and_a_partial_shipment_keeps_the_rest(
    celery: CeleryProcesses, platform: str, processed: str
) -> None:
    user, account = make_owner("alice@example.com", "Alice's Shop")
    fast_beat_schedule(sweep_stale_runs=False)
    # Two stores selling the same catalogue: orders arrive on the first, stock is pushed to both.
    with (
        sandbox_store(platform, products=12, orders=25, seed=7) as (source, _s1),
        sandbox_store(platform, products=12, orders=0, seed=7) as (other, _s2),
    ):
        selling = channel_for_store(account, source, name="Source shop", processed_status=processed)
        channel_for_store(account, other, name="Other shop")
        celery.start_worker()
        celery.start_beat()
        celery.wait_for(
            lambda: Order.objects.filter(channel=selling).count() == source.order_count(), "orders to arrive"
        )
        # The catalogue both stores sell (the same seed): every SKU the orders hold.
        skus = {
            sku for sku in Order.objects.filter(channel=selling).values_list("lines__sku", flat=True) if sku
        }
        upsert_products(account, [{"sku": sku, "on_hand": ON_HAND} for sku in sorted(skus)], actor=user)

        def pushed_matches_reservations() -> bool:
            reserved = reserved_by_sku(account)
            return all(other.stock_of(sku) == max(0, ON_HAND - reserved.get(sku, 0)) for sku in skus)

        celery.wait_for(pushed_matches_reservations, "the other store's stock to follow the reservations")

        # 1. The store cancels an order Storelink already has.
        cancelled = _open_order_with(selling, skus, units=1, exclude=set())
        cancelled_units: dict[str, int] = {}
        for line in cancelled.lines.all():
            cancelled_units[line.sku] = cancelled_units.get(line.sku, 0) + line.quantity
        before = reserved_by_sku(account)
        stock_before = {sku: other.stock_of(sku) for sku in cancelled_units}
        _cancel_in_the_admin(source, cancelled.external_id)
        sync.sync_now(selling, ["orders"])
        # A poll that began before the cancel may finish first (polls run every 15 s while the store
        # is busy), so wait for the download that sees the cancel rather than for the next one.
        celery.wait_for(
            lambda: Order.objects.filter(pk=cancelled.pk, store_closed=True).exists(),
            "the cancelled order to arrive closed",
        )
        after = reserved_by_sku(account)
        for sku, units in cancelled_units.items():
            assert before.get(sku, 0) - after.get(sku, 0) == units
        celery.wait_for(
            lambda: all(
                other.stock_of(sku) == min(ON_HAND, stock_before[sku] + units)
                for sku, units in cancelled_units.items()
            ),
            "the other store's stock to go up by the cancelled units",
        )

        # 2. A partial shipment: one unit ships, the rest stays reserved after the next download.
        partly = _open_order_with(selling, skus, units=2, exclude={cancelled.pk})
        line = max(partly.lines.all(), key=lambda each: each.quantity)
        before = reserved_by_sku(account)
        shipment, _ = record_shipment(
            partly,
            actor=user,
            tracking_numbers=["1ZPART"],
            lines=[{"external_line_id": line.external_line_id, "quantity": 1}],
        )
        assert shipment.is_partial
        celery.wait_for(
            lambda: Shipment.objects.get(pk=shipment.pk).state == ShipmentState.CONFIRMED,
            "the partial shipment to be confirmed",
        )
        # once (OpenCart's history comment also carries Storelink's own reference for the shipment)
        assert source.tracking_numbers(partly.external_id).count("1ZPART") == 1
        assert source.order_status(partly.external_id) != processed  # not moved to the processed status
        _past_the_stores_second(source)
        runs = _downloads(selling)
        sync.sync_now(selling, ["orders"])
        celery.wait_for(lambda: _downloaded_after(selling, runs), "the download after the shipment")
        partly.refresh_from_db()
        assert partly.store_closed is False
        after = reserved_by_sku(account)
        assert before[line.sku] - after.get(line.sku, 0) == 1
        celery.wait_for(pushed_matches_reservations, "the other store's stock to keep the rest reserved")
