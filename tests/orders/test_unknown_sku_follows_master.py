"""``unknown_sku`` follows the product master, not the moment an order happened to be written.

Adding, renaming or deleting a product re-evaluates the flag on the orders with a line of that
SKU in one UPDATE (PostgreSQL), whatever the number of orders.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels import sync
from inventory.catalog import delete_product, save_product, upsert_products
from inventory.models import Product
from orders.download import download_orders
from orders.models import Order
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ALLOW_PRIVATE_STORE_HOSTS = True


def order_updates(queries) -> list[str]:
    """The UPDATE statements of the captured queries that write orders."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("UPDATE") and '"orders_order"' in q["sql"].split(" SET ")[0]
    ]


def flagged(channel) -> set[str]:
    return set(Order.objects.filter(channel=channel, unknown_sku=True).values_list("external_id", flat=True))


def orders_with(channel, sku) -> set[str]:
    return set(Order.objects.filter(channel=channel, lines__sku=sku).values_list("external_id", flat=True))


def test_product_changes_re_evaluate_the_flag_in_one_statement(alice):
    user, account = alice.user, alice.account
    _bob_user, bob = make_owner("bob@example.com", "Bob's Shop")
    with sandbox_store("xcart", orders=20) as (app, _server):
        channel = channel_for_store(account, app)
        bob_channel = channel_for_store(bob, app, name="Bob's copy")
        skus = _store_skus(channel)
        assert len(skus) >= 3, skus
        missing, *known = skus
        upsert_products(account, [{"sku": sku, "on_hand": 5} for sku in known], actor=user)
        upsert_products(bob, [{"sku": sku, "on_hand": 5} for sku in known], actor=_bob_user)
        sync.run_channel_job(channel.pk, "orders", download_orders)
        sync.run_channel_job(bob_channel.pk, "orders", download_orders)
        with_missing = orders_with(channel, missing)
        assert with_missing
        assert flagged(channel) == with_missing
        assert flagged(bob_channel) == orders_with(bob_channel, missing)

        # adding the product clears the flag on every order that only lacked it
        with CaptureQueriesContext(connection) as queries:
            upsert_products(account, [{"sku": missing, "on_hand": 3}], actor=user)
        assert flagged(channel) == set()
        assert len(order_updates(queries)) == 1
        assert flagged(bob_channel) == orders_with(bob_channel, missing)  # another account's master

        # renaming it sets the flag again (the orders name a SKU the master no longer has)
        product = Product.objects.get(account=account, sku=missing)
        with CaptureQueriesContext(connection) as queries:
            save_product(account, actor=user, sku=f"{missing}-NEW", product=product, name="Renamed")
        assert flagged(channel) == with_missing
        assert len(order_updates(queries)) == 1

        # renaming back clears it; deleting sets it
        product = Product.objects.get(account=account, sku=f"{missing}-NEW")
        save_product(account, actor=user, sku=missing, product=product, name="Back")
        assert flagged(channel) == set()
        with CaptureQueriesContext(connection) as queries:
            delete_product(Product.objects.get(account=account, sku=missing), actor=user)
        assert flagged(channel) == with_missing
        assert len(order_updates(queries)) == 1
        assert flagged(bob_channel) == orders_with(bob_channel, missing)


def test_no_product_master_means_no_unknown_sku(alice):
    """A seller without products in Storelink has no "unknown" SKU: deleting the last product
    clears the flags, adding the first one sets them where due."""
    user, account = alice.user, alice.account
    with sandbox_store("xcart", orders=10) as (app, _server):
        channel = channel_for_store(account, app)
        sync.run_channel_job(channel.pk, "orders", download_orders)
        assert flagged(channel) == set()
        skus = _store_skus(channel)
        first = skus[0]
        upsert_products(account, [{"sku": first, "on_hand": 1}], actor=user)
        expected = {
            order.external_id
            for order in Order.objects.filter(channel=channel).prefetch_related("lines")
            if any(line.sku != first for line in order.lines.all())
        }
        assert expected
        assert flagged(channel) == expected
        delete_product(Product.objects.get(account=account, sku=first), actor=user)
        assert flagged(channel) == set()


def _store_skus(channel) -> list[str]:
    from channels.services import connector_for

    connector = connector_for(channel)
    try:
        orders = [order for page in connector.fetch_orders(None) for order in page.orders]
    finally:
        connector.close()
    return sorted({line.sku for order in orders for line in order.lines if line.sku})
