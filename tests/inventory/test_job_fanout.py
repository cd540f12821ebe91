"""Jobs only where something changed: a product edit or a page of orders asks for a stock (or price)
job on the channels whose listings it moves, one per channel, in a constant number of queries
however many channels the account has."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels.models import SyncJob
from connectors import base
from inventory.catalog import upsert_products
from inventory.models import Listing, Product
from inventory.stock_queue import reservations_changed
from orders.download import download_orders
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job)))
    )
    return jobs


def _account_with_channels(account: Any, channels: int, listing_mug: int) -> list[Any]:
    """``channels`` channels syncing stock and prices, all listing OTHER, the first
    ``listing_mug`` also listing MUG."""
    rows = [
        SalesChannelFactory(account=account, settings={"stock_sync": True, "price_sync": True})
        for _ in range(channels)
    ]
    mug = Product.objects.create(account=account, sku="MUG", on_hand=10, price=Decimal("5"))
    other = Product.objects.create(account=account, sku="OTHER", on_hand=10, price=Decimal("5"))
    for index, channel in enumerate(rows):
        Listing.objects.create(account=account, channel=channel, product=other, sku="OTHER", remote_id="1")
        if index < listing_mug:
            Listing.objects.create(account=account, channel=channel, product=mug, sku="MUG", remote_id="2")
    return rows


def _edit(account: Any, captured: Any, item: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as queries, captured(execute=True):
        result = upsert_products(account, [item], actor=None)
    assert result.updated == 1
    return len(queries.captured_queries)


def test_an_edit_of_a_sku_on_3_of_many_channels_asks_for_3_stock_jobs_in_constant_queries(
    alice: Any, bob: Any, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    few = _account_with_channels(alice.account, 4, listing_mug=3)
    many = _account_with_channels(bob.account, 40, listing_mug=3)

    small = _edit(alice.account, django_capture_on_commit_callbacks, {"sku": "MUG", "on_hand": 7})
    assert sorted(sent) == sorted((str(channel.pk), SyncJob.STOCK) for channel in few[:3])
    sent.clear()
    large = _edit(bob.account, django_capture_on_commit_callbacks, {"sku": "MUG", "on_hand": 7})
    assert sorted(sent) == sorted((str(channel.pk), SyncJob.STOCK) for channel in many[:3])
    assert small == large, "the queries of an edit must not grow with the account's channels"
    assert large <= 12

    sent.clear()
    prices = _edit(bob.account, django_capture_on_commit_callbacks, {"sku": "MUG", "price": "6.00"})
    assert sorted(sent) == sorted((str(channel.pk), SyncJob.PRICES) for channel in many[:3])
    assert prices <= 12

    sent.clear()
    _edit(bob.account, django_capture_on_commit_callbacks, {"sku": "MUG", "name": "Only the name"})
    assert sent == [], "a change that moves neither stock nor price asks for nothing"


class _OnePage:
    """A connector whose order download is one page of these orders."""

    def __init__(self, orders: list[base.Order]) -> None:
        self.orders = orders

    def fetch_orders(self, checkpoint: Any) -> Iterator[Any]:
        yield base.OrderPage(orders=self.orders, checkpoint="page-1")


def _orders(count: int, skus: list[str]) -> list[base.Order]:
    now = timezone.now()
    return [
        base.Order(
            external_id=f"O{n}",
            number=f"O{n}",
            placed_at=now - timedelta(minutes=n),
            updated_at=now,
            status_code="1",
            status_name="Pending",
            currency="EUR",
            subtotal=Decimal(1),
            shipping=Decimal(0),
            tax=Decimal(0),
            discount=Decimal(0),
            total=Decimal(1),
            lines=(
                base.OrderLine(
                    external_line_id="1",
                    sku=skus[n % len(skus)],
                    name="x",
                    quantity=1,
                    unit_price=Decimal(1),
                    line_total=Decimal(1),
                ),
            ),
        )
        for n in range(count)
    ]


def test_a_page_of_orders_asks_for_stock_jobs_only_on_channels_listing_its_skus(
    alice: Any, bob: Any, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    counts = []
    for tenant, size in ((alice, 4), (bob, 30)):
        channels = _account_with_channels(tenant.account, size, listing_mug=2)
        sent.clear()
        page = _OnePage(_orders(50, ["MUG", "NOT-LISTED"]))
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            download_orders(channels[-1], page)
        counts.append(len(queries.captured_queries))
        assert sorted(sent) == sorted((str(channel.pk), SyncJob.STOCK) for channel in channels[:2])
    assert counts[0] == counts[1], "the queries of a page must not grow with the account's channels"


def test_reservations_of_every_sku_ask_each_channel_with_listings_once(
    alice: Any, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    channels = _account_with_channels(alice.account, 3, listing_mug=2)
    with django_capture_on_commit_callbacks(execute=True):
        reservations_changed(alice.account)
    assert sorted(sent) == sorted((str(channel.pk), SyncJob.STOCK) for channel in channels)


def test_a_channel_whose_listings_were_never_read_is_asked_by_every_change(
    alice: Any, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    """A store just connected may list anything: its first job reads its listings, then pushes."""
    listing = _account_with_channels(alice.account, 3, listing_mug=1)
    unread = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    with django_capture_on_commit_callbacks(execute=True):
        upsert_products(alice.account, [{"sku": "NEW", "on_hand": 4, "price": "2.00"}], actor=None)
    assert sorted(sent) == sorted([(str(unread.pk), SyncJob.STOCK), (str(unread.pk), SyncJob.PRICES)])

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reservations_changed(alice.account, ["MUG"])
    assert sorted(sent) == sorted([(str(listing[0].pk), SyncJob.STOCK), (str(unread.pk), SyncJob.STOCK)])
