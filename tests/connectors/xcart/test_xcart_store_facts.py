"""What a real X-Cart 5.4 store showed that the first sandbox did not: the store's own version is
readable from its ``config`` entity, and the API key of a write need not travel in the address (where
the store's web-server access log keeps it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectorOptions, PriceUpdate, ShipmentRequest, StockUpdate
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer
from connectors.sandbox.xcart import XCartSandbox
from connectors.xcart.connector import XCartConnector


def running(**options: Any) -> Iterator[XCartSandbox]:
    app = XCartSandbox(**options)
    app.seed(6, 20, 3, 2)
    with SandboxServer(app):
        yield app


@pytest.fixture
def store() -> Iterator[XCartSandbox]:
    yield from running()


def connect(app: XCartSandbox, key: str | None = None) -> XCartConnector:
    built = build_connector(
        "xcart",
        app.connector_store_url(),
        {"api_key": key or app.rw_key},
        app.connector_settings(),
        options=ConnectorOptions(allow_private_hosts=True, timeout=5.0, max_retries=1, backoff=0.01),
    )
    assert isinstance(built, XCartConnector)
    return built


def do_every_write(app: XCartSandbox, connector: XCartConnector) -> None:
    connector.test_connection()
    order_id = next(iter(connector.fetch_orders(None))).orders[0].external_id
    connector.confirm_shipment(
        ShipmentRequest(order_external_id=order_id, tracking_numbers=("1Z1",), processed_status="S")
    )
    listing = next(item for item in connector.list_listings() if not item.remote_variant_id)
    assert connector.push_stock([StockUpdate(sku=listing.sku, remote_id=listing.remote_id, quantity=4)])[0].ok
    price = PriceUpdate(sku=listing.sku, remote_id=listing.remote_id, price="12.50")
    assert connector.push_prices([price])[0].ok


def test_test_connection_shows_the_stores_own_version(store: XCartSandbox) -> None:
    facts = connect(store).test_connection()
    assert facts.platform_version.startswith("5.4.1.23")
    assert facts.details["store_version"] == "5.4.1.23"


def test_the_read_only_key_reads_the_version_too(store: XCartSandbox) -> None:
    facts = connect(store, store.read_key).test_connection()
    assert facts.platform_version.startswith("5.4.1.23")


def test_a_store_that_does_not_report_its_version_shows_the_range() -> None:
    for app in running(version=None):
        facts = connect(app).test_connection()
        assert facts.platform_version == "5.0–5.4 (REST API add-on)"
        assert "store_version" not in facts.details


def test_write_requests_carry_no_key_in_the_address(store: XCartSandbox) -> None:
    do_every_write(store, connect(store))
    writes = [line for line in store.access_log if not line.startswith("GET ")]
    assert {line.split()[0] for line in writes} == {"PUT"}
    assert len(writes) >= 4
    assert not [line for line in writes if "_key=" in line]
    assert store.rw_key not in "\n".join(writes)
    assert store.tracking_numbers(next(w["key"] for w in store.writes() if w["kind"] == "tracking")) == [
        "1Z1"
    ]


def test_a_store_that_reads_the_key_only_from_the_address_still_takes_writes_and_says_so() -> None:
    for app in running(key_from_body=False):
        connector = connect(app)
        facts = connector.test_connection()
        assert facts.can_write is True
        assert any("access log" in warning for warning in facts.warnings)
        do_every_write(app, connector)
        assert [w["kind"] for w in app.writes()].count("tracking") == 1
