"""List pages cost the same number of queries whatever the size of the account, and never read
(so never decrypt) channel credentials to render their rows.

Each page is rendered for an account with 2 channels and again after it grew to 20 (with their
products, listings, orders, shipments and sync runs); the statements are counted with Django's
``CaptureQueriesContext`` and must be the same. Timing is the benchmark's job (``bench.pages``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from channels.models import SalesChannel, SyncJob, SyncRun
from inventory.models import Listing, Product
from orders.models import Order, Shipment
from tests.conftest import api_client_with_key
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db


def grow(account: Any, channels: int) -> None:
    """Add channels until the account has ``channels``, each with what a real one has."""
    have = SalesChannel.objects.filter(account=account).count()
    for n in range(have, channels):
        channel = SalesChannelFactory(account=account, name=f"Shop {n:02d}")
        for k in range(3):
            product = Product.objects.get_or_create(
                account=account, sku=f"SKU-{n}-{k}", defaults={"on_hand": 5, "price": Decimal("9.50")}
            )[0]
            Listing.objects.create(
                account=account, channel=channel, product=product, sku=product.sku, remote_id=f"{n}-{k}"
            )
        Listing.objects.create(account=account, channel=channel, sku=f"STORE-{n}", remote_id=f"{n}-x")
        Product.objects.create(account=account, sku=f"MASTER-{n}", on_hand=1)
        for k in range(3):
            order = make_order(channel, f"{n:02d}{k:03d}", customer_name=f"Customer {n}")
            if k == 0:
                Shipment.objects.create(
                    account=account,
                    order=order,
                    channel=channel,
                    tracking_numbers=["T1"],
                    lines=[{"external_line_id": f"{n:02d}{k:03d}-0", "quantity": 1}],
                    is_partial=True,
                )
        for job in (SyncJob.ORDERS, SyncJob.STOCK, SyncJob.PRICES):
            SyncRun.objects.create(account=account, channel=channel, job=job, state="ok", updated=1)


def _pages(account: Any) -> dict[str, str]:
    """The pages to count, by name; ids are the account's first rows (present at every size)."""
    channel = SalesChannel.objects.filter(account=account).order_by("name").first()
    order = Order.objects.filter(channel=channel).order_by("number").first()
    product = Product.objects.filter(account=account).order_by("sku").first()
    orders = reverse("orders:list")
    return {
        "channel list": reverse("channels:list"),
        "channel page": reverse("channels:detail", args=[channel.pk]),
        "orders list": orders,
        "orders list, filtered": f"{orders}?status=Processing&shipping=unshipped&channel={channel.pk}",
        "orders list, search": f"{orders}?q=customer",
        "order page": reverse("orders:detail", args=[order.pk]),
        "products": reverse("inventory:product_list"),
        "product page": reverse("inventory:product_detail", args=[product.pk]),
        "listings by channel": reverse("inventory:unmatched"),
        "listings of one channel": f"{reverse('inventory:unmatched')}?channel={channel.pk}",
    }


API_PAGES = {
    "api channels": "/api/v1/channels/",
    "api orders": "/api/v1/orders/",
    "api products": "/api/v1/products/",
    "api listings": "/api/v1/listings/",
}


def _count(get: Callable[[str], Any], url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries.captured_queries), [q["sql"] for q in queries.captured_queries]


def _deep_orders_url(client: Client) -> str:
    """The orders list a page in, by following "Older" (a cursor, as a seller would)."""
    import re

    url = reverse("orders:list") + "?"
    for _ in range(1):
        body = client.get(url).content.decode()
        found = re.search(r'<a href="\?([^"]*)" rel="next">', body)
        assert found, "the orders list has an older page"
        url = reverse("orders:list") + "?" + found.group(1).replace("&amp;", "&")
    return url


def test_pages_cost_the_same_queries_at_2_and_20_channels(alice: Any, settings: Any) -> None:
    import orders.views

    settings.DEBUG = False
    orders.views.PAGE_SIZE, size = 4, orders.views.PAGE_SIZE  # so 2 channels' orders fill pages
    try:
        client = Client()
        client.force_login(alice.user)
        api = api_client_with_key(alice.account)
        # A key's first request records that it was used (a write later requests skip).
        assert api.get(API_PAGES["api channels"]).status_code == 200
        counts: dict[str, list[int]] = {}
        for channels in (2, 20):
            grow(alice.account, channels)
            pages = {**_pages(alice.account), "orders list, deep": _deep_orders_url(client)}
            for name, url in pages.items():
                counts.setdefault(name, []).append(_count(client.get, url)[0])
            for name, url in API_PAGES.items():
                counts.setdefault(name, []).append(_count(api.get, url)[0])
    finally:
        orders.views.PAGE_SIZE = size
    grown = {name: pair for name, pair in counts.items() if pair[0] != pair[1]}
    assert not grown, f"queries grew from 2 to 20 channels: {grown} (all: {counts})"


def _reads_credentials(statements: list[str]) -> list[str]:
    return [sql for sql in statements if '"channels_saleschannel"."credentials"' in sql]


def test_list_pages_never_read_channel_credentials(alice: Any) -> None:
    """The rows of the lists show channel names and states: the encrypted column is not selected,
    so nothing is decrypted however many channels or orders a page shows."""
    grow(alice.account, 3)
    everywhere = Product.objects.create(account=alice.account, sku="EVERYWHERE", on_hand=2, price=Decimal(3))
    for n, channel in enumerate(SalesChannel.objects.filter(account=alice.account)):
        Listing.objects.create(
            account=alice.account, channel=channel, product=everywhere, sku=everywhere.sku, remote_id=f"e{n}"
        )
    client = Client()
    client.force_login(alice.user)
    api: APIClient = api_client_with_key(alice.account)
    pages = _pages(alice.account)
    pages["product listed on every channel"] = reverse(
        "inventory:product_detail", args=[Product.objects.get(account=alice.account, sku="EVERYWHERE").pk]
    )
    names = ("channel list", "orders list", "orders list, search", "products", "listings by channel")
    for name in (*names, "product listed on every channel"):
        statements = _count(client.get, pages[name])[1]
        assert not _reads_credentials(statements), (name, _reads_credentials(statements))
    for name in ("api orders", "api products", "api listings"):
        statements = _count(api.get, API_PAGES[name])[1]
        assert not _reads_credentials(statements), (name, _reads_credentials(statements))
