"""Shipments follow what the store says: a partial shipment stays partial (and may move the order to
the seller's "partially shipped" status), and an order the store has closed is never shipped."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from django.urls import reverse

from channels import services as channel_services
from channels import sync
from channels.models import ChannelSchedule, SyncState
from channels.services import ChannelError, connector_for
from connectors.errors import OrderClosedError
from connectors.xcart.connector import XCartConnector
from inventory.availability import reserved_by_sku
from inventory.models import Product
from orders.download import download_orders, upsert_orders
from orders.models import Order, Shipment, ShipmentState
from orders.shipments import ShipmentError, confirm_pending_shipments, record_shipment, retry_shipment
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return make_owner("alice@example.com", "Alice's Shop")


def download(channel):
    run = sync.run_channel_job(channel.pk, "orders", download_orders)
    assert run.state == SyncState.SUCCEEDED, run.error
    return run


def confirm(channel):
    return sync.run_channel_job(channel.pk, "shipments", confirm_pending_shipments)


def multi_unit_order(channel) -> Order:
    for order in Order.objects.filter(channel=channel, store_closed=False).prefetch_related("lines"):
        if sum(line.quantity for line in order.lines.all()) >= 2:
            return order
    raise AssertionError("the sandbox seeded no order with two units")


@pytest.fixture
def sent_requests(monkeypatch):
    """Every ShipmentRequest the X-Cart connector is asked to confirm (then really confirmed)."""
    requests = []
    original = XCartConnector.confirm_shipment

    def spy(self, request):
        requests.append(request)
        return original(self, request)

    monkeypatch.setattr(XCartConnector, "confirm_shipment", spy)
    return requests


def _with_products(account, order: Order) -> None:
    Product.objects.bulk_create(
        [Product(account=account, sku=sku, on_hand=50) for sku in {line.sku for line in order.lines.all()}],
        ignore_conflicts=True,
    )


# --------------------------------------------------------------------------------------------------
# Partial shipments
# --------------------------------------------------------------------------------------------------


def test_a_partial_shipment_asks_for_the_partial_status_and_the_last_one_for_the_processed(
    alice, sent_requests
):
    user, account = alice
    with sandbox_store("xcart", orders=30) as (app, _server):
        channel = channel_for_store(account, app, processed_status="S", partial_status="P")
        download(channel)
        order = multi_unit_order(channel)
        first_line = order.lines.first()
        record_shipment(
            order,
            actor=user,
            tracking_numbers=["PART-1"],
            lines=[{"external_line_id": first_line.external_line_id, "quantity": 1}],
        )
        confirm(channel)
        record_shipment(order, actor=user, tracking_numbers=["REST-1"])  # everything left
        confirm(channel)

    partial, last = sent_requests
    assert (partial.is_partial, partial.partial_status, partial.processed_status) == (True, "P", "S")
    assert (last.is_partial, last.partial_status, last.processed_status) == (False, "", "S")
    assert set(Shipment.objects.filter(order=order).values_list("state", flat=True)) == {
        ShipmentState.CONFIRMED
    }


def test_without_a_partial_status_the_request_leaves_the_status(alice, sent_requests):
    user, account = alice
    with sandbox_store("xcart", orders=30) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = multi_unit_order(channel)
        line = order.lines.first()
        record_shipment(
            order,
            actor=user,
            tracking_numbers=["P-1"],
            lines=[{"external_line_id": line.external_line_id, "quantity": 1}],
        )
        confirm(channel)
    assert [(r.is_partial, r.partial_status) for r in sent_requests] == [(True, "")]


def test_the_partial_status_must_keep_the_order_open(alice):
    _user, account = alice
    with sandbox_store("xcart", orders=0, products=0) as (app, _server):
        channel = channel_for_store(account, app)
        facts = channel.store_facts
        for closing in ("S", "D", "WND"):  # the processed status, and statuses that end an order
            with pytest.raises(ChannelError) as caught:
                channel_services.clean_settings(
                    "xcart", {**channel.settings, "processed_status": "S", "partial_status": closing}, facts
                )
            assert "partial_status" in caught.value.message_dict
            assert "reserving stock" in caught.value.message_dict["partial_status"][0]
        with pytest.raises(ChannelError) as caught:
            channel_services.clean_settings("xcart", {**channel.settings, "partial_status": "ZZ"}, facts)
        assert "not one of your store's order statuses" in caught.value.message_dict["partial_status"][0]
        with pytest.raises(
            ChannelError
        ) as caught:  # a payment status: X-Cart's partial status is a shipping one
            channel_services.clean_settings("xcart", {**channel.settings, "partial_status": "PP"}, facts)
        assert "partial_status" in caught.value.message_dict
        cleaned = channel_services.clean_settings(
            "xcart", {**channel.settings, "processed_status": "S", "partial_status": "P"}, facts
        )
        assert cleaned["partial_status"] == "P"
        assert not channel_services.clean_settings("xcart", dict(channel.settings), facts).get(
            "partial_status"
        )


def test_every_platform_offers_the_partial_status_setting():
    from connectors.registry import CONNECTORS

    for platform, cls in CONNECTORS.items():
        spec = {field.name: field for field in cls.settings_fields}.get("partial_status")
        assert spec is not None, platform
        assert spec.choices_from == "order_statuses"
        assert not spec.required


def test_an_order_at_the_partial_status_is_not_held(alice):
    _user, account = alice
    with sandbox_store("xcart", orders=6) as (app, _server):
        channel = channel_for_store(account, app, partial_status="PS")
        # the store did not report "PS" when connected; the seller chose it, so it is known
        connector = connector_for(channel)
        orders = [order for page in connector.fetch_orders(None) for order in page.orders]
        connector.close()
        result = upsert_orders(channel, [replace(orders[0], status_code="PS")])
        assert not result.held_statuses
        assert Order.objects.get(external_id=orders[0].external_id).held_unmapped_status is False


def test_the_order_page_shows_per_line_what_is_shipped_and_left(alice, client, settings):
    settings.ROOT_URLCONF = "tests.orders.urls"
    user, account = alice
    with sandbox_store("xcart", orders=30) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = multi_unit_order(channel)
        lines = list(order.lines.all())
        first = lines[0]
        record_shipment(
            order,
            actor=user,
            tracking_numbers=["P-1"],
            lines=[{"external_line_id": first.external_line_id, "quantity": 1}],
        )
    client.force_login(user)
    page = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    cells = r'<td class="num">(\d+)</td>\s*<td class="num line-shipped">(\d+)</td>\s*'
    rows = re.findall(cells + r'<td class="num line-left">(\d+)</td>', page)
    expected = [(line.quantity, 1 if line.pk == first.pk else 0) for line in lines]
    assert [(int(q), int(s), int(left)) for q, s, left in rows] == [(q, s, q - s) for q, s in expected]


# --------------------------------------------------------------------------------------------------
# Orders the store has closed
# --------------------------------------------------------------------------------------------------


def test_order_closed_on_the_store_fails_the_shipment_in_words_and_releases_the_reservation(
    alice, monkeypatch
):
    user, account = alice
    with sandbox_store("xcart", orders=10) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = multi_unit_order(channel)
        _with_products(account, order)
        skus = {line.sku for line in order.lines.all()}
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["C-1"])
        Shipment.objects.filter(pk=shipment.pk).update(state=ShipmentState.FAILED)  # not covering: reserves
        before = reserved_by_sku(account, skus)  # other open orders may hold the same SKUs
        own: dict[str, int] = {}
        for line in order.lines.all():
            own[line.sku] = own.get(line.sku, 0) + line.quantity
        assert all(before[sku] >= units for sku, units in own.items())
        Shipment.objects.filter(pk=shipment.pk).update(state=ShipmentState.PENDING)

        connector = connector_for(channel)
        current = next(
            o
            for page in connector.fetch_orders(None)
            for o in page.orders
            if o.external_id == order.external_id
        )
        connector.close()
        on_store = replace(current, status_code="WND", status_name="Will not deliver", closed=True)
        calls = []

        def closed(self, request):
            calls.append(request)
            raise OrderClosedError("The store has cancelled order 7 (Will not deliver).", order=on_store)

        monkeypatch.setattr(XCartConnector, "confirm_shipment", closed)
        run = confirm(channel)
        assert run.state == SyncState.SUCCEEDED
        assert "failed" in run.error
        confirm(channel)  # not retried: the store is not asked again

    assert len(calls) == 1
    shipment.refresh_from_db()
    assert shipment.state == ShipmentState.FAILED
    assert shipment.last_error == "The store has cancelled order 7 (Will not deliver)."
    assert shipment.next_attempt_at is None
    assert ChannelSchedule.objects.get(pk=channel.pk).shipments_due_at is None
    order.refresh_from_db()
    assert (order.status_code, order.status_name, order.store_closed) == ("WND", "Will not deliver", True)
    after = reserved_by_sku(account, skus)
    assert {sku: before[sku] - after.get(sku, 0) for sku in skus} == own
    with pytest.raises(ShipmentError, match="closed"):
        retry_shipment(shipment, actor=user)


def test_order_closed_error_without_the_order_still_closes_storelinks_copy(alice, monkeypatch):
    user, account = alice
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = multi_unit_order(channel)
        record_shipment(order, actor=user, tracking_numbers=["C-2"])

        def closed(self, request):
            raise OrderClosedError("The store has refunded this order.")

        monkeypatch.setattr(XCartConnector, "confirm_shipment", closed)
        confirm(channel)
    order.refresh_from_db()
    assert order.store_closed is True
    assert order.shipments.get().last_error == "The store has refunded this order."


def test_a_shipment_for_an_order_known_to_be_closed_fails_at_once(alice, sent_requests):
    user, account = alice
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = multi_unit_order(channel)
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["K-1"])
        # a download saw the cancellation after the shipment was recorded, before it was sent
        Order.objects.filter(pk=order.pk).update(
            store_closed=True, status_code="WND", status_name="Will not deliver"
        )
        run = confirm(channel)
        assert app.tracking_numbers(order.external_id) == []
    assert sent_requests == []
    assert run.failed == 1
    shipment.refresh_from_db()
    assert shipment.state == ShipmentState.FAILED
    assert "closed (Will not deliver)" in shipment.last_error
    order.refresh_from_db()
    with pytest.raises(ShipmentError, match="closed"):
        record_shipment(order, actor=user, tracking_numbers=["K-2"])
