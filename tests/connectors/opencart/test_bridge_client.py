"""The bridge client on its own: signing, mapping of recorded bridge replies, and every failure mapped to
the contract's typed errors with words a seller can act on. Replies are recorded from the real PHP
bridge (``tests/fixtures/opencart/bridge/``) and replayed with respx."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import PriceUpdate, StockUpdate
from connectors.errors import AuthError, PermanentError, ProtocolError, RateLimited, TransientError
from connectors.http import StoreHttp
from connectors.opencart.bridge_client import (
    BRIDGE_PHP_PATH,
    BridgeClient,
    canonical_query,
    sign_request,
)
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import OpenCartSandbox, string_to_sign
from connectors.sandbox.opencart import canonical_query as sandbox_canonical_query

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "opencart" / "bridge"
BASE = "https://shop.example.com"
BRIDGE = f"{BASE}/storelink-bridge.php"
KEY = "k" * 64


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def router() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def make_client(router: respx.MockRouter, **http_options: Any) -> BridgeClient:
    http = StoreHttp(
        BASE,
        platform="opencart",
        client=httpx.Client(),
        allow_private_hosts=True,
        max_retries=http_options.pop("max_retries", 2),
        backoff=0,
        sleep=lambda _seconds: None,
    )
    return BridgeClient(http, "Storelink", KEY)


def route(router: respx.MockRouter, action: str) -> respx.Route:
    return router.route(url__startswith=BRIDGE, params={"action": action})


def test_the_bridge_file_ships_with_the_package() -> None:
    assert BRIDGE_PHP_PATH.name == "storelink-bridge.php"
    assert BRIDGE_PHP_PATH.read_text(encoding="utf-8").startswith("<?php")


def test_requests_are_signed_and_the_key_never_travels(router: respx.MockRouter) -> None:
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=fixture("info_4.1.json"))

    route(router, "info").mock(side_effect=reply)
    make_client(router).info()
    request = seen[0]
    headers = request.headers
    assert KEY not in str(request.url)
    assert KEY not in str(headers)
    query = request.url.query.decode()
    assert query == canonical_query([("action", "info")])
    expected = sign_request(
        KEY,
        "GET",
        "/storelink-bridge.php",
        query,
        "Storelink",
        headers["x-storelink-timestamp"],
        headers["x-storelink-nonce"],
        b"",
    )
    assert headers["x-storelink-signature"] == expected
    # the sandbox (a separate implementation of the PHP rules) builds the same string to sign
    assert sandbox_canonical_query([("b", "x y"), ("a", "~&=")]) == canonical_query(
        [("b", "x y"), ("a", "~&=")]
    )
    assert string_to_sign("GET", "/p", "a=1", "u", "1", "n", b"").startswith(
        "STORELINK1\nGET\n/p\na=1\nu\n1\nn\n"
    )


def test_info_maps_store_facts(router: respx.MockRouter) -> None:
    route(router, "info").mock(return_value=httpx.Response(200, json=fixture("info_4.1.json")))
    info = make_client(router).info()
    assert info.schema_family == "4.1"
    assert info.opencart_version == "4.1.0.4"
    assert info.currency == "USD"
    assert info.prices_include_tax is True
    assert info.timezone == "Europe/Berlin"
    assert info.stores[0] == (0, "Storelink Demo & Co")


def test_orders_are_mapped_once_unescaped_in_utc_and_the_order_currency(router: respx.MockRouter) -> None:
    route(router, "info").mock(return_value=httpx.Response(200, json=fixture("info_4.1.json")))
    page = fixture("orders_page_4.1.json")
    page["has_more"] = False
    orders_route = route(router, "orders").mock(return_value=httpx.Response(200, json=page))
    client = make_client(router)
    pages = list(client.fetch_orders(None, lookback_days=10, import_statuses=["1", "2"], page_size=3))
    sent = orders_route.calls[0].request.url.params
    assert sent["since"] == "2024-05-10 12:00:00"  # the store's clock minus the look-back, store time
    assert sent["statuses"] == "1,2"
    assert json.loads(pages[-1].checkpoint)["cursor"] == page["cursor"]
    first, second, euro = pages[0].orders
    assert first.lines[0].name == 'Cinema 80" Display'
    assert second.lines[1].name == "Product 10 & Co (Red)"
    assert first.placed_at == datetime(2024, 5, 10, 10, 0, tzinfo=UTC)  # Europe/Berlin, summer time
    assert first.total == Decimal("233.34")
    assert first.computed_total == first.total
    assert first.billing_address.country_code in ("DE", "GB", "US")
    assert euro.currency == "EUR"
    assert euro.total == (Decimal("101.1800") * Decimal("0.78460002")).quantize(Decimal("0.01"))
    line = euro.lines[0]
    assert line.options == (("Size", "M"),)
    assert line.sku == "SL-0009-M"
    assert line.remote_variant_id


def test_a_short_page_that_claims_more_is_an_error(router: respx.MockRouter) -> None:
    route(router, "info").mock(return_value=httpx.Response(200, json=fixture("info_4.1.json")))
    page = fixture("orders_page_4.1.json")  # 3 orders, has_more true
    route(router, "orders").mock(return_value=httpx.Response(200, json=page))
    with pytest.raises(ProtocolError) as caught:
        list(make_client(router).fetch_orders(None, lookback_days=10, import_statuses=[], page_size=5))
    assert caught.value.code == "short_page"


def test_listings_include_option_values_with_absolute_prices(router: respx.MockRouter) -> None:
    route(router, "products").mock(
        return_value=httpx.Response(200, json={**fixture("products_4.1.json"), "has_more": False})
    )
    listings = {listing.sku: listing for listing in make_client(router).list_listings()}
    product = listings["SL-0003"]
    assert listings["SL-0003-M"].price == product.price + Decimal("2.00")
    assert listings["SL-0003-L"].price == product.price - Decimal("1.00")
    assert listings["SL-0003-M"].remote_id == product.remote_id
    assert listings["SL-0004"].name == 'Cinema 40" Display'
    plain = {listing.sku for listing in make_client(router).list_listings(use_options=False)}
    assert "SL-0003-M" not in plain
    assert "SL-0003" in plain


def test_push_batches_send_ids_and_map_results(router: respx.MockRouter) -> None:
    bodies: list[dict[str, Any]] = []

    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(
            200,
            json={
                "ok": True,
                "results": [
                    {
                        "index": i,
                        "ok": item["product_id"] != 404,
                        "error": {"code": "not_found", "message": "gone"},
                    }
                    for i, item in enumerate(body["items"])
                ],
            },
        )

    route(router, "set_stock").mock(side_effect=reply)
    route(router, "set_price").mock(side_effect=reply)
    client = make_client(router)
    results = client.push_stock(
        [
            StockUpdate("A", "1", 5),
            StockUpdate("B", "2", -3, "7"),
            StockUpdate("C", "x", 1),
            StockUpdate("D", "404", 1),
        ]
    )
    assert bodies[0]["items"] == [
        {"product_id": 1, "quantity": 5},
        {"product_id": 2, "product_option_value_id": 7, "quantity": 0},
        {"product_id": 404, "quantity": 1},
    ]
    assert [r.ok for r in results] == [True, True, False, False]
    assert results[3].error == "gone"
    prices = client.push_prices(
        [PriceUpdate("A", "1", Decimal("19.955")), PriceUpdate("B", "2", Decimal("-1"))]
    )
    assert bodies[1]["items"] == [{"product_id": 1, "price": "19.9550"}]
    assert [r.ok for r in prices] == [True, False]


@pytest.mark.parametrize(
    ("reply", "error_type", "code", "words"),
    [
        (httpx.Response(404, html="<h1>Not Found</h1>"), PermanentError, "bridge_missing", "upload it"),
        (
            httpx.Response(200, html="<html><body>Welcome to our shop</body></html>"),
            ProtocolError,
            "not_bridge",
            "storelink-bridge.php",
        ),
        (httpx.Response(200, text='{"ok":true,"bridge_ver'), ProtocolError, "not_bridge", "instead of"),
        (
            httpx.Response(403, json=fixture("error_ip_not_allowed.json")),
            AuthError,
            "ip_not_allowed",
            "198.51.100.23",
        ),
        (httpx.Response(401, json=fixture("error_clock_skew.json")), AuthError, "clock_skew", "420 seconds"),
        (
            httpx.Response(401, json={"ok": False, "error": {"code": "bad_signature", "message": "x"}}),
            AuthError,
            "bad_signature",
            "Copy the key again",
        ),
        (
            httpx.Response(401, json={"ok": False, "error": {"code": "unauthorized", "message": "x"}}),
            AuthError,
            "unauthorized",
            "refused Storelink's key",
        ),
        (
            httpx.Response(401, json={"ok": False, "error": {"code": "unknown_user", "message": "x"}}),
            AuthError,
            "unknown_user",
            "Storelink",
        ),
        (
            httpx.Response(403, json={"ok": False, "error": {"code": "user_disabled", "message": "x"}}),
            AuthError,
            "user_disabled",
            "enable it",
        ),
        (
            httpx.Response(404, json={"ok": False, "error": {"code": "unknown_action", "message": "x"}}),
            PermanentError,
            "bridge_outdated",
            "replace the file",
        ),
        (
            httpx.Response(200, json={"name": "Storelink bridge", "bridge_version": "1.0.0"}),
            AuthError,
            "auth_required",
            "headers",
        ),
        (
            httpx.Response(200, json={**fixture("info_4.1.json"), "bridge_version": "0.9.0"}),
            PermanentError,
            "bridge_outdated",
            "0.9.0",
        ),
    ],
)
def test_failures_become_typed_errors_with_seller_words(
    router: respx.MockRouter, reply: httpx.Response, error_type: type[Exception], code: str, words: str
) -> None:
    route(router, "info").mock(return_value=reply)
    with pytest.raises(error_type) as caught:
        make_client(router).info()
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert words in str(caught.value)


def test_server_errors_are_retried_with_a_fresh_nonce_then_transient(router: respx.MockRouter) -> None:
    info = route(router, "info").mock(
        return_value=httpx.Response(
            503, json={"ok": False, "error": {"code": "store_db_unavailable", "message": "no database"}}
        )
    )
    with pytest.raises(TransientError) as caught:
        make_client(router, max_retries=2).info()
    assert caught.value.code == "store_db_unavailable"
    nonces = {call.request.headers["x-storelink-nonce"] for call in info.calls}
    assert len(info.calls) == 3
    assert len(nonces) == 3


def test_writes_are_not_retried_blindly(router: respx.MockRouter) -> None:
    history = route(router, "add_history").mock(return_value=httpx.Response(500, text="<b>Fatal error</b>"))
    with pytest.raises(TransientError):
        make_client(router).add_history("5", "3", "UPS 1Z", True)
    assert len(history.calls) == 1


def test_a_429_with_a_short_wait_is_sent_again_even_for_a_write(router: respx.MockRouter) -> None:
    # a 429 is refused before the bridge runs, so re-sending (re-signed) cannot double a write
    ok = {"ok": True, "results": [{"index": 0, "ok": True}]}
    stock = route(router, "set_stock").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "2"}, json={}), httpx.Response(200, json=ok)]
    )
    slept: list[float] = []
    client = make_client(router)
    client.http.sleep = slept.append
    results = client.push_stock([StockUpdate("A", "1", 5)])
    assert [result.ok for result in results] == [True]
    assert slept == [pytest.approx(2.0, abs=0.1)]  # the gate waits out what is left of it
    assert len({call.request.headers["x-storelink-nonce"] for call in stock.calls}) == 2


def test_a_429_with_a_long_wait_goes_back_to_the_scheduler(router: respx.MockRouter) -> None:
    history = route(router, "add_history").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "600"}, json={})
    )
    with pytest.raises(RateLimited) as caught:
        make_client(router).add_history("5", "3", "UPS 1Z", True)
    assert caught.value.retry_after == 600
    assert len(history.calls) == 1


def test_timeouts_are_transient(router: respx.MockRouter) -> None:
    route(router, "statuses").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError):
        make_client(router).statuses()


def test_a_store_without_the_bridge_tells_the_seller_to_upload_it() -> None:
    app = OpenCartSandbox(family="3.0.3", bridge_installed=False)
    with SandboxServer(app) as server:
        http = StoreHttp(server.url, platform="opencart", allow_private_hosts=True)
        client = BridgeClient(http, **app.connector_credentials())
        with pytest.raises(PermanentError) as caught:
            client.info()
    assert caught.value.code == "bridge_missing"
    assert "next to index.php" in str(caught.value)


def test_info_carries_each_currencys_decimal_places_including_disabled_ones(
    router: respx.MockRouter,
) -> None:
    reply = fixture("info_4.1.json")
    reply["currencies"] += [
        {"code": "JPY", "title": "Yen", "value": "150.0", "decimal_place": 0, "status": False},
        {"code": "KWD", "title": "Dinar", "value": "0.3", "decimal_place": "3", "status": True},
        {"code": "BHD", "title": "Dinar", "value": "0.4", "decimal_place": "x", "status": True},
    ]
    route(router, "info").mock(return_value=httpx.Response(200, json=reply))
    info = make_client(router).info()
    assert info.currencies == ("EUR", "GBP", "USD", "KWD", "BHD")
    assert info.places_for("JPY") == 0  # disabled now, but old orders may be in it
    assert info.places_for("KWD") == 3
    assert info.places_for("BHD") == 3  # unreadable decimal_place: ISO 4217
    assert info.places_for("EUR") == 2
    assert info.places_for("ISK") == 0  # not on the store at all: ISO 4217
    assert info.places_for("CHF") == 2


def test_order_amounts_use_the_order_currencys_decimals_from_the_store(router: respx.MockRouter) -> None:
    reply = fixture("info_4.1.json")
    reply["currencies"].append(
        {"code": "JPY", "title": "Yen", "value": "150.12345678", "decimal_place": 0, "status": True}
    )
    route(router, "info").mock(return_value=httpx.Response(200, json=reply))
    page = fixture("orders_page_4.1.json")
    order_in_yen = page["orders"][0]
    order_in_yen["currency_code"] = "JPY"
    order_in_yen["currency_value"] = "150.12345678"
    client = make_client(router)
    client.info()
    order = client._map_order(order_in_yen)
    total = next(Decimal(row["value"]) for row in order_in_yen["totals"] if row["code"] == "total")
    assert order.currency == "JPY"
    assert order.total == (total * Decimal("150.12345678")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert order.total.as_tuple().exponent == 0
    assert all(line.unit_price.as_tuple().exponent == 0 for line in order.lines)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("date_added", "2024-13-45 10:00:00"),
        ("date_added", "10/05/2024 12:00"),
        ("date_added", "0000-00-00 00:00:00"),
        ("date_added", ""),
        ("date_added", None),
        ("change_time", "yesterday"),
        ("date_modified", "2024-05-10T12:00:00Z"),
    ],
)
def test_an_order_date_that_cannot_be_read_fails_the_page_naming_the_order(
    router: respx.MockRouter, key: str, value: str | None
) -> None:
    route(router, "info").mock(return_value=httpx.Response(200, json=fixture("info_4.1.json")))
    page = fixture("orders_page_4.1.json")
    page["has_more"] = False
    bad = page["orders"][1]
    if key == "date_modified":
        bad.pop("change_time")
    bad[key] = value
    route(router, "orders").mock(return_value=httpx.Response(200, json=page))
    client = make_client(router)
    with pytest.raises(ProtocolError) as caught:
        list(client.fetch_orders(None, lookback_days=10, import_statuses=[]))
    assert caught.value.code == "bad_date"
    assert f"order {bad['order_id']} " in caught.value.message
    assert key in caught.value.message
    if value:
        assert repr(value) in caught.value.message


def test_without_change_time_the_modification_date_is_the_update_time(router: respx.MockRouter) -> None:
    route(router, "info").mock(return_value=httpx.Response(200, json=fixture("info_4.1.json")))
    raw = fixture("orders_page_4.1.json")["orders"][0]
    raw.pop("change_time")
    raw["date_modified"] = "2024-05-11 12:00:00"
    order = make_client(router)._map_order(raw)
    assert order.updated_at == datetime(2024, 5, 11, 10, 0, tzinfo=UTC)  # Europe/Berlin, summer time


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "../etc/passwd", "CEST"])
def test_an_unknown_store_timezone_reads_dates_as_utc(router: respx.MockRouter, zone: str) -> None:
    reply = fixture("info_4.1.json")
    reply["timezone"] = zone
    route(router, "info").mock(return_value=httpx.Response(200, json=reply))
    raw = fixture("orders_page_4.1.json")["orders"][0]
    raw["date_added"] = "2024-05-10 12:00:00"
    order = make_client(router)._map_order(raw)
    assert order.placed_at == datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


def test_an_older_bridge_is_judged_by_the_declared_closing_ids(router: respx.MockRouter) -> None:
    """A 1.0.0 bridge declares no complete/processing lists: the connector's ids decide."""
    route(router, "info").mock(return_value=httpx.Response(200, json=fixture("info_4.1.json")))
    statuses = [
        {"order_status_id": i, "name": n} for i, n in ((1, "Pending"), (7, "Canceled"), (12, "Reversed"))
    ]
    route(router, "statuses").mock(return_value=httpx.Response(200, json={"ok": True, "statuses": statuses}))
    page = fixture("orders_page_4.1.json")
    page["has_more"] = False
    page["orders"][0]["order_status_id"] = 7
    route(router, "orders").mock(return_value=httpx.Response(200, json=page))
    client = make_client(router)
    assert client.info().features == ()
    assert {s.code: s.closes_order for s in client.statuses()} == {"1": False, "7": True, "12": True}
    orders = next(client.fetch_orders(None, lookback_days=10, import_statuses=["1"], page_size=3)).orders
    assert [order.closed for order in orders] == [True, False, False]


def test_the_checkpoint_remembers_every_status_ever_imported(router: respx.MockRouter) -> None:
    info = fixture("info_4.1.json") | {"features": ["orders_match_ever", "status_sets"]}
    route(router, "info").mock(return_value=httpx.Response(200, json=info))
    page = fixture("orders_page_4.1.json") | {"has_more": False}
    orders_route = route(router, "orders").mock(return_value=httpx.Response(200, json=page))
    client = make_client(router)
    first = list(client.fetch_orders(None, lookback_days=10, import_statuses=["2", "1"], page_size=3))
    assert orders_route.calls[-1].request.url.params["match"] == "ever"
    assert json.loads(first[-1].checkpoint)["statuses"] == ["1", "2"]
    # the seller takes Pending off the list: orders imported while Pending are still followed
    again = list(
        client.fetch_orders(first[-1].checkpoint, lookback_days=10, import_statuses=["2"], page_size=3)
    )
    sent = orders_route.calls[-1].request.url.params
    assert (sent["statuses"], sent["match"], sent["cursor"]) == ("1,2", "ever", page["cursor"])
    assert json.loads(again[-1].checkpoint)["statuses"] == ["1", "2"]
    # a version 1 checkpoint (cursor only) still resumes where it stopped
    list(
        client.fetch_orders(
            json.dumps({"v": 1, "cursor": page["cursor"]}), lookback_days=1, import_statuses=["2"]
        )
    )
    assert orders_route.calls[-1].request.url.params["statuses"] == "2"
    # importing every status means no filter at all
    list(client.fetch_orders(first[-1].checkpoint, lookback_days=10, import_statuses=[]))
    assert "statuses" not in orders_route.calls[-1].request.url.params
