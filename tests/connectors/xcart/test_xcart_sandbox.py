"""The X-Cart sandbox over real loopback HTTP: its wire format and quirks, then the connector
against it end to end (both flavours), clean and through faults."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest

from connectors.base import ConnectorOptions, Order, PriceUpdate, ShipmentRequest, StockUpdate
from connectors.errors import AuthError, ProtocolError, RateLimited, TransientError
from connectors.registry import build_connector
from connectors.sandbox import Faults, SandboxServer, make_sandbox
from connectors.sandbox.xcart import XCartSandbox, php_parse
from connectors.xcart.connector import XCartConnector

T = TypeVar("T")


@pytest.fixture
def addon_store() -> Iterator[XCartSandbox]:
    app = make_sandbox("xcart", flavour="addon")
    assert isinstance(app, XCartSandbox)
    app.seed(6, 60, 5, 3)
    with SandboxServer(app):
        yield app


@pytest.fixture(params=["addon", "builtin"])
def any_store(request: pytest.FixtureRequest) -> Iterator[XCartSandbox]:
    app = make_sandbox("xcart", flavour=request.param)
    assert isinstance(app, XCartSandbox)
    app.seed(9, 120, 8, 5)
    with SandboxServer(app):
        yield app


def rest(app: XCartSandbox, method: str = "GET", key: str | None = None, **params: Any) -> httpx.Response:
    query = {"target": "RESTAPI", "_key": app.rw_key if key is None else key, **params}
    data = params.pop("data", None)
    query.pop("data", None)
    return httpx.request(method, f"{app.base_url}/admin.php", params=query, data=data, timeout=5)


def connect(app: XCartSandbox, **settings: Any) -> XCartConnector:
    built = build_connector(
        "xcart",
        app.connector_store_url(),
        app.connector_credentials(),
        app.connector_settings() | settings,
        options=ConnectorOptions(allow_private_hosts=True, timeout=2.0, max_retries=2, backoff=0.01),
    )
    assert isinstance(built, XCartConnector)
    return built


def download(connector: XCartConnector, checkpoint: str | None = None) -> tuple[list[Order], str | None]:
    orders: list[Order] = []
    last = checkpoint
    for page in connector.fetch_orders(checkpoint):
        orders.extend(page.orders)
        last = page.checkpoint
    return orders, last


def retrying(operation: Callable[[], T], attempts: int = 40) -> T:
    for attempt in range(attempts):
        try:
            return operation()
        except (TransientError, ProtocolError, RateLimited):
            if attempt == attempts - 1:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


# -- wire format (add-on) --------------------------------------------------------------------------


def test_php_bracket_parsing() -> None:
    parsed = php_parse(
        [("_cnd[paymentStatus][]", "P"), ("_cnd[paymentStatus][]", "A"), ("model[0][id]", "3")]
    )
    assert parsed == {"_cnd": {"paymentStatus": {"0": "P", "1": "A"}}, "model": {"0": {"id": "3"}}}


def test_success_headers_numbers_and_cookie(addon_store: XCartSandbox) -> None:
    reply = rest(addon_store, _path="order", _schema="complex", **{"_cnd[limit][0]": 0, "_cnd[limit][1]": 2})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json;charset=utf-8"
    assert reply.headers["x-result-count"] == "2"
    assert reply.headers["allow"] == "GET,POST,PUT,DELETE"
    assert reply.headers["set-cookie"].startswith("xid=")
    order = reply.json()[0]
    assert isinstance(order["total"], float)
    assert order["discountValue"] <= 0
    assert order["otherSurcharges"] == [] or isinstance(order["otherSurcharges"], dict)


def test_the_add_on_dates_its_replies_with_a_numeric_zone(addon_store: XCartSandbox) -> None:
    for response in (
        rest(addon_store, _path="order-status-shipping"),
        rest(addon_store, key="x", _path="order"),
    ):
        assert response.headers["Date"].endswith(" +0000"), response.headers["Date"]


def test_wrong_key_is_an_empty_403_and_unknown_path_a_404_even_with_a_wrong_key(
    addon_store: XCartSandbox,
) -> None:
    forbidden = rest(addon_store, key="nope", _path="order")
    assert forbidden.status_code == 403
    assert forbidden.content == b""
    assert forbidden.headers["content-type"] == "text/html; charset=UTF-8"
    missing = rest(addon_store, key="nope", _path="no-such-entity")
    assert missing.status_code == 404
    assert missing.content == b""


def test_wrong_target_redirects_to_login_and_api_is_404(addon_store: XCartSandbox) -> None:
    reply = httpx.get(f"{addon_store.base_url}/admin.php", params={"target": "main"}, timeout=5)
    assert reply.status_code == 302
    assert reply.headers["location"] == "admin.php?target=login"
    assert httpx.get(f"{addon_store.base_url}/api/orders", timeout=5).status_code == 404


def test_unknown_id_is_null_and_past_the_end_is_an_empty_list(addon_store: XCartSandbox) -> None:
    assert rest(addon_store, _path="order/99999").text == "null"
    assert rest(addon_store, "PUT", _path="product/0").text == "null"
    past = rest(addon_store, _path="product", **{"_cnd[limit][0]": 500, "_cnd[limit][1]": 50})
    assert past.json() == []
    assert past.headers["x-result-count"] == "0"


def test_no_page_cap(addon_store: XCartSandbox) -> None:
    everything = rest(addon_store, _path="order", _schema="complex").json()
    assert len(everything) > 50


def test_read_only_key_reads_but_cannot_write(addon_store: XCartSandbox) -> None:
    assert rest(addon_store, key=addon_store.read_key, _path="order-status-shipping").status_code == 200
    assert rest(addon_store, "PUT", key=addon_store.read_key, _path="product/0").status_code == 403


def test_complex_schema_quirks(addon_store: XCartSandbox) -> None:
    assert rest(addon_store, "PUT", _path="order/1", _schema="complex").status_code == 403
    assert rest(addon_store, _path="ordertrackingnumber", _schema="complex").status_code == 500
    assert (
        rest(addon_store, _path="order", **{"_cnd[dateRange][0]": 1, "_cnd[dateRange][1]": 2}).status_code
        == 500
    )


def test_writes_are_not_validated(addon_store: XCartSandbox) -> None:
    reply = rest(addon_store, "PUT", _path="product/1", data={"model[amount]": "abc", "model[sku]": "S" * 67})
    assert reply.json()["amount"] == 0
    assert reply.json()["sku"] == "S" * 32


def test_an_unknown_status_code_renames_a_status_for_the_whole_store(addon_store: XCartSandbox) -> None:
    before = addon_store.order_status("1")
    rest(addon_store, "PUT", _path="order/1", data={"model[shippingStatus][code]": "ZZZ"})
    assert addon_store.order_status("1") == "ZZZ"
    assert before not in addon_store.shipping_codes()
    assert addon_store.status_renames == [(before, "ZZZ")]


def test_a_scalar_status_is_silently_ignored(addon_store: XCartSandbox) -> None:
    before = addon_store.order_status("1")
    reply = rest(addon_store, "PUT", _path="order/1", data={"model[shippingStatus]": "S"})
    assert reply.status_code == 200
    assert addon_store.order_status("1") == before


def test_a_tracking_post_for_a_missing_order_creates_an_empty_order(addon_store: XCartSandbox) -> None:
    count = addon_store.order_count()
    reply = rest(
        addon_store,
        "POST",
        _path="ordertrackingnumber/0",
        data={"model[value]": "1Z", "model[order][order_id]": "424242"},
    )
    assert reply.status_code == 200
    assert reply.json()["order"]["orderNumber"] is None
    assert addon_store.order_count() == count + 1


def test_bad_json_body_is_a_400_with_the_reason_in_a_header(addon_store: XCartSandbox) -> None:
    reply = httpx.put(
        f"{addon_store.base_url}/admin.php",
        params={"target": "RESTAPI", "_key": addon_store.rw_key, "_path": "product/1"},
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert reply.status_code == 400
    assert reply.headers["x-rest-error"] == "Input data is incorrect"
    assert reply.content == b""


def test_builtin_flavour_wire() -> None:
    app = make_sandbox("xcart", flavour="builtin")
    assert isinstance(app, XCartSandbox)
    app.seed(3, 5, 2, 1)
    with SandboxServer(app):
        assert httpx.get(f"{app.base_url}/api/orders", timeout=5).status_code == 401
        ok = httpx.get(f"{app.base_url}/api/orders", headers={"X-Auth-Token": app.rw_key}, timeout=5)
        assert ok.status_code == 200
        assert len(ok.json()) == 6  # five placed orders and one "not finished"
        read_only = httpx.put(
            f"{app.base_url}/api/products/1",
            json={"amount": 3},
            headers={"X-Auth-Token": app.read_key},
            timeout=5,
        )
        assert read_only.status_code == 403
        wrong = httpx.put(
            f"{app.base_url}/api/orders/1/shipping_status",
            json={"code": "ZZZ"},
            headers={"X-Auth-Token": app.rw_key},
            timeout=5,
        )
        assert wrong.status_code == 400
        assert "Status code 'ZZZ' is wrong" in wrong.text
        assert app.status_renames == []
        redirect = httpx.get(f"{app.base_url}/admin.php", params={"target": "RESTAPI"}, timeout=5)
        assert redirect.status_code == 302


# -- the connector end to end ----------------------------------------------------------------------


def test_connect_without_side_effects(any_store: XCartSandbox) -> None:
    facts = connect(any_store).test_connection()
    assert facts.details["api_flavour"] == any_store.flavour
    assert facts.can_write is True
    assert facts.base_currency == "USD"
    assert any_store.writes() == []


def test_read_only_key_connects_but_cannot_write(any_store: XCartSandbox) -> None:
    built = build_connector(
        "xcart",
        any_store.base_url,
        {"api_key": any_store.read_key},
        any_store.connector_settings(),
        options=ConnectorOptions(allow_private_hosts=True),
    )
    facts = built.test_connection()
    assert facts.can_write is False
    with pytest.raises(AuthError) as caught:
        built.push_stock([StockUpdate(sku="XC-0001", remote_id="1", quantity=3)])
    assert "read-only" in caught.value.message
    assert any_store.writes() == []


def test_expired_key_is_an_auth_error(any_store: XCartSandbox) -> None:
    any_store.faults.update({"expired_token": True})
    with pytest.raises(AuthError):
        connect(any_store, api_flavour=any_store.flavour).test_connection()


def test_download_every_order_across_pages_then_incrementally(any_store: XCartSandbox) -> None:
    connector = connect(any_store)
    orders, checkpoint = download(connector)
    ids = [order.external_id for order in orders]
    assert len(ids) == len(set(ids)) == any_store.order_count()
    assert len(ids) > 100  # more than two pages on either flavour
    assert all(order.computed_total == order.total for order in orders)
    assert all(order.status_code != "NF" for order in orders)
    new_id = any_store.add_order()
    later, _ = download(connector, checkpoint)
    assert new_id in {order.external_id for order in later}
    assert len(later) < len(orders)


def test_only_the_statuses_to_import_are_downloaded(any_store: XCartSandbox) -> None:
    orders, _ = download(connect(any_store, import_statuses=["A"]))
    assert orders
    assert {any_store.payment_status(order.external_id) for order in orders} == {"A"}


def test_confirm_shipment_shows_on_the_store_once(any_store: XCartSandbox) -> None:
    connector = connect(any_store)
    orders, _ = download(connector)
    order_id = orders[0].external_id
    request = ShipmentRequest(
        order_external_id=order_id, tracking_numbers=("1Z999AA1",), processed_status="S"
    )
    result = connector.confirm_shipment(request)
    assert any_store.order_status(order_id) == "S"
    if any_store.flavour == "addon":
        assert any_store.tracking_numbers(order_id) == ["1Z999AA1"]
        assert result.tracking_sent == ("1Z999AA1",)
    else:  # 5.5's API has no tracking write: status only, and the seller is told
        assert any_store.tracking_numbers(order_id) == []
        assert result.warnings
    writes = any_store.writes()
    connector.confirm_shipment(request)
    assert any_store.writes() == writes
    assert any_store.status_renames == []


def test_confirm_for_a_missing_order_creates_nothing(addon_store: XCartSandbox) -> None:
    count = addon_store.order_count()
    with pytest.raises(Exception, match="no order with id 999999"):
        connect(addon_store).confirm_shipment(
            ShipmentRequest(order_external_id="999999", tracking_numbers=("1Z",), processed_status="S")
        )
    assert addon_store.order_count() == count
    assert addon_store.writes() == []


def test_push_stock_and_prices_read_back(any_store: XCartSandbox) -> None:
    connector = connect(any_store)
    listings = connector.list_listings()
    assert any(item.remote_variant_id for item in listings)
    assert len({item.sku for item in listings}) == len(listings)
    chosen = [item for item in listings if item.remote_variant_id][:2] + listings[:2]
    stock = [
        StockUpdate(sku=i.sku, remote_id=i.remote_id, remote_variant_id=i.remote_variant_id, quantity=30 + n)
        for n, i in enumerate(chosen)
    ]
    prices = [
        PriceUpdate(
            sku=i.sku,
            remote_id=i.remote_id,
            remote_variant_id=i.remote_variant_id,
            price=Decimal(f"{9 + n}.95"),
        )
        for n, i in enumerate(chosen)
    ]
    assert all(result.ok for result in connector.push_stock(stock))
    assert all(result.ok for result in connector.push_prices(prices))
    for update in stock:
        assert any_store.stock_of(update.sku) == update.quantity
    for price_update in prices:
        assert any_store.price_of(price_update.sku) == price_update.price
    reread = {item.sku: item for item in connector.list_listings()}
    assert all(reread[u.sku].quantity == u.quantity for u in stock)
    assert all(reread[p.sku].price == p.price for p in prices)


def test_the_same_work_through_faults_ends_in_the_same_state(any_store: XCartSandbox) -> None:
    clean, _ = download(connect(any_store))
    any_store.faults.update(
        {
            "error_rate": 0.25,
            "kinds": ["500", "timeout", "garbage", "truncated"],
            "timeout_seconds": 0.2,
            "seed": 5,
        }
    )
    connector = build_connector(
        "xcart",
        any_store.base_url,
        any_store.connector_credentials(),
        any_store.connector_settings(),
        options=ConnectorOptions(allow_private_hosts=True, timeout=0.5, max_retries=2, backoff=0.01),
    )
    faulty, _ = retrying(lambda: download(connector))
    assert {o.external_id for o in faulty} == {o.external_id for o in clean}

    order_id = clean[-1].external_id
    request = ShipmentRequest(
        order_external_id=order_id, tracking_numbers=("TRACK-F-1",), processed_status="S"
    )
    retrying(lambda: connector.confirm_shipment(request))
    retrying(lambda: connector.confirm_shipment(request))
    listings = retrying(connector.list_listings)
    target = listings[0]
    update = StockUpdate(sku=target.sku, remote_id=target.remote_id, quantity=7)
    assert retrying(lambda: connector.push_stock([update]))[0].ok

    any_store.faults.update({"error_rate": 0.0})
    assert any_store.order_status(order_id) == "S"
    assert any_store.stock_of(target.sku) == 7
    expected_tracking = ["TRACK-F-1"] if any_store.flavour == "addon" else []
    assert any_store.tracking_numbers(order_id) == expected_tracking
    effects = Counter(
        (w["kind"], w["key"], str(w["value"]))
        for w in any_store.writes()
        if w["kind"] in ("tracking", "status")
    )
    assert all(count == 1 for count in effects.values()), effects
    assert any_store.status_renames == []


def test_store_clock_skew_moves_the_checkpoint_with_the_store() -> None:
    app = make_sandbox("xcart", flavour="addon", faults=Faults(clock_skew_seconds=-7200))
    assert isinstance(app, XCartSandbox)
    app.seed(3, 10, 2, 1)
    with SandboxServer(app):
        _, checkpoint = download(connect(app))
    assert checkpoint is not None
    since = json.loads(checkpoint)["since"]
    assert abs(since - (time.time() - 7200)) < 60


def test_a_file_backed_store_keeps_its_keys_and_data(tmp_path: Any) -> None:
    path = str(tmp_path / "xcart.db")
    first = XCartSandbox(db_path=path)
    first.seed(3, 4, 2, 1)
    second = XCartSandbox(db_path=path)
    assert (second.rw_key, second.read_key) == (first.rw_key, first.read_key)
    assert second.order_count() == first.order_count()
