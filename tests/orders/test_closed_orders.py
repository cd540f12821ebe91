"""Orders the store has closed (cancelled, refunded, shipped ...) stop reserving the moment they are
downloaded, whichever way the connector says so, and a later change reopens them just as fast."""

from __future__ import annotations

import importlib
from dataclasses import replace
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from channels import sync
from channels.models import ChannelSchedule, SyncState
from connectors import base
from inventory.availability import reserved_by_sku
from inventory.models import Product
from orders.download import (
    closed_status_codes,
    download_orders,
    is_store_closed,
    totals_mismatch,
    upsert_orders,
)
from orders.models import Order
from orders.shipments import confirm_pending_shipments, record_shipment
from tests.factories import OPENCART_FACTS, SalesChannelFactory
from tests.orders.factories import channel_for_store, make_order, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


#: The store's status list as a connection test reports it, Canceled included.
FACTS = {
    **OPENCART_FACTS,
    "order_statuses": [*OPENCART_FACTS["order_statuses"], {"code": "7", "name": "Canceled"}],
}


@pytest.fixture
def alice():
    return make_owner("alice@example.com", "Alice's Shop")[1]


def _order(
    external_id: str, status: str, *, closed: bool = False, sku: str = "MUG", qty: int = 3
) -> base.Order:
    return base.Order(
        external_id=external_id,
        number=external_id,
        placed_at=timezone.now(),
        updated_at=timezone.now(),
        status_code=status,
        status_name=f"Status {status}",
        currency="EUR",
        subtotal=Decimal(qty),
        shipping=Decimal(0),
        tax=Decimal(0),
        discount=Decimal(0),
        total=Decimal(qty),
        lines=(
            base.OrderLine(
                external_line_id="1",
                sku=sku,
                name=sku,
                quantity=qty,
                unit_price=Decimal(1),
                line_total=Decimal(qty),
            ),
        ),
        closed=closed,
    )


def test_the_stores_verdict_and_the_platforms_closed_statuses_both_close_an_order(alice):
    channel = SalesChannelFactory(
        account=alice, platform="opencart", settings={"processed_status": "3"}, store_facts=FACTS
    )
    Product.objects.create(account=alice, sku="MUG", on_hand=20)
    with_verdict = _order("A1", "2", closed=True)  # the store's own list marks "2" as closing here
    by_platform_code = _order("A2", "7")  # OpenCart's Canceled, no verdict from the connector
    still_open = _order("A3", "1")
    upsert_orders(channel, [with_verdict, by_platform_code, still_open])

    closed = dict(Order.objects.values_list("external_id", "store_closed"))
    assert closed == {"A1": True, "A2": True, "A3": False}
    assert reserved_by_sku(alice) == {"MUG": 3}


def test_a_later_change_reopens_or_closes_a_known_order_whatever_its_status(alice):
    # The seller imports only "1" (Pending): later changes of a known order to any status still land.
    channel = SalesChannelFactory(
        account=alice,
        platform="opencart",
        settings={"import_statuses": ["1"], "processed_status": "3"},
        store_facts=FACTS,
    )
    Product.objects.create(account=alice, sku="MUG", on_hand=20)
    upsert_orders(channel, [_order("A1", "1")])
    assert reserved_by_sku(alice) == {"MUG": 3}

    result = upsert_orders(channel, [_order("A1", "7")])  # cancelled on the store
    assert result.updated == 1
    order = Order.objects.get(external_id="A1")
    assert (order.status_code, order.store_closed) == ("7", True)
    assert reserved_by_sku(alice) == {}

    upsert_orders(channel, [_order("A1", "2")])  # the seller reopened it: it reserves again
    assert Order.objects.get(external_id="A1").store_closed is False
    assert reserved_by_sku(alice) == {"MUG": 3}


def test_only_the_closed_verdict_changing_is_still_written(alice):
    """A store can close an order without changing the status code we keep (X-Cart: the payment
    status moved to Declined, the shipping status did not): the verdict alone is a change."""
    channel = SalesChannelFactory(account=alice, platform="xcart", settings={"processed_status": "S"})
    upsert_orders(channel, [_order("X1", "N")])
    result = upsert_orders(channel, [_order("X1", "N", closed=True)])
    assert result.updated == 1
    assert Order.objects.get(external_id="X1").store_closed is True


def test_an_unmapped_status_still_holds_and_reserves(alice):
    channel = SalesChannelFactory(account=alice, platform="opencart")
    Product.objects.create(account=alice, sku="MUG", on_hand=20)
    result = upsert_orders(channel, [_order("A1", "99")])
    assert result.held_statuses  # the run tells the seller
    order = Order.objects.get(external_id="A1")
    assert order.held_unmapped_status is True
    assert order.store_closed is False
    assert reserved_by_sku(alice) == {"MUG": 3}


def test_a_cancellation_on_the_sandbox_store_is_downloaded_as_closed(alice):
    with sandbox_store("xcart", orders=10) as (app, _server):
        channel = channel_for_store(alice, app)
        sync.run_channel_job(channel.pk, "orders", download_orders)
        order = Order.objects.filter(channel=channel, store_closed=False).order_by("placed_at").last()
        with app.lock:
            cancelled = app.db.execute("SELECT id FROM status_shipping WHERE code = 'WND'").fetchone()[0]
            app.db.execute(
                "UPDATE orders SET shipping_status_id = ? WHERE order_id = ?",
                (cancelled, int(order.external_id)),
            )
        ChannelSchedule.objects.filter(pk=channel.pk).update(orders_checkpoint=None)
        run = sync.run_channel_job(channel.pk, "orders", download_orders)
        assert run.state == SyncState.SUCCEEDED, run.error
        order.refresh_from_db()
        assert order.status_code == "WND"
        assert order.store_closed is True


def test_the_connectors_fallback_list_covers_every_platform():
    from connectors.registry import CONNECTORS

    for platform, cls in CONNECTORS.items():
        assert cls.closed_status_codes, platform
        assert closed_status_codes(platform) == cls.closed_status_codes
    assert closed_status_codes("no-such-platform") == frozenset()


def test_existing_orders_are_filled_from_their_status_and_platform(alice):
    opencart = SalesChannelFactory(account=alice, platform="opencart")
    xcart = SalesChannelFactory(account=alice, platform="xcart")
    rows = {
        "oc-cancelled": make_order(opencart, "oc-cancelled", status_code="7"),
        "oc-pending": make_order(opencart, "oc-pending", status_code="1"),
        "xc-delivered": make_order(xcart, "xc-delivered", status_code="D"),
        "xc-new": make_order(xcart, "xc-new", status_code="N"),
    }
    Order.objects.update(store_closed=False)  # as the rows were before the field existed
    migration = importlib.import_module("orders.migrations.0004_store_closed")
    migration.fill_store_closed(django_apps, None)
    closed = {key: Order.objects.get(pk=row.pk).store_closed for key, row in rows.items()}
    assert closed == {"oc-cancelled": True, "oc-pending": False, "xc-delivered": True, "xc-new": False}


def test_verdict_helper_matches_the_download():
    order = _order("A1", "5")
    assert is_store_closed("opencart", order) is True
    assert is_store_closed("xcart", order) is False
    assert is_store_closed("xcart", replace(order, closed=True)) is True


def _lines_order(currency: str, line_totals: list[str], total: str) -> base.Order:
    lines = tuple(
        base.OrderLine(
            external_line_id=str(index),
            sku=f"S{index}",
            name="x",
            quantity=1,
            unit_price=Decimal(amount),
            line_total=Decimal(amount),
        )
        for index, amount in enumerate(line_totals)
    )
    amounts = sum((Decimal(a) for a in line_totals), Decimal(0))
    return base.Order(
        external_id="T1",
        number="T1",
        placed_at=timezone.now(),
        updated_at=timezone.now(),
        status_code="1",
        status_name="Pending",
        currency=currency,
        subtotal=amounts,
        shipping=Decimal(0),
        tax=Decimal(0),
        discount=Decimal(0),
        total=Decimal(total),
        lines=lines,
    )


def test_per_line_rounding_in_the_stores_currency_is_not_a_mismatch():
    # Two EUR lines each rounded by the store: the total can be one cent off their sum.
    assert totals_mismatch(_lines_order("EUR", ["10.00", "5.00"], "15.01")) is False
    assert totals_mismatch(_lines_order("EUR", ["10.00", "5.00"], "14.99")) is False
    assert totals_mismatch(_lines_order("EUR", ["10.00", "5.00"], "15.00")) is False


def test_opencart_rounding_every_total_row_in_the_paid_currency_is_not_a_mismatch():
    """OpenCart converts each line and each total row (shipping, tax, total) from its default
    currency and rounds each: a 268.74 + 5.00 + 53.748 = 327.488 USD order at 0.7846 reads
    210.85 + 3.92 + 42.17 = 256.94 EUR against a total of 256.95."""
    order = replace(_lines_order("EUR", ["210.85"], "256.95"), shipping=Decimal("3.92"), tax=Decimal("42.17"))
    assert totals_mismatch(order) is False
    # two lines, shipping and tax: up to two cents is rounding, three is not
    two = replace(
        _lines_order("EUR", ["16.66", "39.65"], "71.51"), shipping=Decimal("3.92"), tax=Decimal("11.26")
    )
    assert totals_mismatch(two) is False
    assert totals_mismatch(replace(two, total=Decimal("71.52"))) is True


def test_a_real_mismatch_is_still_flagged():
    assert totals_mismatch(_lines_order("EUR", ["10.00", "5.00"], "15.02")) is True
    assert totals_mismatch(_lines_order("EUR", ["10.00"], "10.01")) is True  # one line: no room
    assert totals_mismatch(_lines_order("EUR", ["10.00", "5.00"], "16.00")) is True
    # The tolerance follows the currency's minor unit: a yen has none, so one yen off on two lines is fine
    # and two are not.
    assert totals_mismatch(_lines_order("JPY", ["1000", "500"], "1501")) is False
    assert totals_mismatch(_lines_order("JPY", ["1000", "500"], "1502")) is True


def test_a_held_3dcart_order_reserves_and_an_abandoned_checkout_does_not(alice):
    """3DCart's status 6 is Hold (still to ship); 7 is Not Completed (an abandoned checkout)."""
    channel = SalesChannelFactory(account=alice, platform="threedcart")
    held = make_order(channel, "held", status_code="6")
    abandoned = make_order(channel, "abandoned", status_code="7")
    Order.objects.filter(pk=held.pk).update(store_closed=True)  # as migration 0004 left it
    migration = importlib.import_module("orders.migrations.0006_threedcart_hold_is_open")
    migration.hold_is_open(django_apps, None)
    assert not Order.objects.get(pk=held.pk).store_closed
    assert Order.objects.get(pk=abandoned.pk).store_closed
    assert "6" not in closed_status_codes("threedcart")
    assert "7" in closed_status_codes("threedcart")


def test_a_retry_whose_own_lost_write_shipped_the_order_is_confirmed_not_refused(alice, settings):
    """The first attempt reached the store but its reply was lost; a download then saw the order
    Shipped (closed) before the retry. The retry must recognise its own write, not call it closed."""
    settings.SHIPMENT_RETRY_BASE_SECONDS = 0.0
    with sandbox_store("xcart", orders=10) as (app, _server):
        channel = channel_for_store(alice, app, processed_status="S")
        sync.run_channel_job(channel.pk, "orders", download_orders)
        order = Order.objects.filter(channel=channel, store_closed=False).order_by("placed_at").first()
        user = alice.memberships.first().user
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["1ZLOST"])
        app.faults.update({"drop_reply_after_write": 1})
        sync.run_channel_job(channel.pk, "shipments", confirm_pending_shipments)
        shipment.refresh_from_db()
        assert shipment.state == "pending"  # the reply was lost: it will be tried again
        assert app.order_status(order.external_id) == "S"  # ... but the store took the write
        Order.objects.filter(pk=order.pk).update(store_closed=True)  # what the next download says

        sync.run_channel_job(channel.pk, "shipments", confirm_pending_shipments)
        shipment.refresh_from_db()
        assert shipment.state == "confirmed", shipment.last_error
        assert app.tracking_numbers(order.external_id) == ["1ZLOST"]
