"""A platform is one package: the example platform goes through the wizard, a sync and a push.

Nothing outside ``tests/example_platform/`` names it; it is registered here the way a real
platform is listed in ``connectors/registry.py``. If this test needs a line changed elsewhere,
some part of the product still knows platforms by name.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels import sync
from channels.models import ConnectionState, SalesChannel, SyncJob, SyncState
from connectors import registry
from inventory.catalog import upsert_products
from inventory.matching import refresh_listings
from inventory.push import push_stock_for_channel
from orders.download import download_orders
from orders.models import Order
from tests.example_platform.connector import ExampleConnector
from tests.example_platform.store import API_KEY, ExampleStore

pytestmark = pytest.mark.django_db


@pytest.fixture
def example_platform(settings):
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    registry.register(ExampleConnector)
    try:
        with ExampleStore() as store:
            yield store
    finally:
        registry.unregister(ExampleConnector.platform)


def test_a_fourth_platform_needs_only_its_package(client, alice, example_platform) -> None:
    store = example_platform
    client.force_login(alice.user)

    chooser = client.get(reverse("channels:add")).content.decode()
    assert reverse("channels:add_name", args=["example"]) in chooser
    assert "Example Commerce 1.x through its JSON API" in chooser

    response = client.post(reverse("channels:add_name", args=["example"]), {"name": "Example shop"})
    assert response.status_code == 302
    page = client.get(reverse("channels:add_connection", args=["example"])).content.decode()
    assert "open Settings → API and create a key" in page  # the declared steps, listed

    response = client.post(
        reverse("channels:add_connection", args=["example"]), {"store_url": store.url, "api_key": API_KEY}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    settings_page = client.get(response.url).content.decode()
    assert "Cancelled" in settings_page  # the store's own statuses offered as choices
    response = client.post(
        reverse("channels:add_settings", args=["example"]),
        {
            "currency": "EUR",
            "import_statuses": ["paid"],
            "processed_status": "shipped",
            "order_lookback_days": "7",
            "order_interval_minutes": "5",
            "stock_sync": "yes",
            "price_sync": "no",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    channel = SalesChannel.objects.get(platform="example")
    assert channel.connection_state == ConnectionState.OK
    assert channel.credentials == {"api_key": API_KEY}
    assert "Example shop" in client.get(reverse("channels:list")).content.decode()

    run = sync.run_channel_job(channel.pk, SyncJob.ORDERS, download_orders)
    assert run is not None
    assert run.state == SyncState.SUCCEEDED, run.error
    order = Order.objects.get(channel=channel)
    assert (order.number, order.status_code, str(order.total)) == ("EX-9001", "paid", "33.0000")

    upsert_products(
        alice.account,
        [{"sku": "MUG-1", "name": "Mug", "on_hand": 25}, {"sku": "CAP-1", "name": "Cap", "on_hand": 7}],
        actor=alice.user,
    )
    refresh_listings(channel)
    run = sync.run_channel_job(channel.pk, SyncJob.STOCK, push_stock_for_channel)
    assert run is not None
    assert run.state == SyncState.SUCCEEDED, run.error
    # the open order's 3 mugs are reserved: 25 - 3 on the store, the caps as they are on hand
    assert store.products["501"]["quantity"] == 22
    assert store.products["502"]["quantity"] == 7
    assert {path for _method, path, _body in store.writes} == {"/api/products/501", "/api/products/502"}


def test_registering_a_taken_platform_key_is_refused() -> None:
    class Impostor(ExampleConnector):
        platform = "opencart"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Impostor)
