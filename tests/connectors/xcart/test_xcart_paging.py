"""X-Cart's first import costs the store the same per page however many orders it has.

The add-on has no "order id greater than" condition, but ``_cnd[date][0]`` is ``date >= start``
and orders sort by ``o.date``: each page starts at the last page's newest date (keyset paging)
instead of skipping ever more rows with an offset. The sandbox counts the SQLite steps of every
order search, so the store's work per page is measured, not timed.
"""

from __future__ import annotations

import pytest

from connectors.base import ConnectorOptions, Order
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer
from connectors.sandbox.xcart import XCartSandbox
from connectors.xcart.connector import ORDER_PAGE_SIZE, XCartConnector


def first_import(app: XCartSandbox) -> list[Order]:
    with SandboxServer(app):
        connector = build_connector(
            "xcart",
            app.connector_store_url(),
            app.connector_credentials(),
            app.connector_settings() | {"api_flavour": "addon"},
            options=ConnectorOptions(allow_private_hosts=True, timeout=10.0, max_retries=1, backoff=0.01),
        )
        assert isinstance(connector, XCartConnector)
        app.order_search_steps.clear()
        orders = [order for page in connector.fetch_orders(None) for order in page.orders]
        connector.close()
    return orders


def seeded(orders: int) -> XCartSandbox:
    app = XCartSandbox()
    app.seed(6, orders, 20, 11)
    return app


@pytest.fixture(scope="module")
def costs() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for size in (200, 1600):
        app = seeded(size)
        orders = first_import(app)
        ids = [order.external_id for order in orders]
        assert len(ids) == len(set(ids)) == app.order_count()
        found[size] = list(app.order_search_steps)
    return found


def test_the_store_works_as_hard_for_the_last_page_as_for_the_first(costs: dict[int, list[int]]) -> None:
    large = costs[1600]
    assert len(large) >= 1600 // ORDER_PAGE_SIZE  # it did page
    assert max(large) <= 1.5 * large[0], large


def test_a_page_costs_the_same_with_eight_times_the_orders(costs: dict[int, list[int]]) -> None:
    assert max(costs[1600]) <= 1.5 * max(costs[200]), (max(costs[200]), max(costs[1600]))


def test_more_orders_in_one_second_than_a_page_holds_all_arrive_once() -> None:
    app = seeded(30)
    crowded = {app.place_order(age_seconds=3600) for _ in range(ORDER_PAGE_SIZE * 2 + 7)}
    orders = first_import(app)
    ids = [order.external_id for order in orders]
    assert len(ids) == len(set(ids)) == app.order_count()
    assert crowded <= set(ids)
