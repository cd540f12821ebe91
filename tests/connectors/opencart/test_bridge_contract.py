"""One contract for the store bridge, run against the real PHP file on MariaDB and the sandbox.

The same assertions run on every OpenCart schema family (2.1–2.3, 3.0.x, 4.0.x, 4.1.x) with two table
prefixes and both PHP database drivers, and on the sandbox's emulation of every family. Effects are
checked from the store's side (its own tables), not from what the client says it did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import ConnectorOptions, PriceUpdate, ShipmentRequest, StockUpdate
from connectors.errors import TransientError
from connectors.http import StoreHttp
from connectors.opencart.bridge_client import BridgeClient
from connectors.opencart.connector import OpenCartConnector
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import (
    BRIDGE_VERSION,
    FAMILIES,
    OpenCartSandbox,
    OpenCartStoreData,
    store_timezone,
)
from tests.bridge.harness import SEED_DAYS, SEED_ORDERS, SEED_PRODUCTS, SEED_RNG, get_farm

PHP_STORES = [
    ("2.3", "oc_"),
    ("3.0.3", "oc_"),
    ("4.0", "oc_"),
    ("4.1", "oc_"),
    ("2.1", "shop7_"),
    ("3.0.0", "shop7_"),
    ("4.0", "shop7_"),
    ("4.1", "shop7_"),
]
CASES = [
    *(
        pytest.param(("php", family, prefix), id=f"php-{family}-{prefix}", marks=pytest.mark.php)
        for family, prefix in PHP_STORES
    ),
    *(pytest.param(("sandbox", family, "oc_"), id=f"sandbox-{family}") for family in FAMILIES),
]


@dataclass
class Backend:
    kind: str
    family: str
    url: str
    store: OpenCartStoreData
    credentials: dict[str, str]

    def client(self) -> BridgeClient:
        http = StoreHttp(self.url, platform="opencart", allow_private_hosts=True, timeout=10, backoff=0.01)
        return BridgeClient(http, self.credentials["api_username"], self.credentials["api_key"])


@pytest.fixture(params=CASES)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    kind, family, prefix = request.param
    if kind == "php":
        store = get_farm().store(family, prefix)
        yield Backend(kind, family, store.url, store.data, store.credentials())
        return
    app = OpenCartSandbox(family=family, prefix=prefix, rng_seed=SEED_RNG)
    app.seed(SEED_PRODUCTS, SEED_ORDERS, SEED_DAYS, SEED_RNG)
    with SandboxServer(app) as server:
        yield Backend(kind, family, server.url, app, app.connector_credentials())


def download(client: BridgeClient, checkpoint: str | None, page_size: int = 7) -> tuple[list[Any], str]:
    orders: list[Any] = []
    last = checkpoint or ""
    for page in client.fetch_orders(checkpoint, lookback_days=30, import_statuses=[], page_size=page_size):
        orders.extend(page.orders)
        last = page.checkpoint
    return orders, last


def wait_for_next_store_second(store: OpenCartStoreData) -> None:
    """The bridge leaves the current second to the next poll; step past it (bounded: ~1 s)."""
    start = store.store_now()
    deadline = time.monotonic() + 2.5
    while store.store_now() <= start and time.monotonic() < deadline:
        time.sleep(0.05)


def test_info_and_statuses_describe_the_store(backend: Backend) -> None:
    client = backend.client()
    info = client.info()
    assert info.bridge_version == BRIDGE_VERSION
    assert info.opencart_version == FAMILIES[backend.family][1]
    assert info.schema_family == FAMILIES[backend.family][0]
    assert info.currency == "USD"
    assert set(info.currencies) == {"USD", "EUR", "GBP"}
    assert info.prices_include_tax is True
    assert info.timezone == store_timezone(backend.family)
    assert info.languages == ("en-gb",)
    assert info.stores == ((0, "Storelink Demo & Co"), (1, "Outlet"))
    statuses = {status.code: status.name for status in client.statuses()}
    assert statuses["3"] == "Shipped"
    assert len(statuses) == 14


def test_downloads_every_order_once_across_pages(backend: Backend) -> None:
    client = backend.client()
    orders, checkpoint = download(client, None, page_size=7)
    ids = [order.external_id for order in orders]
    assert len(ids) == len(set(ids)), "an order came twice"
    assert len(ids) == backend.store.order_count()
    assert "10" not in ids, "an unconfirmed checkout (status 0) is not an order"
    keys = [(order.updated_at, int(order.external_id)) for order in orders]
    assert keys == sorted(keys)
    by_id = {order.external_id: order for order in orders}
    changed = by_id["3"]  # every third seeded order changed status later (4.1: only in history)
    assert changed.updated_at > changed.placed_at
    euro = by_id["4"]
    assert euro.currency == "EUR"
    assert euro.total == (Decimal(euro.raw["total"]) * Decimal("0.78460002")).quantize(Decimal("0.01"))
    names = [line.name for order in orders for line in order.lines]
    assert all("&quot;" not in name and "&amp;" not in name for name in names)
    assert any('"' in name for name in names)
    assert all(order.lines and order.placed_at.utcoffset().total_seconds() == 0 for order in orders)
    for order in orders:  # amounts are converted to the order currency one by one, as OpenCart prints them
        assert abs(order.computed_total - order.total) <= Decimal("0.01") * (len(order.lines) + 3)
        if order.currency == "USD":
            assert order.computed_total == order.total
    again, _ = download(client, checkpoint)
    assert again == [], "nothing changed, so nothing comes again"


def test_orders_arriving_and_changing_between_pages(backend: Backend) -> None:
    client = backend.client()
    existing = backend.store.order_count()
    pages = client.fetch_orders(None, lookback_days=30, import_statuses=[], page_size=5)
    first = next(pages)
    already_seen = first.orders[0].external_id
    new_id = backend.store.add_order()
    client.add_history(already_seen, 15, "changed while paging", False)
    orders = list(first.orders)
    checkpoint = first.checkpoint
    for page in pages:
        orders.extend(page.orders)
        checkpoint = page.checkpoint
    ids = [order.external_id for order in orders]
    others = [order_id for order_id in ids if order_id != already_seen]
    assert len(others) == len(set(others)), "no unchanged order is repeated within one download"
    assert len(set(ids)) == existing + 1
    assert new_id in ids, "an order placed while paging is not skipped"

    # The change is delivered exactly once: later in this download if a page was read after the
    # change's second had passed, otherwise by the next download.
    wait_for_next_store_second(backend.store)
    later, _ = download(client, checkpoint)
    changed_versions = [o for o in orders[len(first.orders) :] + later if o.external_id == already_seen]
    assert [o.status_code for o in changed_versions] == ["15"]
    assert [o.external_id for o in later] in ([], [already_seen])


def test_push_stock_and_price_read_back_and_touch_nothing_else(backend: Backend) -> None:
    client = backend.client()
    before = {listing.sku: listing for listing in client.list_listings()}
    plain = before["SL-0001"]
    option = before["SL-0003-M"]
    chosen = [plain, option]
    if FAMILIES[backend.family][0] in ("4.0", "4.1"):
        chosen.append(before["SL-0005-RED"])  # a 4.x variant product
    stock = [
        StockUpdate(item.sku, item.remote_id, 40 + i, item.remote_variant_id) for i, item in enumerate(chosen)
    ]
    prices = [
        PriceUpdate(item.sku, item.remote_id, Decimal(f"{19 + i}.95"), item.remote_variant_id)
        for i, item in enumerate(chosen)
    ]
    assert all(result.ok for result in client.push_stock(stock))
    assert all(result.ok for result in client.push_prices(prices))
    for update in stock:
        assert backend.store.stock_of(update.sku) == update.quantity
    for update in prices:
        assert backend.store.price_of(update.sku) == update.price
    after = {listing.sku: listing for listing in client.list_listings()}
    assert after.keys() == before.keys()
    touched = {item.sku for item in chosen}
    for sku, listing in before.items():
        if sku not in touched:
            assert after[sku] == listing, f"{sku} changed although it was not pushed"
    missing = client.push_stock([StockUpdate("nope", "999999", 3)])
    assert missing[0].ok is False
    assert "does not exist" in missing[0].error


def test_add_history_is_seen_by_the_store_and_the_client(backend: Backend) -> None:
    client = backend.client()
    comment = 'Shipped with UPS: 1Z999AA10123456784 & "fragile" <b>'
    client.add_history("2", 3, comment, True)
    history = client.history("2")
    assert history[-1]["comment"] == comment
    assert history[-1]["order_status_id"] == "3"
    assert history[-1]["notify"] is True
    assert backend.store.order_status("2") == "3"
    assert "1Z999AA10123456784" in backend.store.tracking_numbers("2")
    stored = backend.store.query(
        f"SELECT comment FROM {backend.store.t('order_history')} WHERE order_id = ? ORDER BY "
        "order_history_id DESC",
        [2],
    )[0]["comment"]
    assert stored == "Shipped with UPS: 1Z999AA10123456784 &amp; &quot;fragile&quot; &lt;b&gt;"
    order = client.get_order("2")
    assert order is not None
    assert order.status_code == "3"
    assert order.status_name == "Shipped"
    assert client.get_order("987654") is None


def download_importing(
    client: BridgeClient, checkpoint: str | None, statuses: list[str]
) -> tuple[dict[str, Any], str]:
    found: dict[str, Any] = {}
    last = checkpoint or ""
    for page in client.fetch_orders(checkpoint, lookback_days=30, import_statuses=statuses, page_size=50):
        found.update({order.external_id: order for order in page.orders})
        last = page.checkpoint
    return found, last


def test_status_changes_of_imported_orders_arrive_whatever_the_new_status(backend: Backend) -> None:
    """Cancelled (7) and shipped (3) are not imported statuses here, yet an order imported while
    Pending must come again with its new status, closed; an order never in an imported status does
    not come at all."""
    client = backend.client()
    first, checkpoint = download_importing(client, None, ["1", "2"])
    # orders that are in 1 or 2 now, or were once (seeded status changes start from Pending)
    assert first
    assert all(
        order.status_code in ("1", "2") or order.closed or order.status_code == "15"
        for order in first.values()
    )
    pending = sorted((o for o in first.values() if o.status_code == "1"), key=lambda o: int(o.external_id))
    assert len(pending) >= 2
    assert not any(order.closed for order in pending)
    outsider = backend.store.orders_in_status(5)[0]  # Complete all along: never imported
    assert outsider not in first
    backend.store.change_status(pending[0].external_id, 7, "Customer cancelled")
    backend.store.change_status(pending[1].external_id, 3, "Shipped by the warehouse")
    backend.store.change_status(outsider, 7)
    wait_for_next_store_second(backend.store)

    changed, _ = download_importing(client, checkpoint, ["1", "2"])
    assert set(changed) == {pending[0].external_id, pending[1].external_id}
    cancelled, shipped = changed[pending[0].external_id], changed[pending[1].external_id]
    assert (cancelled.status_code, cancelled.status_name, cancelled.closed) == ("7", "Canceled", True)
    assert (shipped.status_code, shipped.closed) == ("3", True)


def test_statuses_say_which_close_an_order_from_the_stores_settings(backend: Backend) -> None:
    client = backend.client()
    info = client.info()
    assert "orders_match_ever" in info.features
    assert set(info.complete_status_ids) == {"3", "5"}
    assert set(info.processing_status_ids) == {"1", "2", "3", "5", "12"}
    closing = {status.code: status.closes_order for status in client.statuses()}
    assert {code for code, closes in closing.items() if closes} == {
        "3",
        "5",
        "7",
        "8",
        "9",
        "10",
        "11",
        "13",
        "14",
        "16",
    }, "12 (Reversed) is a processing status on this store: its stock stays subtracted"


class _ReplyLost:
    """The bridge client, except that the reply to a history write never arrives (the store has
    applied it): what a retry sees after a timeout between "the store committed" and "we heard"."""

    def __init__(self, client: BridgeClient) -> None:
        self.client = client
        self.lose_next_reply = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def add_history(self, *args: Any, **kwargs: Any) -> None:
        self.client.add_history(*args, **kwargs)
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise TransientError("The store did not answer in time.", code="timeout")


def test_a_shipment_whose_reply_was_lost_is_written_once_and_partial_keeps_the_status(
    backend: Backend,
) -> None:
    """Through the bridge's own history write (the path 3.0.0-3.0.2 use): the retry finds its own
    row by the shipment reference, read back from the store after its HTML escaping, and a partial
    shipment leaves the order in its status until the last one."""
    bridge = _ReplyLost(backend.client())
    connector = OpenCartConnector(
        backend.url,
        backend.credentials,
        {"version_family": "3.0.0", "processed_status": "3"},
        options=ConnectorOptions(allow_private_hosts=True),
        bridge=bridge,
    )
    order_id = backend.store.orders_in_status(1)[0]
    partial = ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=("1ZPART00001",),
        carrier="UPS & Co",
        processed_status="3",
        is_partial=True,
        reference="SL-0a1b2c3d4e5f",
    )
    with pytest.raises(TransientError):
        connector.confirm_shipment(partial)
    result = connector.confirm_shipment(partial)
    assert result.warnings == ("Already confirmed on the store; nothing was sent again.",)
    comments = backend.store.history_comments(order_id)
    assert sum("SL-0a1b2c3d4e5f" in comment for comment in comments) == 1
    assert backend.store.order_status(order_id) == "1"
    last = ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=("1ZREST00002",),
        carrier="UPS & Co",
        processed_status="3",
        reference="SL-0a1b2c3d4e60",
    )
    connector.confirm_shipment(last)
    connector.confirm_shipment(last)
    assert backend.store.order_status(order_id) == "3"
    assert sum("SL-0a1b2c3d4e60" in c for c in backend.store.history_comments(order_id)) == 1


def test_orders_changed_says_whether_a_download_would_find_anything(backend: Backend) -> None:
    """1.4.0's quick check, on the real PHP file and the sandbox: the same answer a download from
    the same cursor would give, without any order in the reply."""
    client = backend.client()
    _, checkpoint = download(client, None)
    assert json.loads(checkpoint).get("probe") is True, "the file says 1.4.0: polls may ask it"
    assert client.orders_changed(checkpoint, import_statuses=[]) is False
    raw = client.call("GET", "orders_changed", {"cursor": json.loads(checkpoint)["cursor"]})
    assert set(raw) == {"ok", "changed", "cursor", "until"}, "no order rows"

    new_id = backend.store.add_order()
    assert client.orders_changed(checkpoint, import_statuses=[]) is True
    wait_for_next_store_second(backend.store)
    orders, checkpoint = download(client, checkpoint)
    assert new_id in {order.external_id for order in orders}
    assert client.orders_changed(checkpoint, import_statuses=[]) is False

    client.add_history(new_id, 15, "changed after the download", False)
    wait_for_next_store_second(backend.store)  # the current second is left to the next poll
    assert client.orders_changed(checkpoint, import_statuses=[]) is True
    # an import filter that leaves the order out (never in status 7) sees nothing new
    assert client.orders_changed(checkpoint, import_statuses=["7"]) is False


def test_a_bridge_older_than_the_quick_check_is_downloaded_as_before() -> None:
    """A store that kept a 1.3.0 file: downloads work, no checkpoint asks for the quick check, and a
    checkpoint from a newer file (the file was put back) gets "cannot tell", not an error."""
    app = OpenCartSandbox(family="3.0.3", rng_seed=SEED_RNG, bridge_version="1.3.0")
    app.seed(SEED_PRODUCTS, SEED_ORDERS, SEED_DAYS, SEED_RNG)
    with SandboxServer(app) as server:
        client = Backend("sandbox", "3.0.3", server.url, app, app.connector_credentials()).client()
        orders, checkpoint = download(client, None)
        assert len(orders) == app.order_count()
        assert "probe" not in json.loads(checkpoint)
        requests = app.request_count
        assert client.orders_changed(checkpoint, import_statuses=[]) is None
        assert app.request_count == requests, "nothing is sent to a file that cannot answer"
        newer = json.dumps({**json.loads(checkpoint), "probe": True})
        assert client.orders_changed(newer, import_statuses=[]) is None
        assert app.probe_count == 0
