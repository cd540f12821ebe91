"""Every change to "units sold but not shipped" asks for stock pushes, so no store oversells.

Availability on every channel is on hand minus unshipped units on all live channels; these are the
paths besides a download that move that number.
"""

from __future__ import annotations

import pytest

from channels import services as channel_services
from channels import sync
from channels.models import SyncState
from inventory import stock_queue
from inventory.matching import create_products_from_listings, refresh_listings
from inventory.models import Listing
from orders.download import download_orders
from orders.models import Order, ShipmentState
from orders.shipments import confirm_pending_shipments, record_shipment, retry_shipment
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return make_owner("alice@example.com", "Alice's Shop")


@pytest.fixture
def stock_requests(monkeypatch):
    requested: list[tuple[str, str]] = []
    monkeypatch.setattr(
        stock_queue,
        "request_jobs",
        lambda channels, job, **_: requested.extend((str(channel.pk), job) for channel in channels),
    )
    return requested


def test_failed_shipment_reserves_again_and_retry_releases(
    alice, stock_requests, django_capture_on_commit_callbacks
):
    user, account = alice
    with sandbox_store("xcart", orders=3) as (app, _server):
        channel = channel_for_store(account, app)
        refresh_listings(channel)
        create_products_from_listings(channel, actor=user)  # the store's SKUs, listed on it
        assert sync.run_channel_job(channel.pk, "orders", download_orders).state == SyncState.SUCCEEDED
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["F-1"])
        channel.settings = {**channel.settings, "processed_status": "NOPE"}  # the store refuses it
        channel.save()

        stock_requests.clear()
        with django_capture_on_commit_callbacks(execute=True):
            sync.run_channel_job(channel.pk, "shipments", confirm_pending_shipments)
        shipment.refresh_from_db()
        assert shipment.state == ShipmentState.FAILED
        assert (str(channel.pk), "stock") in stock_requests

        stock_requests.clear()
        with django_capture_on_commit_callbacks(execute=True):
            retry_shipment(shipment, actor=user)
        assert (str(channel.pk), "stock") in stock_requests


def test_removing_a_channel_frees_its_reservations_on_the_others(
    alice, stock_requests, django_capture_on_commit_callbacks
):
    user, account = alice
    with (
        sandbox_store("xcart", orders=2) as (app, _server),
        sandbox_store("xcart", orders=2) as (other, _s),
    ):
        leaving = channel_for_store(account, app, name="Leaving")
        staying = channel_for_store(account, other, name="Staying")
        for channel in (leaving, staying):
            refresh_listings(channel)
        create_products_from_listings(staying, actor=user)
        refresh_listings(leaving)  # its listings now match the products too
        assert Listing.objects.filter(channel=leaving, product__isnull=False).exists()
        stock_requests.clear()
        with django_capture_on_commit_callbacks(execute=True):
            channel_services.remove_channel(leaving, actor=user)
    assert (str(staying.pk), "stock") in stock_requests
    assert (str(leaving.pk), "stock") not in stock_requests
