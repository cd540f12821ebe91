"""XCartConnector operations against respx-scripted X-Cart replies: what goes on the wire, and what
comes back canonical."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from connectors.base import ConnectorOptions, PriceUpdate, ShipmentRequest, StockUpdate
from connectors.errors import AuthError, PermanentError, ProtocolError
from connectors.xcart.connector import CHANGES_WARNING, LATER_RUN_OVERLAP_SECONDS, XCartConnector

STORE = "https://shop.example.com"
ADMIN = f"{STORE}/admin.php"
KEY = "rw-key-5f2b9c1d"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "xcart"
STORE_DATE = "Thu, 02 May 2024 12:00:00 GMT"
STORE_EPOCH = 1714651200


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def connector(**settings: Any) -> XCartConnector:
    base = {"api_flavour": "addon", "price_sync": True}
    built = XCartConnector(
        STORE,
        {"api_key": KEY},
        base | settings,
        options=ConnectorOptions(allow_private_hosts=True, max_retries=1, backoff=0.0),
    )
    return built


def ok(data: Any, **headers: str) -> httpx.Response:
    count = str(len(data)) if isinstance(data, list) else "1"
    return httpx.Response(200, json=data, headers={"X-Result-Count": count, "Date": STORE_DATE, **headers})


def path_of(request: httpx.Request) -> str:
    return request.url.params.get("_path", "")


def form(request: httpx.Request) -> dict[str, str]:
    """A write's form fields, without the API key (which travels in the body)."""
    fields = dict(parse_qsl(request.content.decode()))
    assert fields.pop("_key") == KEY
    return fields


class AddonStore:
    """Routes add-on calls by ``_path`` (and method) to scripted handlers, recording every request."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.handlers: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        router.route(url__startswith=ADMIN).mock(side_effect=self._dispatch)

    def on(self, method: str, path: str, reply: Any) -> None:
        self.handlers[(method, path)] = reply if callable(reply) else (lambda _r, data=reply: ok(data))

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.handlers.get((request.method, path_of(request)))
        if handler is None:
            raise AssertionError(f"unexpected {request.method} {path_of(request)}")
        return handler(request)

    def writes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method != "GET"]


@pytest.fixture
def store() -> Iterator[AddonStore]:
    with respx.mock(assert_all_called=False) as router:
        scripted = AddonStore(router)
        scripted.on(
            "GET", "config", [{"config_id": 7, "category": "Version", "name": "version", "value": "5.4.1.23"}]
        )
        yield scripted


# -- test connection -------------------------------------------------------------------------------


def test_connection_reads_both_status_lists_and_probes_writes_with_put_product_0(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order-status-payment", fixture("order_status_payment.json"))
    store.on("PUT", "product/0", lambda _r: httpx.Response(200, text="null"))
    store.on("GET", "order", [fixture("complex_order_discount.json")])
    facts = connector().test_connection()

    probe = store.writes()
    assert len(probe) == 1
    assert probe[0].method == "PUT"
    assert path_of(probe[0]) == "product/0"
    assert probe[0].content == f"_key={KEY}".encode()  # no model: nothing to write
    assert "_key" not in probe[0].url.params
    assert facts.platform_version == "5.4.1.23 (REST API add-on)"
    assert facts.can_write is True
    assert facts.base_currency == "USD"
    assert facts.details["api_flavour"] == "addon"
    shipping_codes = [s["code"] for s in facts.details["shipping_statuses"]]
    assert shipping_codes == ["N", "P", "S", "D", "WND", "R", "WFA", "NBA"]  # never NF
    assert [s["code"] for s in facts.details["payment_statuses"]] == ["Q", "A", "PP", "P", "D", "C", "R"]
    # the lists reuse letters: each status is named and judged within its own list
    statuses = {(s.group, s.code): s for s in facts.order_statuses}
    assert statuses[("shipping", "P")].name == "Processing"
    assert statuses[("payment", "P")].name == "Paid"
    closing = {key for key, status in statuses.items() if status.closes_order}
    assert closing == {
        ("shipping", "S"),
        ("shipping", "D"),
        ("shipping", "WND"),
        ("shipping", "R"),
        ("payment", "D"),
        ("payment", "C"),
        ("payment", "R"),
    }
    assert facts.warnings == (CHANGES_WARNING,)


def test_connection_with_the_read_only_key_reports_it_without_failing(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order-status-payment", fixture("order_status_payment.json"))
    store.on(
        "PUT",
        "product/0",
        lambda _r: httpx.Response(403, headers={"Content-type": "text/html; charset=UTF-8"}),
    )
    store.on("GET", "order", [])
    facts = connector(currency="EUR").test_connection()
    assert facts.can_write is False
    assert any("read-only" in warning for warning in facts.warnings)
    assert facts.base_currency == "EUR"


def test_connection_with_a_wrong_key_is_an_auth_error(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", lambda _r: httpx.Response(403))
    with pytest.raises(AuthError):
        connector().test_connection()


def test_connection_warns_when_the_settings_do_not_fit_the_store(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order-status-payment", fixture("order_status_payment.json"))
    store.on("PUT", "product/0", lambda _r: httpx.Response(200, text="null"))
    store.on("GET", "order", [])
    facts = connector(processed_status="XX", import_statuses=["P", "S"]).test_connection()
    assert any("'XX'" in warning for warning in facts.warnings)
    assert any("S are not payment statuses" in warning for warning in facts.warnings)


# -- flavour detection -----------------------------------------------------------------------------


def test_auto_detects_the_builtin_api_first() -> None:
    with respx.mock() as router:
        router.get(f"{STORE}/api/orders").mock(return_value=httpx.Response(200, json=[]))
        built = connector(api_flavour="auto")
        assert built._api().flavour == "builtin"


def test_auto_falls_back_to_the_add_on_when_api_is_404() -> None:
    with respx.mock() as router:
        router.get(f"{STORE}/api/orders").mock(
            return_value=httpx.Response(404, text="<html>Not found</html>")
        )
        router.get(ADMIN).mock(return_value=ok(fixture("order_status_shipping.json")))
        built = connector(api_flavour="auto")
        assert built._api().flavour == "addon"


def test_auto_detection_with_neither_api_says_so() -> None:
    with respx.mock() as router:
        router.get(f"{STORE}/api/orders").mock(return_value=httpx.Response(404))
        router.get(ADMIN).mock(
            return_value=httpx.Response(302, headers={"Location": "admin.php?target=login"})
        )
        with pytest.raises(ProtocolError) as caught:
            connector(api_flavour="auto").test_connection()
        assert "Neither X-Cart's built-in API" in caught.value.message


# -- orders ----------------------------------------------------------------------------------------


def order_row(order_id: int, date: str = "2024-05-02T10:15:04+00:00", **changes: Any) -> dict[str, Any]:
    row = fixture("complex_order_discount.json")
    row.update({"orderId": order_id, "orderNumber": f"{order_id:05d}", "orderDate": date, "updateDate": date})
    row.update(changes)
    return row


def test_fetch_orders_request_shape_pages_and_checkpoint(
    store: AddonStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.xcart.connector.time.time", lambda: STORE_EPOCH + 30)

    def at(i: int) -> str:
        return f"2024-05-02T10:{i:02d}:00+00:00"

    first_page = [order_row(i, date=at(i)) for i in range(1, 51)]
    first_page[10] = order_row(11, date=at(11), shippingStatus="NF")
    # the next page starts at the newest date seen: order 50 comes again and is passed on once
    second_page = [order_row(50, date=at(50)), order_row(51, date="2024-05-02T11:00:00+00:00")]
    fiftieth = str(STORE_EPOCH - 7200 + 50 * 60)
    start = str(STORE_EPOCH + 30 - 3 * 86400)
    pages = {start: first_page, fiftieth: second_page}
    store.on("GET", "order", lambda r: ok(pages[r.url.params["_cnd[date][0]"]]))

    result = list(connector(order_lookback_days=3).fetch_orders(None))

    assert len(store.requests) == 2
    params = store.requests[0].url.params
    assert params["_schema"] == "complex"
    assert params["_cnd[date][0]"] == str(STORE_EPOCH + 30 - 3 * 86400)
    assert int(params["_cnd[date][1]"]) > STORE_EPOCH
    assert params.get_list("_cnd[paymentStatus][]") == ["P", "A"]
    assert (params["_cnd[orderBy][0]"], params["_cnd[orderBy][1]"]) == ("o.date", "ASC")
    assert (params["_cnd[limit][0]"], params["_cnd[limit][1]"]) == ("0", "50")
    # keyset paging: never an offset, the second page starts at the first page's newest date
    assert store.requests[1].url.params["_cnd[limit][0]"] == "0"
    assert store.requests[1].url.params["_cnd[date][0]"] == fiftieth
    ids = [order.external_id for page in result for order in page.orders]
    assert "11" not in ids  # not finished
    assert len(ids) == len(set(ids)) == 50
    assert json.loads(result[-1].checkpoint)["since"] == STORE_EPOCH  # the store's clock, not ours
    assert json.loads(result[0].checkpoint)["since"] < STORE_EPOCH


def test_later_runs_start_an_overlap_before_the_checkpoint(store: AddonStore) -> None:
    store.on("GET", "order", [])
    checkpoint = json.dumps({"v": 1, "since": STORE_EPOCH})
    pages = list(connector().fetch_orders(checkpoint))
    assert store.requests[0].url.params["_cnd[date][0]"] == str(STORE_EPOCH - LATER_RUN_OVERLAP_SECONDS)
    # then the changed-orders scan: newest change first, no status or date filter
    changed = store.requests[1].url.params
    assert (changed["_cnd[orderBy][0]"], changed["_cnd[orderBy][1]"]) == ("o.lastRenewDate", "DESC")
    assert "_cnd[paymentStatus][]" not in changed
    assert "_cnd[date][0]" not in changed
    assert len(pages) == 2
    assert pages[0].orders == pages[1].orders == ()
    saved = json.loads(pages[-1].checkpoint)
    assert saved["since"] == saved["changed"] == STORE_EPOCH
    assert saved["complete"] is False  # a version-1 checkpoint knows no open orders


def test_a_page_that_is_not_a_list_is_a_protocol_error(store: AddonStore) -> None:
    store.on("GET", "order", {"error": "nope"})
    with pytest.raises(ProtocolError):
        list(connector().fetch_orders(None))


def test_a_page_shorter_than_its_result_count_is_a_protocol_error(store: AddonStore) -> None:
    store.on("GET", "order", lambda _r: ok([order_row(1)], **{"X-Result-Count": "2"}))
    with pytest.raises(ProtocolError) as caught:
        list(connector().fetch_orders(None))
    assert caught.value.code == "short_page"


def test_an_unreadable_checkpoint_is_refused(store: AddonStore) -> None:
    with pytest.raises(PermanentError):
        list(connector().fetch_orders("not json"))


def test_complex_order_maps_money_discount_and_addresses(store: AddonStore) -> None:
    store.on("GET", "order", [fixture("complex_order_discount.json")])
    (order,) = next(iter(connector().fetch_orders(None))).orders
    assert order.external_id == "1042"
    assert order.number == "00217"
    assert order.total == Decimal("18.49")
    assert order.discount == Decimal("3.00")
    assert order.shipping == Decimal("1.50")
    assert order.subtotal == Decimal("19.99")
    assert order.computed_total == order.total
    assert order.status_code == "N"
    assert order.status_name == "Shipping: New · Payment: Paid"
    assert order.closed is False
    assert order.lines[0].options == (("Size", "M"),)
    assert order.lines[0].remote_product_id == "37"
    assert order.shipping_address.country_code == "US"
    assert order.customer_email == "jane@example.com"
    assert order.placed_at.isoformat() == "2024-05-02T10:15:04+00:00"


def test_float_noise_handling_fee_and_tax_on_top_add_up(store: AddonStore) -> None:
    store.on("GET", "order", [fixture("complex_order_float_noise_tax.json")])
    (order,) = next(iter(connector().fetch_orders(None))).orders
    assert order.subtotal == Decimal("30.94")
    assert order.shipping == Decimal("7.54")  # shipping + handling fee
    assert order.tax == Decimal("2.80")
    assert order.prices_include_tax is False
    assert order.computed_total == order.total == Decimal("41.28")
    assert order.lines[0].options == ()  # [] on the wire


def test_a_stale_prices_include_tax_setting_no_longer_decides_the_tax_basis(store: AddonStore) -> None:
    # Totals that fit neither reading (1.11 tax, total 25): the basis is X-Cart's declared one (net
    # prices, tax added on top), whatever a channel saved before the setting was removed.
    odd = fixture("complex_order_discount.json") | {"taxAmount": 1.11, "total": 25}
    store.on("GET", "order", [odd])
    (order,) = next(iter(connector(prices_include_tax=True).fetch_orders(None))).orders
    assert XCartConnector.capabilities.tax_inclusive_prices is False
    assert order.prices_include_tax is False


# -- shipments -------------------------------------------------------------------------------------


def shipment(tracking: str = "1Z999AA10123456784", status: str = "S") -> ShipmentRequest:
    return ShipmentRequest(order_external_id="1042", tracking_numbers=(tracking,), processed_status=status)


def test_confirm_sends_tracking_and_status_in_one_put_after_reading_the_order(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order/1042", fixture("default_order.json"))
    updated = fixture("default_order.json")
    updated["shippingStatus"] = {"id": 3, "code": "S", "position": 30}
    updated["trackingNumbers"] = [{"tracking_id": 7, "value": "1Z999AA10123456784", "creationDate": 1}]
    store.on("PUT", "order/1042", updated)

    result = connector().confirm_shipment(shipment())

    (write,) = store.writes()
    assert form(write) == {
        "model[trackingNumbers][0][value]": "1Z999AA10123456784",
        "model[shippingStatus][code]": "S",
    }
    assert result.tracking_sent == ("1Z999AA10123456784",)
    assert result.store_reference == "00217"


def test_confirm_is_a_no_op_when_tracking_and_status_are_already_there(store: AddonStore) -> None:
    done = fixture("default_order.json")
    done["shippingStatus"] = {"id": 3, "code": "S", "position": 30}
    done["trackingNumbers"] = [{"tracking_id": 7, "value": "1Z999AA10123456784", "creationDate": 1}]
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order/1042", done)
    result = connector().confirm_shipment(shipment())
    assert store.writes() == []
    assert result.tracking_sent == ()


def test_confirm_for_an_order_that_answers_null_never_writes(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order/1042", lambda _r: httpx.Response(200, text="null"))
    with pytest.raises(PermanentError) as caught:
        connector().confirm_shipment(shipment())
    assert caught.value.code == "order_not_found"
    assert store.writes() == []


def test_confirm_refuses_a_status_code_the_store_does_not_have(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    with pytest.raises(PermanentError) as caught:
        connector().confirm_shipment(shipment(status="ZZZ"))
    assert caught.value.code == "unknown_status"
    assert store.writes() == []


def test_confirm_refuses_not_finished_as_processed_status(store: AddonStore) -> None:
    with pytest.raises(PermanentError):
        connector().confirm_shipment(shipment(status="NF"))
    assert store.requests == []


def test_confirm_with_a_reply_missing_the_change_is_a_protocol_error(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order/1042", fixture("default_order.json"))
    store.on("PUT", "order/1042", fixture("default_order.json"))  # nothing applied
    with pytest.raises(ProtocolError) as caught:
        connector().confirm_shipment(shipment())
    assert caught.value.code == "not_applied"


def test_a_tracking_put_lost_to_a_5xx_is_not_resent(store: AddonStore) -> None:
    store.on("GET", "order-status-shipping", fixture("order_status_shipping.json"))
    store.on("GET", "order/1042", fixture("default_order.json"))
    store.on("PUT", "order/1042", lambda _r: httpx.Response(502))
    with pytest.raises(Exception, match="internal error"):
        connector().confirm_shipment(shipment())
    assert len(store.writes()) == 1


# -- listings, stock, prices -----------------------------------------------------------------------


PRODUCTS = [
    {"product_id": 1, "sku": "A-1", "name": "A", "price": 10.5, "amount": 4, "enabled": True},
    {"product_id": 2, "sku": "B-1", "name": "B", "price": 19.989999999999998, "amount": 7, "enabled": True},
]
VARIANTS = [
    {"id": 11, "sku": "B-1-S", "price": 0, "defaultPrice": True, "amount": 3, "defaultAmount": False},
    {"id": 12, "sku": "B-1-L", "price": 22, "defaultPrice": False, "amount": 0, "defaultAmount": True},
]


def test_list_listings_pages_products_and_places_variants(store: AddonStore) -> None:
    store.on("GET", "product", PRODUCTS)

    def variants(request: httpx.Request) -> httpx.Response:
        product = request.url.params.get("_cnd[product]")
        return ok(VARIANTS if product in (None, "2") else [])

    store.on("GET", "xc-productvariants-productvariant", variants)
    listings = {item.sku: item for item in connector().list_listings()}
    assert store.requests[0].url.params["_cnd[limit][1]"] == "250"
    assert store.requests[0].url.params["_cnd[orderBy][0]"] == "p.product_id"
    assert listings["B-1"].price == Decimal("19.99")
    assert (listings["B-1-S"].remote_id, listings["B-1-S"].remote_variant_id) == ("2", "11")
    assert (listings["B-1-S"].quantity, listings["B-1-S"].price) == (
        3,
        Decimal("19.99"),
    )  # own stock, product price
    assert (listings["B-1-L"].quantity, listings["B-1-L"].price) == (7, Decimal("22.00"))  # product stock


def test_list_listings_without_the_variants_add_on(store: AddonStore) -> None:
    store.on("GET", "product", PRODUCTS)
    store.on("GET", "xc-productvariants-productvariant", lambda _r: httpx.Response(404))
    assert [item.sku for item in connector().list_listings()] == ["A-1", "B-1"]


def test_push_stock_batches_products_and_variants_and_verifies(store: AddonStore) -> None:
    def put_products(request: httpx.Request) -> httpx.Response:
        fields = form(request)
        return ok([{"product_id": int(fields["model[0][product_id]"]), "amount": 5}])

    def put_variants(request: httpx.Request) -> httpx.Response:
        return ok([{"id": 11, "amount": 99}])  # the store kept something else

    store.on("PUT", "product", put_products)
    store.on("PUT", "xc-productvariants-productvariant", put_variants)
    results = connector().push_stock(
        [
            StockUpdate(sku="A-1", remote_id="1", quantity=5),
            StockUpdate(sku="B-1-S", remote_id="2", remote_variant_id="11", quantity=6),
            StockUpdate(sku="X", remote_id="abc", quantity=1),
            StockUpdate(sku="Y", remote_id="3", quantity=True),  # type: ignore[arg-type]
        ]
    )
    assert [r.ok for r in results] == [True, False, False, False]
    assert "instead of 6" in results[1].error
    assert "Not sent" in results[2].error
    variant_write = next(r for r in store.writes() if path_of(r) == "xc-productvariants-productvariant")
    assert form(variant_write) == {
        "model[0][id]": "11",
        "model[0][amount]": "6",
        "model[0][defaultAmount]": "0",
    }
    assert len(store.writes()) == 2


def test_push_stock_clamps_negative_to_zero_and_splits_batches_of_50(store: AddonStore) -> None:
    sent: list[dict[str, str]] = []

    def put_products(request: httpx.Request) -> httpx.Response:
        fields = form(request)
        sent.append(fields)
        count = len([k for k in fields if k.endswith("[product_id]")])
        rows = [
            {
                "product_id": int(fields[f"model[{i}][product_id]"]),
                "amount": int(fields[f"model[{i}][amount]"]),
            }
            for i in range(count)
        ]
        return ok(rows)

    store.on("PUT", "product", put_products)
    updates = [StockUpdate(sku=f"S{i}", remote_id=str(i), quantity=-2 if i == 1 else i) for i in range(1, 61)]
    results = connector().push_stock(updates)
    assert all(r.ok for r in results)
    assert len(results) == 60
    assert [len(batch) // 2 for batch in sent] == [50, 10]
    assert sent[0]["model[0][amount]"] == "0"


def test_push_stock_null_entry_and_rejected_batch(store: AddonStore) -> None:
    replies = iter(
        [
            ok([None]),
            httpx.Response(400, headers={"X-REST-Error": "Input data is incorrect"}),
        ]
    )
    store.on("PUT", "product", lambda _r: next(replies))
    first = connector().push_stock([StockUpdate(sku="A", remote_id="1", quantity=1)])
    second = connector().push_stock([StockUpdate(sku="A", remote_id="1", quantity=1)])
    assert not first[0].ok
    assert "did not confirm" in first[0].error
    assert not second[0].ok
    assert "Input data is incorrect" in second[0].error


def test_push_prices_validates_and_sends_variant_default_price_off(store: AddonStore) -> None:
    store.on(
        "PUT", "xc-productvariants-productvariant", lambda _r: ok([{"id": 12, "price": 21.499999999999996}])
    )
    results = connector().push_prices(
        [
            PriceUpdate(sku="B-1-L", remote_id="2", remote_variant_id="12", price=Decimal("21.5")),
            PriceUpdate(sku="N", remote_id="1", price=Decimal("-1")),
            PriceUpdate(sku="F", remote_id="1", price=Decimal("1.23456")),
            PriceUpdate(sku="Q", remote_id="1", price=Decimal("NaN")),
        ]
    )
    assert [r.ok for r in results] == [True, False, False, False]
    (write,) = store.writes()
    assert form(write) == {"model[0][id]": "12", "model[0][price]": "21.50", "model[0][defaultPrice]": "0"}


def test_price_sync_off_writes_nothing(store: AddonStore) -> None:
    results = connector(price_sync=False).push_prices([PriceUpdate(sku="A", remote_id="1", price=Decimal(1))])
    assert not results[0].ok
    assert store.requests == []


# -- 5.5+ built-in API -----------------------------------------------------------------------------


def builtin_connector(**settings: Any) -> XCartConnector:
    return connector(api_flavour="builtin", **settings)


def test_builtin_fetch_orders_request_shape_and_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    june = 1717243200  # the fixture order was placed 2024-06-01 09:00; the store says it is 12:00
    monkeypatch.setattr("connectors.xcart.connector.time.time", lambda: june - 40)
    with respx.mock() as router:
        route = router.get(f"{STORE}/api/orders").mock(
            return_value=httpx.Response(
                200, json=[fixture("builtin_order.json")], headers={"Date": "Sat, 01 Jun 2024 12:00:00 GMT"}
            )
        )
        (page,) = list(builtin_connector().fetch_orders(None))
    params = route.calls.last.request.url.params
    assert params["order[date]"] == "asc"
    assert params.get_list("paymentStatus.code[]") == ["P", "A"]
    assert params["itemsPerPage"] == "100"
    assert params["page"] == "1"
    assert params["date[after]"].endswith("Z")
    (order,) = page.orders
    assert order.external_id == "77"
    assert order.currency == "EUR"
    assert order.prices_include_tax is True
    assert order.tax == Decimal("9.47")
    assert order.computed_total == order.total == Decimal("62.10")
    assert json.loads(page.checkpoint)["since"] == june


def test_builtin_confirm_sets_the_status_and_warns_about_tracking() -> None:
    with respx.mock() as router:
        router.get(f"{STORE}/api/orders/77").mock(
            return_value=httpx.Response(200, json=fixture("builtin_order.json"))
        )
        put = router.put(f"{STORE}/api/orders/77/shipping_status").mock(
            return_value=httpx.Response(
                200, json={"id": 3, "code": "S", "name": "Shipped", "customer_name": "Shipped"}
            )
        )
        result = builtin_connector().confirm_shipment(
            ShipmentRequest(
                order_external_id="77", tracking_numbers=("NEW-1", "JD014600003828"), processed_status="S"
            )
        )
    assert json.loads(put.calls.last.request.content) == {"code": "S"}
    assert result.tracking_sent == ()
    assert any("NEW-1" in warning for warning in result.warnings)
    assert not any("JD014600003828" in warning for warning in result.warnings)


def test_builtin_push_stock_puts_json_per_item() -> None:
    with respx.mock() as router:
        product = router.put(f"{STORE}/api/products/8").mock(
            return_value=httpx.Response(200, json={"id": 8, "amount": 4})
        )
        variant = router.put(f"{STORE}/api/products/8/variants/3").mock(
            return_value=httpx.Response(200, json={"id": 3, "amount": 2, "default_amount": False})
        )
        results = builtin_connector().push_stock(
            [
                StockUpdate(sku="BAG-1", remote_id="8", quantity=4),
                StockUpdate(sku="BAG-1-S", remote_id="8", remote_variant_id="3", quantity=2),
            ]
        )
    assert all(r.ok for r in results)
    assert json.loads(product.calls.last.request.content) == {"amount": 4}
    assert json.loads(variant.calls.last.request.content) == {"amount": 2, "default_amount": False}
