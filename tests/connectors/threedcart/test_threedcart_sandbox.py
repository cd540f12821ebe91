"""The 3DCart sandbox over real loopback HTTP: its wire format, and the connector against it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

from connectors.base import (
    ConnectorOptions,
    Order,
    PriceUpdate,
    ShipmentLine,
    ShipmentRequest,
    StockUpdate,
)
from connectors.errors import (
    AuthError,
    OrderClosedError,
    PermanentError,
    ProtocolError,
    RateLimited,
    TransientError,
)
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer, make_sandbox
from connectors.sandbox.threedcart import ThreeDCartSandbox
from connectors.threedcart.callback import parse_callback
from connectors.threedcart.connector import ThreeDCartConnector

T = TypeVar("T")


class Running:
    def __init__(self, **sandbox_options: Any) -> None:
        self.app: ThreeDCartSandbox = make_sandbox("threedcart", **sandbox_options)  # type: ignore[assignment]
        self.app.seed(12, 45, 6, 3)
        self.server = SandboxServer(self.app).start()
        self.api = f"{self.server.url}/3dCartWebAPI/v2"

    def connector(self, timeout: float = 5.0, **settings: Any) -> ThreeDCartConnector:
        built = build_connector(
            "threedcart",
            self.app.connector_store_url(),
            self.app.connector_credentials(),
            self.app.connector_settings() | settings,
            options=ConnectorOptions(
                allow_private_hosts=True,
                timeout=timeout,
                max_retries=2,
                backoff=0.01,
                **self.app.connector_options(),
            ),
        )
        assert isinstance(built, ThreeDCartConnector)
        built.order_page_size = 10  # several pages out of a small store
        return built

    def headers(self) -> dict[str, str]:
        keys = self.app.connector_options()["app_keys"]
        return {
            "SecureURL": self.app.secure_url,
            "PrivateKey": keys["threedcart_private_key"],
            "Token": self.app.token,
        }

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.api}/{path}", params=params, headers=self.headers(), timeout=5)

    def put(self, path: str, body: Any) -> httpx.Response:
        return httpx.put(f"{self.api}/{path}", json=body, headers=self.headers(), timeout=5)


@pytest.fixture
def store() -> Iterator[Running]:
    running = Running()
    yield running
    running.server.stop()


def download(connector: ThreeDCartConnector, checkpoint: str | None = None) -> tuple[list[Any], str | None]:
    orders: list[Any] = []
    last = checkpoint
    for page in connector.fetch_orders(checkpoint):
        orders.extend(page.orders)
        last = page.checkpoint
    return orders, last


def with_retries(operation: Callable[[], T], attempts: int = 40) -> T:
    for attempt in range(attempts):
        try:
            return operation()
        except (TransientError, ProtocolError, RateLimited):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# -- the wire format ---------------------------------------------------------------------------------


def test_requests_without_the_three_headers_are_401(store: Running) -> None:
    assert httpx.get(f"{store.api}/Orders", timeout=5).status_code == 401
    wrong = store.headers() | {"SecureURL": "https://another.3dcartstores.com"}
    assert httpx.get(f"{store.api}/Orders", headers=wrong, timeout=5).status_code == 401
    assert store.get("Orders").status_code == 200


def test_lists_are_one_based_with_404_empty_400_past_end_and_count_objects(store: Running) -> None:
    total = store.get("Orders", countonly=1).json()
    assert total == {"TotalCount": 45}
    first = store.get("Orders", limit=5, offset=1).json()
    assert len(first) == 5
    assert [o["OrderID"] for o in first] == sorted(o["OrderID"] for o in first)
    assert store.get("Orders", limit=5, offset=0).json() == first
    past = store.get("Orders", limit=5, offset=46)
    assert past.status_code == 400
    assert past.json()[0]["Message"] == "Offset amount exceeds the total number of records"
    empty = store.get("Orders", datestart="01/01/2099")
    assert empty.status_code == 404
    assert empty.content == b""
    assert store.get("Orders").json().__len__() == 10  # default limit
    assert len(store.get("Orders", limit=1000).json()) == 45  # clamped to 300, silently


def test_single_gets_are_arrays_of_one_with_pascal_case_and_naive_times(store: Running) -> None:
    (order,) = store.get("Orders/1001").json()  # the path takes the invoice number (the docs)
    assert (order["OrderID"], order["InvoiceNumber"]) == (5001, 1001)
    (same,) = store.get("Orders", orderid=5001).json()  # the recorded way to read one OrderID
    assert same["OrderID"] == 5001
    assert {"InvoiceNumberPrefix", "ShipmentList", "OrderItemList", "OrderAmount"} <= set(order)
    datetime.strptime(order["OrderDate"], "%Y-%m-%dT%H:%M:%S")  # noqa: DTZ007 - naive on the wire
    assert store.get("Orders/999999").status_code == 404
    (product,) = store.get("Products/11").json()
    assert product["SKUInfo"]["CatalogID"] == 11


def test_lastupdatestart_is_honoured_to_the_date_only(store: Running) -> None:
    order_id = store.app.add_order()
    (order,) = store.get("Orders", orderid=order_id).json()
    stamp = datetime.strptime(order["LastUpdate"], "%Y-%m-%dT%H:%M:%S")  # noqa: DTZ007
    late_same_day = stamp.replace(hour=23, minute=59, second=59).strftime("%m/%d/%Y %H:%M:%S")
    ids = [o["OrderID"] for o in store.get("Orders", lastupdatestart=late_same_day, limit=300).json()]
    assert int(order_id) in ids
    after = stamp.strftime("%m/%d/%Y %H:%M:%S")
    assert store.get("Orders", datestart=late_same_day).status_code in (200, 404)
    assert int(order_id) in [o["OrderID"] for o in store.get("Orders", datestart=after, limit=300).json()]


def test_product_batch_put_answers_per_item_with_206(store: Running) -> None:
    reply = store.put(
        "Products", [{"SKUInfo": {"CatalogID": 11, "Stock": 7.5}}, {"SKUInfo": {"CatalogID": 999}}]
    )
    assert reply.status_code == 206
    assert [(r["Value"], r["Status"]) for r in reply.json()] == [("11", "200"), ("999", "404")]
    assert store.app.stock_of("SB-0011") == 7  # parent stock is a decimal on the store; read back floored


def test_variant_stock_must_be_an_integer(store: Running) -> None:
    reply = store.put(
        "Products/12/AdvancedOptions/120", {"AdvancedOptionCode": "120", "AdvancedOptionStock": 3.5}
    )
    assert reply.status_code == 400
    assert "integer" in reply.json()[0]["Message"]


def test_shipment_method_name_with_other_characters_is_400(store: Running) -> None:
    reply = store.put("Orders/5001/Shipments/0", {"ShipmentID": 0, "ShipmentMethodName": "UPS® Ground"})
    assert reply.status_code == 400
    assert store.app.writes() == []


def test_order_and_product_puts_replace_the_collections_they_carry(store: Running) -> None:
    before = store.app.shipments_of("5005")
    assert store.put("Orders/5005", {"OrderID": 5005, "ShipmentList": []}).status_code == 200
    assert store.app.shipments_of("5005") == []
    assert before
    assert (
        store.put("Products/12", {"SKUInfo": {"CatalogID": 12}, "AdvancedOptionList": []}).status_code == 200
    )
    assert store.get("Products/12/AdvancedOptions").status_code == 404
    assert [r["collection"] for r in store.app.replacements()] == ["ShipmentList", "AdvancedOptionList"]


def test_leaky_bucket_answers_429_with_retry_after() -> None:
    running = Running(bucket_size=3, leak_rate=0.5)
    try:
        codes = [running.get("OrderStatus").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = running.get("OrderStatus")
        assert int(limited.headers["Retry-After"]) >= 1
    finally:
        running.server.stop()


def test_connector_waits_out_the_store_bucket() -> None:
    running = Running(bucket_size=2, leak_rate=5)
    try:
        connector = running.connector()
        started = time.monotonic()
        facts = connector.test_connection()  # StoreSettings + OrderStatus + ... exceeds a bucket of 2
        orders, _ = download(connector)
        assert facts.base_currency == "USD"
        assert len(orders) == running.app.order_count()
        assert time.monotonic() - started < 15
    finally:
        running.server.stop()


# -- the connector against the sandbox ---------------------------------------------------------------


def test_connect_reports_store_facts_without_writing(store: Running) -> None:
    facts = store.connector().test_connection()
    assert facts.base_currency == "USD"
    assert facts.timezone == "America/New_York"
    assert facts.warnings == ()
    assert {"1", "4", "7"} <= {s.code for s in facts.order_statuses}
    assert store.app.writes() == []


def test_downloads_every_order_once_across_pages(store: Running) -> None:
    store.app.add_order(status=7)  # an abandoned checkout: never downloaded
    orders, checkpoint = download(store.connector())
    ids = [order.external_id for order in orders]
    assert len(ids) == len(set(ids)) == store.app.order_count() == 45
    assert checkpoint
    for order in orders:
        assert order.computed_total == order.total
        assert order.placed_at.tzinfo is not None
        assert order.lines


def test_incremental_download_finds_a_new_order_even_with_a_skewed_store_clock(store: Running) -> None:
    connector = store.connector()
    _, checkpoint = download(connector)
    store.app.faults.update({"clock_skew_seconds": -3 * 3600})
    new_id = store.app.add_order()
    orders, _ = download(connector, checkpoint)
    assert [o.external_id for o in orders] == [new_id]


def test_a_store_time_in_the_autumn_fold_is_read_as_the_earlier_instant(store: Running) -> None:
    order_id = store.app.add_order()
    fold = datetime(2025, 11, 2, 1, 30)  # happens twice in New York
    store.app.set_order_times(order_id, placed=fold, updated=fold)
    orders, _ = download(store.connector(order_lookback_days=90, import_statuses=[]), None)
    by_id = {o.external_id: o for o in orders}
    if order_id in by_id:  # only within the look-back window relative to today
        assert by_id[order_id].placed_at == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    connector = store.connector()
    raw = connector._read_order(order_id)
    from connectors.threedcart.mapping import map_order

    mapped = map_order(raw, zone=connector.zone, currency="USD", status_names={})
    assert mapped.placed_at == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)


def test_shipment_is_confirmed_on_the_store_once(store: Running) -> None:
    connector = store.connector()
    request = ShipmentRequest("5001", ("1Z999AA10123456784",), carrier="UPS®", processed_status="4")
    connector.confirm_shipment(request)
    assert store.app.tracking_numbers("5001") == ["1Z999AA10123456784"]
    assert store.app.order_status("5001") == "4"
    (shipment,) = store.app.shipments_of("5001")
    assert shipment["ShipmentOrderStatus"] == 4
    assert shipment["ShipmentMethodName"] == "UPS"
    writes = store.app.writes()
    assert [w["kind"] for w in writes] == ["tracking", "status", "status"]
    connector.confirm_shipment(request)
    assert store.app.writes() == writes
    assert store.app.replacements() == []


def test_partial_then_full_shipment_of_a_two_shipment_order(store: Running) -> None:
    order_id = store.app.add_order(shipments=2, rng_seed=5)
    items = store.app.items_of(order_id)
    first_shipment = items[0]["ItemShipmentID"]
    connector = store.connector()
    connector.confirm_shipment(
        ShipmentRequest(
            order_id,
            ("PART-1",),
            lines=(ShipmentLine(str(items[0]["ItemIndexID"]), 1),),
            processed_status="4",
        )
    )
    assert store.app.order_status(order_id) == "3"
    shipped = {s["ShipmentID"]: s["ShipmentTrackingCode"] for s in store.app.shipments_of(order_id)}
    assert shipped[first_shipment] == "PART-1"
    connector.confirm_shipment(ShipmentRequest(order_id, ("REST-2",), processed_status="4"))
    assert store.app.order_status(order_id) == "4"
    assert sorted(store.app.tracking_numbers(order_id)) == ["PART-1", "REST-2"]


def test_stock_and_price_push_read_back(store: Running) -> None:
    connector = store.connector()
    listings = connector.list_listings()
    assert any(listing.remote_variant_id for listing in listings)
    chosen = [listings[0], next(item for item in listings if item.remote_variant_id)]
    stock = [StockUpdate(i.sku, i.remote_id, 40 + n, i.remote_variant_id) for n, i in enumerate(chosen)]
    prices = [
        PriceUpdate(i.sku, i.remote_id, Decimal(f"{19 + n}.95"), i.remote_variant_id)
        for n, i in enumerate(chosen)
    ]
    assert all(result.ok for result in connector.push_stock(stock))
    assert all(result.ok for result in connector.push_prices(prices))
    for update in stock:
        assert store.app.stock_of(update.sku) == update.quantity
    for update in prices:
        assert store.app.price_of(update.sku) == update.price
    reread = {item.sku: item for item in store.connector().list_listings()}
    assert [reread[u.sku].quantity for u in stock] == [40, 41]
    assert store.app.replacements() == []


def test_the_same_work_through_faults_ends_in_the_same_state(store: Running) -> None:
    clean, _ = download(store.connector())
    store.app.faults.update(
        {
            "error_rate": 0.25,
            "kinds": ["500", "timeout", "garbage", "truncated"],
            "timeout_seconds": 0.2,
            "seed": 4,
        }
    )
    connector = store.connector(timeout=1.0)
    faulty, _ = with_retries(lambda: download(connector))
    assert {o.external_id for o in faulty} == {o.external_id for o in clean}
    order_id = clean[-1].external_id
    shipment = ShipmentRequest(order_id, ("TRACK-FAULTS-1",), processed_status="4")
    with_retries(lambda: connector.confirm_shipment(shipment))
    with_retries(lambda: connector.confirm_shipment(shipment))
    listings = with_retries(connector.list_listings)
    updates = [StockUpdate(i.sku, i.remote_id, 7, i.remote_variant_id) for i in listings[:4]]
    results = with_retries(lambda: connector.push_stock(updates))
    assert all(result.ok for result in results)
    store.app.faults.update({"error_rate": 0.0})
    assert store.app.tracking_numbers(order_id).count("TRACK-FAULTS-1") == 1
    assert store.app.order_status(order_id) == "4"
    assert [store.app.stock_of(u.sku) for u in updates] == [7, 7, 7, 7]
    tracking = Counter((w["key"], w["value"]) for w in store.app.writes() if w["kind"] == "tracking")
    assert all(count == 1 for count in tracking.values()), tracking
    assert store.app.replacements() == []


def test_expired_or_rotated_token_is_an_auth_error(store: Running) -> None:
    connector = store.connector()
    store.app.faults.update({"expired_token": True})
    with pytest.raises(AuthError):
        connector.test_connection()
    store.app.faults.update({"expired_token": False})
    store.app.rotate_token()
    with pytest.raises(AuthError):
        download(connector)
    assert store.connector().test_connection().base_currency == "USD"  # the new token works


# -- the seller's side: the AUTHORIZE callback -------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append({"body": self.rfile.read(length), "type": self.headers.get("Content-Type", "")})
            payload = json.dumps({"PostBackURL": "https://storelink.example/link"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callbacks/threedcart/", received
    server.shutdown()
    server.server_close()


def test_sandbox_posts_an_authorize_callback_storelink_accepts(
    store: Running, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    reply = store.app.post_callback(url)
    assert reply.status_code == 200
    (posted,) = received
    event = parse_callback(posted["body"], public_key=store.app.public_key)
    assert event.action == "AUTHORIZE"
    assert event.token == store.app.token
    assert event.store_url == store.app.secure_url
    assert abs((event.timestamp - datetime.now(UTC)).total_seconds()) < 120


def test_authorize_button_route_posts_the_callback(
    store: Running, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    reply = httpx.post(
        f"{store.server.url}/admin/rest-api/authorize",
        json={"callback_url": url, "action": "REMOVE"},
        timeout=5,
    )
    assert reply.json() == {"Result": "Authorized", "PostBackURL": "https://storelink.example/link"}
    assert parse_callback(received[0]["body"], public_key=store.app.public_key).action == "REMOVE"


def test_removing_the_app_withdraws_the_token_before_the_remove_callback(
    store: Running, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, _received = receiver
    connector = store.connector()
    assert connector.test_connection().base_currency == "USD"
    store.app.post_callback(url, "REMOVE")
    connector._store_settings = None
    with pytest.raises(AuthError):
        connector.test_connection()
    store.app.rotate_token()  # authorised again: a new token works
    assert store.connector().test_connection().base_currency == "USD"
    forged = store.app.callback_payload("REMOVE", TokenKey="", SecureURL="https://elsewhere.example")
    assert (forged["TokenKey"], forged["SecureURL"]) == ("", "https://elsewhere.example")


def test_cli_style_string_options_and_a_file_database_keep_keys_and_data(tmp_path: Any) -> None:
    path = str(tmp_path / "threedcart.db")
    first = make_sandbox(
        "threedcart", db_path=path, bucket_size="3", leak_rate="1.5", timezone="Europe/London"
    )
    assert isinstance(first, ThreeDCartSandbox)
    assert (first.bucket_size, first.leak_rate) == (3, 1.5)
    first.seed(2, 4, 3, 1)
    again = make_sandbox("threedcart", db_path=path)
    assert again.connector_credentials() == first.connector_credentials()
    assert again.connector_store_url() == first.connector_store_url()
    assert again.order_count() == 4
    assert again.connector_settings()["order_lookback_days"] >= 5


# -- what the recorded live replies showed ---------------------------------------------------------


def test_errors_answered_with_http_200_are_errors_for_every_caller() -> None:
    running = Running(errors_as_200=True)
    try:
        denied = httpx.get(f"{running.api}/StoreSettings", timeout=5)
        assert denied.status_code == 200
        assert denied.json()[0]["Key"] == "Error"
        connector = running.connector()
        orders, _ = download(connector)  # the end of a list said with 200 is still the end
        assert len(orders) == running.app.order_count()
        assert connector.test_connection().base_currency == "USD"
        result = connector.push_stock([StockUpdate("SB-9999", "99999", 3)])
        assert [(r.ok, r.error) for r in result] == [
            (False, "3DCart refused the product update: Product not found")
        ]
        with pytest.raises(PermanentError):
            connector.confirm_shipment(ShipmentRequest("424242", ("1Z",), processed_status="4"))
        running.app.faults.update({"expired_token": True})
        with pytest.raises(AuthError):
            running.connector().test_connection()
        with pytest.raises(AuthError):
            download(running.connector())
        with pytest.raises(AuthError):
            running.connector().push_prices([PriceUpdate("SB-0011", "11", Decimal("9.99"))])
    finally:
        running.server.stop()


def test_a_store_bucket_overflow_said_with_http_200_is_rate_limited() -> None:
    running = Running(errors_as_200=True, bucket_size=1, leak_rate=0.01)
    try:
        connector = running.connector()
        connector.client.get_list("OrderStatus", {}, what="order status list")
        with pytest.raises(RateLimited):
            connector.client.get_list("OrderStatus", {}, what="order status list")
    finally:
        running.server.stop()


def test_bundle_component_lines_keep_their_product_name(store: Running) -> None:
    order_id = store.app.add_order(bundle=True, rng_seed=2)
    (raw_line, *_) = store.app.items_of(order_id)
    assert raw_line["ItemDescription"].startswith("Bundle Item: BUNDLE")
    orders, _ = download(store.connector())
    (downloaded,) = [o for o in orders if o.external_id == order_id]
    product_name = raw_line["ItemDescription"].split("<br>")[1]
    assert downloaded.lines[0].name == product_name
    assert ("Bundle", raw_line["ItemDescription"].split("<br>")[0].split(":", 1)[1].strip()) in (
        downloaded.lines[0].options
    )
    bundled = [o for o in orders if o.lines and any("Bundle" in line.name for line in o.lines)]
    assert bundled == [], "a bundle marker was taken for a product name"


def test_the_shipment_reads_its_own_order_not_the_one_with_that_invoice_number(store: Running) -> None:
    # Invoice numbers and OrderIDs overlap on a store with many orders: OrderID 5002 and the order
    # whose invoice number is 5002 are different orders.
    store.app.set_invoice_number("5001", 5002)
    connector = store.connector()
    connector.confirm_shipment(ShipmentRequest("5002", ("1ZOWN",), processed_status="4"))
    assert store.app.tracking_numbers("5002") == ["1ZOWN"]
    assert "1ZOWN" not in store.app.tracking_numbers("5001")


# -- status changes of known orders ----------------------------------------------------------------


def test_a_known_order_changed_to_a_status_outside_the_import_list_still_arrives(store: Running) -> None:
    connector = store.connector(import_statuses=["1", "2"])
    first, checkpoint = download(connector)
    assert first
    assert {o.status_code for o in first} <= {"1", "2"}
    assert not any(o.closed for o in first)
    cancelled, held, untouched = first[0].external_id, first[1].external_id, first[2].external_id
    store.app.set_order_status(cancelled, 5)
    store.app.set_order_status(held, 6)
    later, checkpoint = download(store.connector(import_statuses=["1", "2"]), checkpoint)
    by_id = {o.external_id: o for o in later}
    assert by_id[cancelled].status_code == "5"
    assert by_id[cancelled].closed, "a cancelled order must stop reserving stock"
    assert by_id[held].status_code == "6"
    assert not by_id[held].closed, "a held order is still to be shipped"
    assert untouched not in by_id
    # An order Storelink never downloaded is still held back by the import statuses.
    never_known = store.app.add_order(status=6)
    store.app.set_order_status(held, 5)  # and a followed order keeps being followed
    last, _ = download(store.connector(import_statuses=["1", "2"]), checkpoint)
    ids = {o.external_id: o for o in last}
    assert never_known not in ids
    assert ids[held].status_code == "5"
    assert ids[held].closed


def test_store_statuses_say_which_close_an_order(store: Running) -> None:
    facts = store.connector().test_connection()
    closing = {s.code for s in facts.order_statuses if s.closes_order}
    assert closing == {"4", "5", "7"}


# -- a shipment the store applied but whose reply was lost ------------------------------------------


def test_the_shipment_carries_its_storelink_reference(store: Running) -> None:
    request = ShipmentRequest("5001", ("1ZREF1",), processed_status="4", reference="SL-1a2b3c4d5e6f")
    store.connector().confirm_shipment(request)
    (shipment,) = store.app.shipments_of("5001")
    assert "SL-1a2b3c4d5e6f" in shipment["ShipmentInternalComment"]


def test_a_retry_after_a_lost_reply_recognises_its_own_write_and_writes_nothing_twice(store: Running) -> None:
    store.app.faults.update({"drop_reply_after_write": 1})
    request = ShipmentRequest("5001", ("1ZLOST1",), processed_status="4", reference="SL-0f0f0f0f0f0f")
    with pytest.raises((TransientError, ProtocolError)):
        store.connector().confirm_shipment(request)
    applied = [w for w in store.app.writes() if w["kind"] == "tracking"]
    assert applied == [{"kind": "tracking", "key": "5001", "value": "1ZLOST1"}], "applied once, reply lost"
    # Meanwhile the seller retypes the tracking number in the admin (a typo fixed): only the
    # reference still says that Storelink wrote this shipment.
    store.put("Orders/5001/Shipments/0", {"ShipmentTrackingCode": "1ZLOST1-FIXED"})
    store.app.clear_writes()
    store.connector().confirm_shipment(request)
    assert [w for w in store.app.writes() if w["kind"] == "tracking"] == [], "the shipment was written twice"
    assert store.app.tracking_numbers("5001") == ["1ZLOST1-FIXED"]
    assert store.app.order_status("5001") == "4"


# -- a store URL 3DCart does not know --------------------------------------------------------------


def test_a_wrong_store_url_tells_the_seller_to_check_the_url(store: Running) -> None:
    wrong = "https://my-shop.3dcartstores.com"
    connector = build_connector(
        "threedcart",
        wrong,
        store.app.connector_credentials(),
        store.app.connector_settings(),
        options=ConnectorOptions(allow_private_hosts=True, timeout=5.0, **store.app.connector_options()),
    )
    with pytest.raises(AuthError) as caught:
        connector.test_connection()
    message = caught.value.message
    assert "check the store URL" in message
    assert wrong in message
    assert message.index("store URL") < message.index("Reauthorise"), "the URL comes first"
    assert store.app.token not in message


# -- an order the store has closed is never shipped -------------------------------------------------


@pytest.mark.parametrize(("status", "name"), [(5, "Cancel"), (4, "Shipped"), (7, "Not Completed")])
def test_a_shipment_for_an_order_the_store_has_closed_is_refused_before_any_write(
    store: Running, status: int, name: str
) -> None:
    store.app.set_order_status("5001", status)
    store.app.clear_writes()
    request = ShipmentRequest("5001", ("1ZCLOSED1",), processed_status="4", reference="SL-c1c1c1c1c1c1")
    with pytest.raises(OrderClosedError) as caught:
        store.connector().confirm_shipment(request)
    assert store.app.writes() == [], "a closed order was written to"
    assert store.app.tracking_numbers("5001") == []
    assert store.app.order_status("5001") == str(status)
    assert name in caught.value.message
    assert "5001" in caught.value.message
    fresh = caught.value.order
    assert isinstance(fresh, Order)
    assert (fresh.external_id, fresh.status_code, fresh.closed) == ("5001", str(status), True)


def test_an_order_on_hold_is_still_shipped(store: Running) -> None:
    store.app.set_order_status("5001", 6)
    store.connector().confirm_shipment(ShipmentRequest("5001", ("1ZHOLD1",), processed_status="4"))
    assert store.app.tracking_numbers("5001") == ["1ZHOLD1"]
    assert store.app.order_status("5001") == "4"


def test_our_own_earlier_write_that_shipped_the_order_is_a_success_not_a_closed_order(
    store: Running,
) -> None:
    # Both writes landed (the order is now Shipped, a closing status) but Storelink never recorded
    # the result (the last reply lost, the worker stopped): the retry finds its own reference.
    request = ShipmentRequest("5001", ("1ZOWN1",), processed_status="4", reference="SL-0a0a0a0a0a0a")
    store.connector().confirm_shipment(request)
    assert store.app.order_status("5001") == "4"
    store.app.clear_writes()
    result = store.connector().confirm_shipment(request)
    assert result.tracking_sent == ("1ZOWN1",)
    assert store.app.writes() == []
    assert store.app.tracking_numbers("5001") == ["1ZOWN1"]


def test_our_write_whose_reply_was_lost_is_a_success_after_the_seller_closed_the_order(
    store: Running,
) -> None:
    store.app.faults.update({"drop_reply_after_write": 1})
    request = ShipmentRequest("5001", ("1ZOWN2",), processed_status="4", reference="SL-0b0b0b0b0b0b")
    with pytest.raises((TransientError, ProtocolError)):
        store.connector().confirm_shipment(request)
    store.app.set_order_status("5001", 5)  # the seller cancels it before the retry
    store.app.clear_writes()
    result = store.connector().confirm_shipment(request)
    assert result.tracking_sent == ("1ZOWN2",)
    assert store.app.writes() == [], "a cancelled order was written to"
    assert store.app.order_status("5001") == "5"


def test_repeating_a_shipment_the_store_already_shows_complete_is_not_a_closed_order(store: Running) -> None:
    request = ShipmentRequest("5001", ("1ZAGAIN1",), processed_status="4")
    connector = store.connector()
    connector.confirm_shipment(request)
    writes = store.app.writes()
    connector.confirm_shipment(request)
    assert store.app.writes() == writes


def test_a_store_without_orders_yet_is_polled_with_one_count() -> None:
    """A new shop with no order in the look-back period: its polls ask one count (no whole
    look-back download every minute), and the first sale makes the count move."""
    app: ThreeDCartSandbox = make_sandbox("threedcart")  # type: ignore[assignment]
    app.seed(5, 0, 1, 3)
    with SandboxServer(app):
        connector = build_connector(
            "threedcart",
            app.connector_store_url(),
            app.connector_credentials(),
            app.connector_settings(),
            options=ConnectorOptions(
                allow_private_hosts=True, timeout=5, backoff=0.01, **app.connector_options()
            ),
        )
        orders, checkpoint = download(connector)  # type: ignore[arg-type]
        assert orders == []
        assert checkpoint
        requests = app.request_count
        assert connector.orders_changed_since(checkpoint) is False
        assert app.request_count - requests == 1
        app.add_order()
        assert connector.orders_changed_since(checkpoint) is True
        connector.close()
