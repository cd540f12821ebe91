"""The connector's operations against respx: request shapes, paging, checkpoints, idempotency."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from connectors.base import PriceUpdate, ShipmentLine, ShipmentRequest, StockUpdate
from connectors.errors import PermanentError, ProtocolError, TransientError
from connectors.threedcart.connector import ThreeDCartConnector
from tests.connectors.threedcart.conftest import API, fixture, make_connector

NEW_YORK = ZoneInfo("America/New_York")


def order(
    order_id: int, *, status: int = 1, placed: str = "2025-03-01T14:05:09", updated: str | None = None
) -> dict:
    raw = copy.deepcopy(fixture("order_5001.json"))
    raw.update(OrderID=order_id, InvoiceNumber=order_id - 4000, OrderStatusID=status, OrderDate=placed)
    raw["LastUpdate"] = updated or placed
    return raw


class FakeOrders:
    """Answers GET /Orders the way 3DCart does, and records every query it was asked."""

    def __init__(self, orders: list[dict], *, count: int | None = None) -> None:
        self.orders = orders
        self.count = count
        self.queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.queries.append(params)
        if params.get("countonly") == "1":
            return httpx.Response(
                200, json={"TotalCount": self.count if self.count is not None else len(self.orders)}
            )
        if not self.orders:
            return httpx.Response(404)
        offset, limit = int(params.get("offset", 1)), int(params.get("limit", 10))
        if offset > len(self.orders):
            return httpx.Response(400, json=fixture("offset_past_end_400.json"))
        return httpx.Response(200, json=self.orders[offset - 1 : offset - 1 + limit])

    def listing_queries(self) -> list[dict[str, str]]:
        return [q for q in self.queries if "countonly" not in q]


def statuses(mock: respx.MockRouter) -> respx.Route:
    return mock.get(f"{API}/OrderStatus").mock(
        return_value=httpx.Response(200, json=fixture("order_status.json"))
    )


def download(connector: ThreeDCartConnector, checkpoint: str | None = None) -> tuple[list[Any], list[str]]:
    orders, checkpoints = [], []
    for page in connector.fetch_orders(checkpoint):
        orders.extend(page.orders)
        checkpoints.append(page.checkpoint)
    return orders, checkpoints


# -- test_connection ---------------------------------------------------------------------------------


def test_connection_reads_settings_and_statuses_only(
    mock: respx.MockRouter, connector: ThreeDCartConnector
) -> None:
    mock.get(f"{API}/StoreSettings").mock(
        return_value=httpx.Response(200, json=fixture("store_settings.json"))
    )
    statuses(mock)
    facts = connector.test_connection()
    assert facts.base_currency == "USD"
    assert facts.currencies == ("USD",)
    assert facts.timezone == "America/New_York"
    assert ("4", "Sent out") in {(s.code, s.name) for s in facts.order_statuses}
    assert facts.details["store_name"] == "Demo Store"
    assert {call.request.method for call in mock.calls} == {"GET"}
    assert mock.calls[-1].request.url.params["limit"] == "500"


def test_connection_warns_about_currency_zone_and_url_mismatch(mock: respx.MockRouter) -> None:
    settings = fixture("store_settings.json")
    settings["StoreStandards"] |= {"CurrencyCode": "CAD", "StoreTimeZone": "-8"}
    settings["StoreInformation"]["StoreSecureURL"] = "https://other.3dcartstores.com"
    # UNCONFIRMED whether StoreSettings is an object or an array of one: both are read.
    mock.get(f"{API}/StoreSettings").mock(return_value=httpx.Response(200, json=[settings]))
    statuses(mock)
    facts = make_connector().test_connection()
    assert facts.timezone == "America/Los_Angeles"
    assert len(facts.warnings) == 3


# -- fetch_orders ------------------------------------------------------------------------------------


def test_first_download_queries_the_lookback_in_store_time_and_pages_from_one(mock: respx.MockRouter) -> None:
    statuses(mock)
    fake = FakeOrders([order(5000 + n) for n in range(1, 251)])
    mock.get(f"{API}/Orders").mock(side_effect=fake)
    connector = make_connector(order_lookback_days=3)
    before = datetime.now(UTC)
    orders, checkpoints = download(connector)
    assert len(orders) == 250
    assert len(checkpoints) == 3
    queries = fake.listing_queries()
    assert [q["offset"] for q in queries] == ["1", "101", "201"]
    assert {q["limit"] for q in queries} == {"100"}
    start = (before - timedelta(days=3)).astimezone(NEW_YORK)
    assert queries[0]["datestart"] in {
        start.strftime("%m/%d/%Y 00:00:00"),
        (start + timedelta(seconds=5)).strftime("%m/%d/%Y 00:00:00"),
    }
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", queries[0]["datestart"])
    assert "lastupdatestart" not in queries[0]


def test_not_completed_and_unselected_statuses_are_not_downloaded(mock: respx.MockRouter) -> None:
    statuses(mock)
    mock.get(f"{API}/Orders").mock(
        side_effect=FakeOrders(
            [order(1, status=1), order(2, status=7), order(3, status=5), order(4, status=2)]
        )
    )
    orders, _ = download(make_connector(import_statuses=["1", "2", "7"]))
    assert [o.external_id for o in orders] == ["1", "4"]


def test_empty_store_is_one_empty_page_with_a_checkpoint(mock: respx.MockRouter) -> None:
    statuses(mock)
    mock.get(f"{API}/Orders").mock(side_effect=FakeOrders([]))
    orders, checkpoints = download(make_connector())
    assert orders == []
    assert len(checkpoints) == 1
    assert json.loads(checkpoints[0])["since"] is None


def test_checkpoint_keeps_the_newest_change_even_though_results_are_sorted_by_order_id(
    mock: respx.MockRouter,
) -> None:
    statuses(mock)
    rows = [
        order(10, placed="2025-03-03T09:00:00"),
        order(11, placed="2025-03-01T09:00:00", updated="2025-03-05T23:30:00"),
        order(12, placed="2025-03-02T09:00:00"),
    ]
    mock.get(f"{API}/Orders").mock(side_effect=FakeOrders(rows))
    _, checkpoints = download(make_connector())
    state = json.loads(checkpoints[-1])
    assert state["since"] == "2025-03-06T04:30:00+00:00"  # 23:30 EST = 04:30 UTC next day
    assert "run" not in state


def test_incremental_download_overlaps_by_a_day_and_emits_each_change_once(mock: respx.MockRouter) -> None:
    statuses(mock)
    unchanged = order(20, placed="2025-03-01T10:00:00", updated="2025-03-01T10:00:00")
    changed = order(21, placed="2025-03-01T11:00:00", updated="2025-03-02T08:00:00")
    fake = FakeOrders([unchanged, changed])
    mock.get(f"{API}/Orders").mock(side_effect=fake)
    checkpoint = json.dumps(
        {
            "v": 1,
            "since": "2025-03-02T05:00:00+00:00",
            "emitted": {"20": "2025-03-01T15:00:00+00:00", "21": "2025-03-01T16:00:00+00:00"},
        }
    )
    orders, checkpoints = download(make_connector(), checkpoint)
    assert [o.external_id for o in orders] == ["21"]  # 20 unchanged; 21 once although both passes list it
    queries = fake.listing_queries()
    assert queries[0]["lastupdatestart"] == "03/01/2025"  # documented as a date only; 03/02 minus a day
    assert queries[1]["datestart"] == "03/01/2025 00:00:00"
    final = json.loads(checkpoints[-1])
    assert final["since"] == "2025-03-02T13:00:00+00:00"
    assert final["emitted"]["21"] == "2025-03-02T13:00:00+00:00#1"
    assert final["followed"] == [21]


def test_a_new_order_found_only_by_date_is_emitted(mock: respx.MockRouter) -> None:
    statuses(mock)
    new = order(30, placed="2025-03-02T09:00:00", updated="")

    def reply(request: httpx.Request) -> httpx.Response:
        if "lastupdatestart" in request.url.params:
            return (
                httpx.Response(404)
                if "countonly" not in request.url.params
                else httpx.Response(200, json={"TotalCount": 0})
            )
        return FakeOrders([new])(request)

    mock.get(f"{API}/Orders").mock(side_effect=reply)
    orders, _ = download(make_connector(), json.dumps({"v": 1, "since": "2025-03-02T05:00:00+00:00"}))
    assert [o.external_id for o in orders] == ["30"]


def test_a_download_resumes_from_a_page_checkpoint(mock: respx.MockRouter) -> None:
    statuses(mock)
    fake = FakeOrders([order(100 + n) for n in range(150)])
    mock.get(f"{API}/Orders").mock(side_effect=fake)
    pages = make_connector().fetch_orders(None)
    first = next(pages)
    assert len(first.orders) == 100
    fake.queries.clear()
    rest, _ = download(make_connector(), first.checkpoint)
    assert [o.external_id for o in rest] == [str(100 + n) for n in range(100, 150)]
    assert fake.listing_queries()[0]["offset"] == "101"


def test_a_short_read_fails_loudly(mock: respx.MockRouter) -> None:
    statuses(mock)
    mock.get(f"{API}/Orders").mock(side_effect=FakeOrders([order(1), order(2)], count=5))
    with pytest.raises(ProtocolError) as caught:
        download(make_connector())
    assert caught.value.code == "short_read"


def test_a_page_that_is_not_a_list_is_never_silently_empty(mock: respx.MockRouter) -> None:
    statuses(mock)

    def reply(request: httpx.Request) -> httpx.Response:
        if "countonly" in request.url.params:
            return httpx.Response(200, json={"TotalCount": 1})
        return httpx.Response(200, json={"Message": "An error has occurred."})

    mock.get(f"{API}/Orders").mock(side_effect=reply)
    with pytest.raises(ProtocolError):
        download(make_connector())


def test_an_unreadable_checkpoint_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError) as caught:
        next(make_connector().fetch_orders('{"v": 99}'))
    assert caught.value.code == "bad_checkpoint"


# -- confirm_shipment --------------------------------------------------------------------------------


def order_reply(raw: dict) -> httpx.Response:
    return httpx.Response(200, json=[raw])


def ok(key: str, value: Any) -> httpx.Response:
    return httpx.Response(
        200, json=[{"Key": key, "Value": str(value), "Status": "200", "Message": "updated successfully"}]
    )


def test_shipment_is_put_on_the_shipment_then_status_with_only_id_and_status(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(
        return_value=order_reply(fixture("order_5001.json"))
    )
    shipment_put = mock.put(f"{API}/Orders/5001/Shipments/0").mock(return_value=ok("ShipmentID", 0))
    order_put = mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    result = make_connector().confirm_shipment(
        ShipmentRequest(
            order_external_id="5001",
            tracking_numbers=("9400100000000000000000",),
            carrier="USPS®",
            service="Priority Mail / 2-Day",
            shipped_at=datetime(2025, 3, 2, 3, 0, tzinfo=UTC),  # 22:00 on 03/01 in New York
            processed_status="4",
        )
    )
    body = json.loads(shipment_put.calls.last.request.content)
    assert body == {
        "ShipmentID": 0,
        "ShipmentTrackingCode": "9400100000000000000000",
        "ShipmentOrderStatus": 4,
        "ShipmentMethodName": "USPS Priority Mail 2-Day",
        "ShipmentShippedDate": "03/01/2025",
    }
    assert json.loads(order_put.calls.last.request.content) == {"OrderID": 5001, "OrderStatusID": 4}
    assert result.tracking_sent == ("9400100000000000000000",)
    assert result.store_reference == "5001:0"
    methods = [(call.request.method, call.request.url.path) for call in mock.calls]
    assert methods[-2:] == [
        ("PUT", "/3dCartWebAPI/v2/Orders/5001/Shipments/0"),
        ("PUT", "/3dCartWebAPI/v2/Orders/5001"),
    ]


def test_repeating_a_confirmed_shipment_writes_nothing(mock: respx.MockRouter) -> None:
    raw = fixture("order_5001.json")
    raw["OrderStatusID"] = 4
    raw["ShipmentList"][0] |= {"ShipmentTrackingCode": "1Z1", "ShipmentOrderStatus": 4}
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(raw))
    writes = mock.put(url__regex=r".*").mock(return_value=ok("X", 1))
    make_connector().confirm_shipment(ShipmentRequest("5001", ("1Z1",), processed_status="4"))
    assert not writes.called


def test_tracking_already_there_only_status_is_written(mock: respx.MockRouter) -> None:
    raw = fixture("order_5001.json")
    raw["ShipmentList"][0] |= {"ShipmentTrackingCode": "1Z1", "ShipmentOrderStatus": 4}
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(raw))
    shipment_put = mock.put(f"{API}/Orders/5001/Shipments/0").mock(return_value=ok("ShipmentID", 0))
    order_put = mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    make_connector().confirm_shipment(ShipmentRequest("5001", ("1Z1",), processed_status="4"))
    assert not shipment_put.called
    assert order_put.call_count == 1


def two_shipment_order() -> dict:
    raw = fixture("order_5001.json")
    second = copy.deepcopy(raw["ShipmentList"][0]) | {"ShipmentID": 7002, "ShipmentCost": 0}
    raw["ShipmentList"][0]["ShipmentID"] = 7001
    raw["ShipmentList"].append(second)
    item = copy.deepcopy(raw["OrderItemList"][0]) | {
        "ItemIndexID": 9002,
        "ItemShipmentID": 7002,
        "ItemUnitPrice": 0,
    }
    raw["OrderItemList"][0]["ItemShipmentID"] = 7001
    raw["OrderItemList"].append(item)
    return raw


def test_partial_shipment_marks_only_its_shipment_and_sets_partial(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(two_shipment_order()))
    statuses(mock)
    first = mock.put(f"{API}/Orders/5001/Shipments/7001").mock(return_value=ok("ShipmentID", 7001))
    second = mock.put(f"{API}/Orders/5001/Shipments/7002").mock(return_value=ok("ShipmentID", 7002))
    order_put = mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    make_connector().confirm_shipment(
        ShipmentRequest("5001", ("1ZA",), lines=(ShipmentLine("9001", 2),), processed_status="4")
    )
    assert first.called
    assert not second.called
    assert json.loads(order_put.calls.last.request.content) == {"OrderID": 5001, "OrderStatusID": 3}


def test_one_tracking_number_per_shipment_when_counts_match(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(two_shipment_order()))
    first = mock.put(f"{API}/Orders/5001/Shipments/7001").mock(return_value=ok("ShipmentID", 7001))
    second = mock.put(f"{API}/Orders/5001/Shipments/7002").mock(return_value=ok("ShipmentID", 7002))
    mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    make_connector().confirm_shipment(ShipmentRequest("5001", ("1ZA", "1ZB"), processed_status="4"))
    assert json.loads(first.calls.last.request.content)["ShipmentTrackingCode"] == "1ZA"
    assert json.loads(second.calls.last.request.content)["ShipmentTrackingCode"] == "1ZB"


def test_one_code_for_two_shipments_goes_on_the_first_and_the_other_is_only_marked_shipped(
    mock: respx.MockRouter,
) -> None:
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(two_shipment_order()))
    first = mock.put(f"{API}/Orders/5001/Shipments/7001").mock(return_value=ok("ShipmentID", 7001))
    second = mock.put(f"{API}/Orders/5001/Shipments/7002").mock(return_value=ok("ShipmentID", 7002))
    order_put = mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    make_connector().confirm_shipment(ShipmentRequest("5001", ("1ZA",), processed_status="4"))
    assert json.loads(first.calls.last.request.content)["ShipmentTrackingCode"] == "1ZA"
    assert "ShipmentTrackingCode" not in json.loads(second.calls.last.request.content)
    assert json.loads(second.calls.last.request.content)["ShipmentOrderStatus"] == 4
    assert json.loads(order_put.calls.last.request.content) == {"OrderID": 5001, "OrderStatusID": 4}


def test_a_retry_after_a_half_done_confirmation_does_not_repeat_the_code(mock: respx.MockRouter) -> None:
    raw = two_shipment_order()
    raw["ShipmentList"][0] |= {"ShipmentTrackingCode": "1ZA", "ShipmentOrderStatus": 4}
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(raw))
    first = mock.put(f"{API}/Orders/5001/Shipments/7001").mock(return_value=ok("ShipmentID", 7001))
    second = mock.put(f"{API}/Orders/5001/Shipments/7002").mock(return_value=ok("ShipmentID", 7002))
    mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    make_connector().confirm_shipment(ShipmentRequest("5001", ("1ZA",), processed_status="4"))
    assert not first.called
    body = json.loads(second.calls.last.request.content)
    assert body["ShipmentOrderStatus"] == 4
    assert "ShipmentTrackingCode" not in body


def test_several_codes_on_one_shipment_are_joined(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(
        return_value=order_reply(fixture("order_5001.json"))
    )
    shipment_put = mock.put(f"{API}/Orders/5001/Shipments/0").mock(return_value=ok("ShipmentID", 0))
    mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    make_connector().confirm_shipment(ShipmentRequest("5001", ("1ZA", "1ZB"), processed_status="4"))
    assert json.loads(shipment_put.calls.last.request.content)["ShipmentTrackingCode"] == "1ZA,1ZB"


def test_get_order_answering_another_order_is_refused(mock: respx.MockRouter) -> None:
    # A store that ignores the orderid filter answers with other orders: never write to one of them.
    mock.get(f"{API}/Orders", params={"orderid": "1001"}).mock(
        return_value=order_reply(fixture("order_5001.json"))
    )
    writes = mock.put(url__regex=r".*").mock(return_value=ok("X", 1))
    with pytest.raises(ProtocolError) as caught:
        make_connector().confirm_shipment(ShipmentRequest("1001", ("1Z",), processed_status="4"))
    assert caught.value.code == "wrong_order"
    assert not writes.called


def test_shipment_update_refused_per_item_is_permanent(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(
        return_value=order_reply(fixture("order_5001.json"))
    )
    mock.put(f"{API}/Orders/5001/Shipments/0").mock(
        return_value=httpx.Response(
            206, json=[{"Key": "ShipmentID", "Value": "0", "Status": "400", "Message": "Invalid tracking"}]
        )
    )
    order_put = mock.put(f"{API}/Orders/5001").mock(return_value=ok("OrderID", 5001))
    with pytest.raises(PermanentError) as caught:
        make_connector().confirm_shipment(ShipmentRequest("5001", ("1Z",), processed_status="4"))
    assert "Invalid tracking" in caught.value.message
    assert not order_put.called


def test_confirming_without_a_processed_status_is_refused() -> None:
    with pytest.raises(PermanentError):
        make_connector(processed_status="").confirm_shipment(ShipmentRequest("5001", ("1Z",)))


# -- listings and pushes -----------------------------------------------------------------------------


def products_route(mock: respx.MockRouter, products: list[dict]) -> respx.Route:
    def reply(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params.get("countonly") == "1":
            return httpx.Response(200, json={"TotalCount": len(products)})
        offset, limit = int(params["offset"]), int(params["limit"])
        if offset > len(products):
            return httpx.Response(400, json=fixture("offset_past_end_400.json"))
        return httpx.Response(200, json=products[offset - 1 : offset - 1 + limit])

    return mock.get(f"{API}/Products").mock(side_effect=reply)


def test_listings_page_products_two_hundred_at_a_time(mock: respx.MockRouter) -> None:
    template = fixture("products.json")[1]
    products = [
        copy.deepcopy(template) | {"SKUInfo": template["SKUInfo"] | {"CatalogID": n, "SKU": f"P{n}"}}
        for n in range(1, 231)
    ]
    route = products_route(mock, products)
    listings = make_connector().list_listings()
    assert len(listings) == 230
    listing_calls = [c.request.url.params for c in route.calls if "countonly" not in c.request.url.params]
    assert [(p["limit"], p["offset"]) for p in listing_calls] == [("200", "1"), ("200", "201")]


def test_variants_are_fetched_when_a_product_does_not_embed_them(mock: respx.MockRouter) -> None:
    # UNCONFIRMED whether GET /Products always embeds AdvancedOptionList: fall back to the sub-resource.
    tshirt = fixture("products.json")[0]
    options = tshirt.pop("AdvancedOptionList")
    products_route(mock, [tshirt])
    sub = mock.get(f"{API}/Products/11/AdvancedOptions").mock(return_value=httpx.Response(200, json=options))
    skus = [listing.sku for listing in make_connector().list_listings()]
    assert skus == ["TSHIRT", "TSHIRT-S", "TSHIRT-M"]
    assert sub.called


def test_stock_goes_in_batches_of_at_most_one_hundred_with_only_sku_info(mock: respx.MockRouter) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        return httpx.Response(
            200,
            json=[
                {
                    "Key": "CatalogID",
                    "Value": str(i["SKUInfo"]["CatalogID"]),
                    "Status": "200",
                    "Message": "ok",
                }
                for i in items
            ],
        )

    route = mock.put(f"{API}/Products").mock(side_effect=reply)
    updates = [StockUpdate(sku=f"P{n}", remote_id=str(n), quantity=n % 7) for n in range(1, 151)]
    results = make_connector().push_stock(updates)
    assert len(results) == 150
    assert all(result.ok for result in results)
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert [len(body) for body in bodies] == [100, 50]
    assert bodies[0][0] == {"SKUInfo": {"CatalogID": 1, "Stock": 1}}
    assert all(set(item) == {"SKUInfo"} for body in bodies for item in body)


def test_206_failed_items_are_reported_and_not_retried_when_permanent(mock: respx.MockRouter) -> None:
    route = mock.put(f"{API}/Products").mock(
        return_value=httpx.Response(206, json=fixture("write_partial_206.json"))
    )
    results = make_connector().push_stock([StockUpdate("TSHIRT", "11", 118), StockUpdate("MUG", "12", 0)])
    assert [(r.sku, r.ok, r.error) for r in results] == [
        ("TSHIRT", True, ""),
        ("MUG", False, "Product not found"),
    ]
    assert route.call_count == 1


def test_only_the_items_that_failed_on_the_store_side_are_retried(mock: respx.MockRouter) -> None:
    route = mock.put(f"{API}/Products").mock(
        side_effect=[
            httpx.Response(
                206,
                json=[
                    {"Key": "CatalogID", "Value": "11", "Status": "200", "Message": "updated successfully"},
                    {"Key": "CatalogID", "Value": "12", "Status": "500", "Message": "Timeout expired"},
                ],
            ),
            ok("CatalogID", 12),
        ]
    )
    results = make_connector().push_prices(
        [PriceUpdate("TSHIRT", "11", Decimal("19.99")), PriceUpdate("MUG", "12", Decimal("8"))]
    )
    assert all(result.ok for result in results)
    assert json.loads(route.calls[0].request.content) == [
        {"SKUInfo": {"CatalogID": 11, "Price": 19.99}},
        {"SKUInfo": {"CatalogID": 12, "Price": 8}},
    ]
    assert json.loads(route.calls[1].request.content) == [{"SKUInfo": {"CatalogID": 12, "Price": 8}}]


def test_a_lost_reply_resends_the_batch_of_absolute_values(mock: respx.MockRouter) -> None:
    route = mock.put(f"{API}/Products").mock(
        side_effect=[httpx.Response(200, text='[{"Key":"Cata'), ok("CatalogID", 11)]
    )
    (result,) = make_connector().push_stock([StockUpdate("TSHIRT", "11", 5)])
    assert result.ok
    assert route.call_count == 2


def test_variants_are_written_one_row_at_a_time_with_integer_stock(mock: respx.MockRouter) -> None:
    route = mock.put(f"{API}/Products/11/AdvancedOptions/6").mock(return_value=ok("AdvancedOptionCode", 6))
    collection = mock.put(f"{API}/Products/11/AdvancedOptions").mock(return_value=ok("AdvancedOptionCode", 6))
    products = mock.put(f"{API}/Products").mock(return_value=ok("CatalogID", 11))
    (stock,) = make_connector().push_stock([StockUpdate("TSHIRT-M", "11", 38, remote_variant_id="6")])
    (price,) = make_connector().push_prices(
        [PriceUpdate("TSHIRT-M", "11", Decimal("19.99"), remote_variant_id="6")]
    )
    assert stock.ok
    assert price.ok
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies == [
        {"AdvancedOptionCode": "6", "AdvancedOptionStock": 38},
        {"AdvancedOptionCode": "6", "AdvancedOptionPrice": 19.99},
    ]
    assert isinstance(bodies[0]["AdvancedOptionStock"], int)
    assert not collection.called  # the collection PUT may replace rows (UNCONFIRMED): never used
    assert not products.called


def test_updates_without_remote_ids_are_resolved_by_sku(mock: respx.MockRouter) -> None:
    products_route(mock, fixture("products.json"))
    variant = mock.put(f"{API}/Products/11/AdvancedOptions/5").mock(return_value=ok("AdvancedOptionCode", 5))
    results = make_connector().push_stock([StockUpdate("TSHIRT-S", "", 3), StockUpdate("NOPE", "", 1)])
    assert [(r.sku, r.ok, r.remote_id, r.remote_variant_id) for r in results] == [
        ("TSHIRT-S", True, "11", "5"),
        ("NOPE", False, "", ""),
    ]
    assert "not on the 3DCart store" in results[1].error
    assert variant.called


def test_the_reference_joins_the_sellers_internal_comment_and_is_not_resent_blind(
    mock: respx.MockRouter,
) -> None:
    raw = fixture("order_5001.json")
    raw["ShipmentList"][0]["ShipmentInternalComment"] = "Gift wrap"
    mock.get(f"{API}/Orders", params={"orderid": "5001"}).mock(return_value=order_reply(raw))
    shipment_put = mock.put(f"{API}/Orders/5001/Shipments/0").mock(side_effect=httpx.ReadTimeout("lost"))
    with pytest.raises(TransientError):
        make_connector().confirm_shipment(
            ShipmentRequest("5001", ("1Z1",), processed_status="4", reference="SL-aaaaaaaaaaaa")
        )
    assert shipment_put.call_count == 1, "a shipment write that carries the reference is never resent blind"
    body = json.loads(shipment_put.calls.last.request.content)
    assert body["ShipmentInternalComment"] == "Gift wrap SL-aaaaaaaaaaaa"
