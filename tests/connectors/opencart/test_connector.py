"""OpenCartConnector with an in-process fake bridge and the core API on respx.

The connector's job is composition: which half (core API or bridge) does what on which family,
how it tells the seller which half is broken, and that a shipment is confirmed at most once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors.base import (
    ConnectorOptions,
    Listing,
    Order,
    OrderPage,
    PriceUpdate,
    PushResult,
    ShipmentRequest,
    StockUpdate,
    StoreStatus,
)
from connectors.errors import AuthError, ConnectorError, PermanentError, ProtocolError
from connectors.opencart.connector import OpenCartConnector, _summer_time_warning
from connectors.registry import build_connector

BASE = "https://shop.example.com"
KEY = "B" * 64
HISTORY_OK = {"success": "Success: You have modified orders!"}
NOT_FOUND = {"error": "Warning: Order could not be found!"}


@dataclass(frozen=True)
class Info:
    bridge_version: str = "1.1.0"
    opencart_version: str = "3.0.3.8"
    schema_family: str = "3.0"
    currency: str = "EUR"
    currencies: tuple[str, ...] = ("EUR", "USD")
    prices_include_tax: bool = True
    timezone: str = "Europe/Berlin"
    languages: tuple[str, ...] = ("en-gb",)
    stores: tuple[tuple[int, str], ...] = ((0, "Main"),)
    features: tuple[str, ...] = ("orders_match_ever", "status_sets")
    php_timezone: str = ""
    database_utc_offset: int | None = None
    database_time_zone: str = ""


@dataclass
class FakeBridge:
    """Stands in for ``bridge_client.BridgeClient``; ``fail`` makes every call raise that error."""

    info_reply: Info = field(default_factory=Info)
    fail: ConnectorError | None = None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    push_answers_short: bool = False
    status: dict[str, str] = field(default_factory=lambda: {"42": "2"})

    def _enter(self, name: str, args: Any = None) -> None:
        self.calls.append((name, args))
        if self.fail is not None:
            raise self.fail

    def info(self) -> Info:
        self._enter("info")
        return self.info_reply

    def statuses(self) -> tuple[StoreStatus, ...]:
        self._enter("statuses")
        return (StoreStatus("1", "Pending"), StoreStatus("3", "Shipped"), StoreStatus("5", "Complete"))

    def fetch_orders(
        self,
        checkpoint: str | None,
        *,
        lookback_days: int,
        import_statuses: Sequence[str],
        page_size: int = 100,
    ) -> Iterator[OrderPage]:
        self._enter("fetch_orders", (checkpoint, lookback_days, tuple(import_statuses), page_size))
        when = datetime(2026, 1, 1, tzinfo=UTC)
        order = Order(
            external_id="42",
            number="42",
            placed_at=when,
            updated_at=when,
            status_code="1",
            status_name="Pending",
            currency="EUR",
            subtotal=Decimal("10.00"),
            shipping=Decimal("0.00"),
            tax=Decimal("0.00"),
            discount=Decimal("0.00"),
            total=Decimal("10.00"),
            lines=(),
        )
        yield OrderPage(orders=(order,), checkpoint='{"v":1}')

    def get_order(self, order_id: str) -> Order | None:
        self._enter("get_order", order_id)
        return None

    def history(self, order_id: str) -> list[dict[str, Any]]:
        self._enter("history", order_id)
        return list(self.rows.get(order_id, []))

    def order_history(self, order_id: str) -> tuple[str, list[dict[str, Any]]]:
        self._enter("history", order_id)
        return self.status.get(order_id, ""), list(self.rows.get(order_id, []))

    def list_listings(self, *, use_options: bool = True) -> list[Listing]:
        self._enter("list_listings", use_options)
        return [Listing(sku="SKU-1", remote_id="50", quantity=3, price=Decimal("9.99"))]

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        self._enter("push_stock", len(updates))
        answered = updates[:-1] if self.push_answers_short else updates
        return [PushResult(sku=u.sku, remote_id=u.remote_id, ok=True) for u in answered]

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        self._enter("push_prices", len(updates))
        return [PushResult(sku=u.sku, remote_id=u.remote_id, ok=True) for u in updates]

    def add_history(self, order_id: str, order_status_id: str, comment: str, notify: bool) -> None:
        self._enter("add_history", (order_id, order_status_id, comment, notify))
        self.rows.setdefault(order_id, []).append(
            {"order_status_id": order_status_id, "comment": comment, "notify": notify, "date_added": ""}
        )
        self.status[order_id] = str(order_status_id)


class CoreApi:
    """OpenCart's core API on respx, answering per route from a dict (default: a 404 page)."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.answers: dict[str, list[httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        mock.route(host="shop.example.com", path="/index.php").mock(side_effect=self._answer)

    def on(self, route: str, *replies: httpx.Response) -> None:
        self.answers[route] = list(replies)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers.get(request.url.params.get("route", ""))
        if not queue:
            return httpx.Response(404, text="<html>The page you requested cannot be found!</html>")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def routes(self) -> list[str]:
        return [r.url.params.get("route", "") for r in self.requests]

    def history_forms(self) -> list[dict[str, list[str]]]:
        return [
            parse_qs(r.content.decode(), keep_blank_values=True)
            for r in self.requests
            if r.url.params.get("route") == "api/order/history"
        ]


@pytest.fixture
def core() -> Iterator[CoreApi]:
    with respx.mock(assert_all_called=False) as mock:
        yield CoreApi(mock)


def logged_in_30(core: CoreApi, history: httpx.Response | None = None) -> None:
    core.on("api/login", httpx.Response(200, json={"success": "ok", "api_token": "a" * 26}))
    core.on("api/order/history", history or httpx.Response(200, json=NOT_FOUND))


def connector(bridge: FakeBridge, **settings: Any) -> OpenCartConnector:
    return OpenCartConnector(
        BASE,
        {"api_username": "Storelink", "api_key": KEY},
        {"version_family": "auto", "processed_status": "3", **settings},
        options=ConnectorOptions(allow_private_hosts=True, max_retries=0),
        bridge=bridge,
    )


# --------------------------------------------------------------------------------------------------
# test_connection
# --------------------------------------------------------------------------------------------------


def test_registry_builds_the_opencart_connector() -> None:
    built = build_connector("opencart", BASE, {"api_username": "Storelink", "api_key": KEY}, {})
    assert isinstance(built, OpenCartConnector)
    assert built.capabilities.multiple_tracking_numbers


def test_connection_reports_store_facts_from_the_bridge_after_the_core_check(core: CoreApi) -> None:
    logged_in_30(core)
    facts = connector(FakeBridge()).test_connection()
    assert facts.platform_version == "OpenCart 3.0.3.8"
    assert facts.base_currency == "EUR"
    assert facts.currencies == ("EUR", "USD")
    assert facts.prices_include_tax is True
    assert facts.timezone == "Europe/Berlin"
    assert [s.code for s in facts.order_statuses] == ["1", "3", "5"]
    assert facts.warnings == ()
    assert facts.details["family"] == "3.0.3"
    assert facts.details["core_api"] == "ok"
    assert core.routes() == ["api/login", "api/order/history"]
    assert core.history_forms()[0]["order_status_id"] == ["0"]


def test_missing_bridge_is_named_when_the_core_api_works(core: CoreApi) -> None:
    logged_in_30(core)
    missing = PermanentError(
        "Storelink's bridge file was not found at https://shop.example.com/storelink-bridge.php (HTTP 404).",
        code="bridge_missing",
    )
    with pytest.raises(PermanentError) as caught:
        connector(FakeBridge(fail=missing)).test_connection()
    assert caught.value.code == "bridge_missing"
    assert str(caught.value).startswith("OpenCart's API login works, but the store bridge: ")
    assert "storelink-bridge.php" in str(caught.value)


def test_wrong_key_names_both_halves(core: CoreApi) -> None:
    core.on("api/login", httpx.Response(200, text="[]"))
    bad = AuthError("The API key does not match the OpenCart API user 'Storelink'.", code="bad_signature")
    with pytest.raises(AuthError) as caught:
        connector(FakeBridge(fail=bad), version_family="3.0.3").test_connection()
    assert caught.value.code == "bad_key"
    assert str(caught.value).startswith("The API key was refused by both OpenCart's API and the store bridge")


def test_ip_not_allowed_names_the_callers_ip(core: CoreApi) -> None:
    core.on(
        "api/login",
        httpx.Response(
            200,
            json={
                "error": {
                    "ip": "Warning: Your IP 198.51.100.23 is not allowed to access this API!",
                    "key": "Warning: Incorrect API Key!",
                }
            },
        ),
    )
    with pytest.raises(AuthError) as caught:
        connector(FakeBridge()).test_connection()
    assert caught.value.code == "ip_not_allowed"
    assert "OpenCart refused the IP 198.51.100.23: add it to System > Users > API > IP addresses" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            AuthError("The store server's clock is 900 seconds behind Storelink's.", code="clock_skew"),
            "clock_skew",
        ),
        (
            PermanentError("The bridge on your store is version 0.9.", code="bridge_outdated"),
            "bridge_outdated",
        ),
        (AuthError("The OpenCart API user 'Storelink' is disabled.", code="user_disabled"), "user_disabled"),
    ],
)
def test_bridge_problems_keep_their_code(core: CoreApi, error: ConnectorError, code: str) -> None:
    logged_in_30(core)
    with pytest.raises(ConnectorError) as caught:
        connector(FakeBridge(fail=error), version_family="3.0.3").test_connection()
    assert type(caught.value) is type(error)
    assert caught.value.code == code
    assert error.message in str(caught.value)


def test_4000_warns_that_the_api_is_open(core: CoreApi) -> None:
    core.on("api/account/login", httpx.Response(200, json={"success": "ok", "api_token": "b" * 26}))
    core.on("api/sale/order|addHistory", httpx.Response(200, json=NOT_FOUND))
    facts = connector(FakeBridge(Info(opencart_version="4.0.0.0", schema_family="4.0"))).test_connection()
    assert len([w for w in facts.warnings if "4.0.0.0" in w]) == 1
    assert "without logging in" in facts.warnings[0]


def test_30_broken_login_is_a_warning_not_an_error(core: CoreApi) -> None:
    core.on(
        "api/login",
        httpx.Response(
            200, text="<b>Fatal error</b>: Uncaught Exception: Error: You have an error in your SQL syntax"
        ),
    )
    facts = connector(FakeBridge(Info(opencart_version="3.0.2.0"))).test_connection()
    assert facts.details["family"] == "3.0.0"
    assert facts.details["core_api"].startswith("unavailable")
    assert any("3.0.0.0–3.0.2.0" in w for w in facts.warnings)


def test_a_family_setting_that_contradicts_the_store_is_named_in_the_error(core: CoreApi) -> None:
    logged_in_30(core)
    with pytest.raises(ProtocolError) as caught:
        connector(FakeBridge(), version_family="4.0").test_connection()
    assert "The channel is set to OpenCart 4.0.x, but the store reports OpenCart 3.0.3.8" in str(caught.value)


def test_a_family_setting_that_contradicts_the_store_is_a_warning_when_it_works(core: CoreApi) -> None:
    logged_in_30(core)
    facts = connector(FakeBridge(Info(opencart_version="2.3.0.2")), version_family="3.0.3").test_connection()
    assert any("but the store reports OpenCart 2.3.0.2" in warning for warning in facts.warnings)


def test_without_bridge_version_the_core_api_is_probed(core: CoreApi) -> None:
    missing = PermanentError("bridge not found", code="bridge_missing")
    core.on(
        "api/order",
        httpx.Response(403, text='{"error":"You do not have permission to access this page."}'),
        httpx.Response(200, json=NOT_FOUND),
    )
    with pytest.raises(PermanentError) as caught:
        connector(FakeBridge(fail=missing)).test_connection()
    assert str(caught.value) == "OpenCart's API login works, but the store bridge: bridge not found"
    assert core.routes() == ["api/order", "api/order"]
    assert core.requests[1].url.params["call"] == "history_add"


# --------------------------------------------------------------------------------------------------
# confirm_shipment
# --------------------------------------------------------------------------------------------------


def shipment(*numbers: str, status: str = "3") -> ShipmentRequest:
    return ShipmentRequest(
        order_external_id="42", tracking_numbers=numbers, carrier="UPS", processed_status=status
    )


def test_shipment_goes_through_the_core_api_with_carrier_tracking_and_notify(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    bridge = FakeBridge()
    result = connector(bridge, version_family="3.0.3").confirm_shipment(shipment("1Z999AA10123456784"))
    assert result.tracking_sent == ("1Z999AA10123456784",)
    (sent,) = core.history_forms()
    assert sent["order_status_id"] == ["3"]
    assert sent["notify"] == ["1"]
    assert sent["comment"] == ["Shipped with UPS.\nTracking number: 1Z999AA10123456784"]
    assert ("history", "42") in bridge.calls
    assert not [c for c in bridge.calls if c[0] == "add_history"]


def test_shipment_already_in_the_history_is_not_sent_again(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    bridge = FakeBridge(
        rows={
            "42": [
                {
                    "order_status_id": "3",
                    "comment": "Shipped with UPS &amp; Co.\nTracking number: 1Z999AA10123456784",
                }
            ]
        }
    )
    result = connector(bridge, version_family="3.0.3").confirm_shipment(shipment("1Z999AA10123456784"))
    assert core.requests == []
    assert result.warnings
    assert result.tracking_sent == ("1Z999AA10123456784",)


def test_same_tracking_under_another_status_is_sent(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    bridge = FakeBridge(
        rows={"42": [{"order_status_id": "2", "comment": "Tracking number: 1Z999AA10123456784"}]}
    )
    connector(bridge, version_family="3.0.3").confirm_shipment(shipment("1Z999AA10123456784"))
    assert len(core.history_forms()) == 1


def test_only_the_missing_tracking_numbers_are_sent(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    bridge = FakeBridge(rows={"42": [{"order_status_id": "3", "comment": "Tracking number: AAA111"}]})
    result = connector(bridge, version_family="3.0.3").confirm_shipment(shipment("AAA111", "BBB222"))
    assert result.tracking_sent == ("BBB222",)
    assert core.history_forms()[0]["comment"] == ["Shipped with UPS.\nTracking number: BBB222"]


def test_30_confirms_through_the_bridge(core: CoreApi) -> None:
    bridge = FakeBridge(Info(opencart_version="3.0.2.0"))
    conn = connector(bridge)
    conn.confirm_shipment(shipment("1Z999AA10123456784"))
    assert core.requests == []
    (call,) = [c for c in bridge.calls if c[0] == "add_history"]
    assert call[1] == ("42", "3", "Shipped with UPS.\nTracking number: 1Z999AA10123456784", True)
    conn.confirm_shipment(shipment("1Z999AA10123456784"))
    assert len([c for c in bridge.calls if c[0] == "add_history"]) == 1


def test_core_login_found_broken_falls_back_to_the_bridge(core: CoreApi) -> None:
    core.on(
        "api/login", httpx.Response(200, text="<b>Fatal error</b>: Uncaught Exception: Error: SQL syntax")
    )
    bridge = FakeBridge(
        Info(opencart_version="3.0.3.0")
    )  # the version claims 3.0.3, the login says otherwise
    connector(bridge).confirm_shipment(shipment("1Z1"))
    assert [c[0] for c in bridge.calls].count("add_history") == 1


def test_no_processed_status_is_refused() -> None:
    conn = connector(FakeBridge(), processed_status="")
    with pytest.raises(PermanentError) as caught:
        conn.confirm_shipment(ShipmentRequest(order_external_id="42", tracking_numbers=("X1",)))
    assert caught.value.code == "no_processed_status"


def test_a_non_numeric_order_id_is_refused_before_any_call(core: CoreApi) -> None:
    bridge = FakeBridge()
    with pytest.raises(PermanentError):
        connector(bridge).confirm_shipment(
            ShipmentRequest(order_external_id="42 OR 1=1", tracking_numbers=("X1",), processed_status="3")
        )
    assert bridge.calls == []
    assert core.requests == []


def test_41_signs_the_stores_language_when_en_gb_is_not_installed(core: CoreApi) -> None:
    core.on("api/order", httpx.Response(200, json=NOT_FOUND))
    info = Info(opencart_version="4.1.0.4", schema_family="4.1", languages=("de-de",))
    connector(FakeBridge(info)).test_connection()
    assert core.requests[0].url.params["language"] == "de-de"


def test_a_partial_shipment_keeps_the_orders_status_and_says_so(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    bridge = FakeBridge()
    partial = ShipmentRequest(
        order_external_id="42",
        tracking_numbers=("1ZPART1",),
        carrier="UPS",
        processed_status="3",
        is_partial=True,
        reference="SL-0123456789ab",
    )
    result = connector(bridge, version_family="3.0.3").confirm_shipment(partial)
    (sent,) = core.history_forms()
    assert sent["order_status_id"] == ["2"], "a partial shipment must not set the processed status"
    assert sent["comment"] == [
        "Part of your order was shipped with UPS.\nTracking number: 1ZPART1\nReference: SL-0123456789ab"
    ]
    assert any("not set to the processed status" in w for w in result.warnings)


def test_a_partial_shipment_takes_the_sellers_partial_status(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    partial = ShipmentRequest(
        order_external_id="42",
        tracking_numbers=("1ZPART1",),
        processed_status="3",
        is_partial=True,
        partial_status="15",
    )
    connector(FakeBridge(), version_family="3.0.3").confirm_shipment(partial)
    assert core.history_forms()[0]["order_status_id"] == ["15"]


def test_a_partial_shipment_through_the_bridge_keeps_the_status_then_the_last_one_moves_it() -> None:
    bridge = FakeBridge(Info(opencart_version="3.0.2.0"), status={"42": "1"})
    conn = connector(bridge)
    first = ShipmentRequest(
        order_external_id="42",
        tracking_numbers=("1ZPART1",),
        processed_status="3",
        is_partial=True,
        reference="SL-aaaaaaaaaaaa",
    )
    conn.confirm_shipment(first)
    assert bridge.status["42"] == "1"
    conn.confirm_shipment(first)  # a retry finds its reference
    last = ShipmentRequest(
        order_external_id="42",
        tracking_numbers=("1ZREST2",),
        processed_status="3",
        reference="SL-bbbbbbbbbbbb",
    )
    conn.confirm_shipment(last)
    assert [c[1][1] for c in bridge.calls if c[0] == "add_history"] == ["1", "3"]
    assert bridge.status["42"] == "3"


def test_a_row_holding_the_reference_is_the_earlier_write_whatever_its_text(core: CoreApi) -> None:
    """The seller may have edited nothing, but OpenCart escapes and the status may have moved on:
    the reference alone proves the write landed."""
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    bridge = FakeBridge(
        rows={"42": [{"order_status_id": "5", "comment": "Shipped.\nReference: SL-0123456789ab"}]},
        status={"42": "5"},
    )
    request = ShipmentRequest(
        order_external_id="42",
        tracking_numbers=("1Z999AA10123456784",),
        processed_status="3",
        reference="SL-0123456789ab",
    )
    result = connector(bridge, version_family="3.0.3").confirm_shipment(request)
    assert core.requests == []
    assert result.warnings == ("Already confirmed on the store; nothing was sent again.",)
    other = ShipmentRequest(
        order_external_id="42",
        tracking_numbers=("1Z999AA10123456784",),
        processed_status="3",
        reference="SL-0123456789ac",
    )
    connector(bridge, version_family="3.0.3").confirm_shipment(other)
    assert len(core.history_forms()) == 1, "another shipment's reference is not this one's"


def test_notify_follows_the_request(core: CoreApi) -> None:
    logged_in_30(core, httpx.Response(200, json=HISTORY_OK))
    request = ShipmentRequest(
        order_external_id="42", tracking_numbers=("Z9",), processed_status="3", notify_customer=False
    )
    connector(FakeBridge(), version_family="3.0.3").confirm_shipment(request)
    assert core.history_forms()[0]["notify"] == ["0"]


# --------------------------------------------------------------------------------------------------
# orders, listings, stock, prices
# --------------------------------------------------------------------------------------------------


def test_fetch_orders_passes_the_channel_settings_to_the_bridge() -> None:
    bridge = FakeBridge()
    pages = list(connector(bridge, order_lookback_days=14, import_statuses=["1", "2"]).fetch_orders("cp"))
    assert pages[0].orders[0].external_id == "42"
    assert ("fetch_orders", ("cp", 14, ("1", "2"), 100)) in bridge.calls


def test_list_listings_honours_use_options() -> None:
    bridge = FakeBridge()
    assert connector(bridge, use_options=False).list_listings()[0].sku == "SKU-1"
    assert ("list_listings", False) in bridge.calls


def test_push_stock_goes_in_batches_of_100() -> None:
    bridge = FakeBridge()
    updates = [StockUpdate(sku=f"S{i}", remote_id=str(i), quantity=i) for i in range(250)]
    results = connector(bridge).push_stock(updates)
    assert len(results) == 250
    assert [c[1] for c in bridge.calls if c[0] == "push_stock"] == [100, 100, 50]


def test_push_prices_result_per_item() -> None:
    updates = [PriceUpdate(sku="S1", remote_id="1", price=Decimal("5.00"))]
    assert connector(FakeBridge()).push_prices(updates)[0].ok


def test_a_short_batch_answer_is_a_protocol_error() -> None:
    updates = [
        StockUpdate(sku="S1", remote_id="1", quantity=1),
        StockUpdate(sku="S2", remote_id="2", quantity=2),
    ]
    with pytest.raises(ProtocolError):
        connector(FakeBridge(push_answers_short=True)).push_stock(updates)


def test_capabilities_are_declared_as_the_store_behaves() -> None:
    caps = OpenCartConnector.capabilities
    assert caps.tax_inclusive_prices is False, "OpenCart stores net prices; push_prices writes them as given"
    assert caps.partial_shipment is False, "one history entry per order, no shipment lines"
    assert caps.variants is True


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "CEST"])
def test_an_unknown_store_timezone_is_a_warning_naming_the_zone(core: CoreApi, zone: str) -> None:
    logged_in_30(core)
    facts = connector(FakeBridge(info_reply=Info(timezone=zone))).test_connection()
    zone_warnings = [w for w in facts.warnings if "time zone" in w]
    assert len(zone_warnings) == 1
    assert f"'{zone}'" in zone_warnings[0]
    assert "UTC" in zone_warnings[0]
    assert facts.timezone == zone


def test_closing_status_ids_are_declared_on_the_connector() -> None:
    assert OpenCartConnector.closed_status_codes == frozenset(
        {"3", "5", "7", "8", "9", "10", "11", "12", "13", "14", "16"}
    )


@pytest.mark.parametrize(
    ("version", "offset", "zone", "warned"),
    [
        ("1.3.0", -18000, "SYSTEM", True),  # MySQL on the host's New York time: summer time applies
        ("1.3.1", -18000, "SYSTEM", False),  # this file converts each date at its own offset
        ("1.3.0", 0, "SYSTEM", False),  # a host on UTC has no summer time
        ("1.3.0", -18000, "-05:00", False),  # a fixed offset has none either
    ],
)
def test_an_older_bridge_on_a_host_zone_with_summer_time_is_named(
    version: str, offset: int, zone: str, warned: bool
) -> None:
    info = Info(
        bridge_version=version,
        opencart_version="2.3.0.2",
        schema_family="2.x",
        timezone="America/New_York",
        php_timezone="America/New_York",
        database_utc_offset=offset,
        database_time_zone=zone,
    )
    warning = _summer_time_warning(info)  # type: ignore[arg-type]
    assert bool(warning) is warned
    if warned:
        assert "version 1.3.0" in warning
        assert "an hour off" in warning
        assert "replace the file" in warning


def test_an_older_bridge_file_is_named_in_a_warning(core: CoreApi) -> None:
    logged_in_30(core)
    facts = connector(FakeBridge(Info(bridge_version="1.0.0", features=()))).test_connection()
    assert any("version 1.0.0" in w and "cancelled" in w and "replace the file" in w for w in facts.warnings)
    current = connector(FakeBridge()).test_connection()
    assert not any("replace the file" in w for w in current.warnings)
