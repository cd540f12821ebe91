"""The "anything new since my checkpoint?" probe of each connector: what goes on the wire, and what
each reply means. Replies are scripted with respx; the sandbox contract suite runs the same probes
against the stores' behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.base import ConnectorOptions
from connectors.http import StoreHttp
from connectors.opencart.bridge_client import BridgeClient
from connectors.threedcart.connector import _Checkpoint
from connectors.xcart.connector import XCartConnector
from tests.connectors.threedcart.conftest import API, make_connector

SHOP = "https://shop.example.com"
BRIDGE = f"{SHOP}/storelink-bridge.php"
CURSOR = "2026-03-02 10:00:00|41"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


# -- OpenCart: the bridge's orders_changed ------------------------------------------------------------


def _bridge() -> BridgeClient:
    http = StoreHttp(
        SHOP,
        platform="opencart",
        client=httpx.Client(),
        allow_private_hosts=True,
        max_retries=1,
        backoff=0,
        sleep=lambda _seconds: None,
    )
    return BridgeClient(http, "Storelink", "k" * 64)


def _bridge_checkpoint(**extra: Any) -> str:
    return json.dumps({"v": 2, "cursor": CURSOR, "statuses": ["2", "1"], **extra})


def test_bridge_probe_asks_orders_changed_from_the_cursor_without_rows(router: respx.MockRouter) -> None:
    route = router.route(url__startswith=BRIDGE, params={"action": "orders_changed"}).mock(
        return_value=httpx.Response(200, json={"ok": True, "changed": False, "cursor": CURSOR, "until": "x"})
    )
    assert _bridge().orders_changed(_bridge_checkpoint(probe=True), import_statuses=["5"]) is False
    sent = route.calls.last.request
    assert sent.method == "GET"
    assert dict(sent.url.params) == {
        "action": "orders_changed",
        "cursor": CURSOR,
        "match": "ever",
        "statuses": "1,2,5",  # every status ever imported, as a download asks
    }
    route.mock(return_value=httpx.Response(200, json={"ok": True, "changed": True, "cursor": CURSOR}))
    assert _bridge().orders_changed(_bridge_checkpoint(probe=True), import_statuses=[]) is True


def test_bridge_probe_is_not_sent_for_a_checkpoint_an_older_bridge_wrote(router: respx.MockRouter) -> None:
    route = router.route(url__startswith=BRIDGE)
    assert _bridge().orders_changed(_bridge_checkpoint(), import_statuses=[]) is None
    assert not route.called


def test_an_older_bridge_file_put_back_means_download_as_before(router: respx.MockRouter) -> None:
    router.route(url__startswith=BRIDGE, params={"action": "orders_changed"}).mock(
        return_value=httpx.Response(
            404, json={"ok": False, "error": {"code": "unknown_action", "message": "Unknown action"}}
        )
    )
    assert _bridge().orders_changed(_bridge_checkpoint(probe=True), import_statuses=[]) is None


@pytest.mark.parametrize(
    ("served", "probe"), [("1.4.0", True), ("1.10.2", True), ("1.3.0", False), ("", False)]
)
def test_a_download_marks_the_checkpoint_when_the_bridge_can_answer(
    router: respx.MockRouter, served: str, probe: bool
) -> None:
    headers = {"X-Storelink-Bridge": served} if served else {}
    router.route(url__startswith=BRIDGE, params={"action": "orders"}).mock(
        return_value=httpx.Response(
            200, json={"ok": True, "orders": [], "cursor": CURSOR, "has_more": False}, headers=headers
        )
    )
    pages = list(_bridge().fetch_orders(_bridge_checkpoint(), lookback_days=7, import_statuses=[]))
    assert json.loads(pages[-1].checkpoint).get("probe", False) is probe


# -- 3DCart: countonly over the next download's window ------------------------------------------------


def _threedcart_checkpoint(connector: Any, counts: dict[str, int]) -> str:
    since = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).isoformat()
    window = connector._start_run(since, connector.zone).window
    return _Checkpoint(since=since, baseline={"window": window, "counts": counts}).dump()


def test_threedcart_probe_counts_both_passes_and_compares_with_the_last_download(
    router: respx.MockRouter,
) -> None:
    connector = make_connector()
    checkpoint = _threedcart_checkpoint(connector, {"updated": 4, "new": 2})
    totals = {"lastupdatestart": 4, "datestart": 2}

    def count(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        assert params.pop("countonly") == "1"
        (name,) = params
        return httpx.Response(200, json={"TotalCount": totals[name]})

    route = router.get(f"{API}/Orders").mock(side_effect=count)
    assert connector.orders_changed_since(checkpoint) is False
    asked = [dict(call.request.url.params) for call in route.calls]
    assert [sorted(params) for params in asked] == [
        ["countonly", "lastupdatestart"],
        ["countonly", "datestart"],
    ]
    assert asked[0]["lastupdatestart"] == "03/01/2026"  # a whole day before the last change, store time
    assert asked[1]["datestart"] == "03/01/2026 00:00:00"

    totals["datestart"] = 3  # a new order
    assert connector.orders_changed_since(checkpoint) is True
    totals.update(lastupdatestart=5, datestart=2)  # an order changed
    calls = route.call_count
    assert connector.orders_changed_since(checkpoint) is True
    assert route.call_count == calls + 1, "the first count that moved answers"


def test_threedcart_probe_without_a_baseline_or_mid_run_downloads_without_asking(
    router: respx.MockRouter,
) -> None:
    connector = make_connector()
    route = router.get(f"{API}/Orders")
    since = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).isoformat()
    assert connector.orders_changed_since(_Checkpoint(since=since).dump()) is True
    interrupted = _Checkpoint(since=since, run=connector._start_run(since, connector.zone))
    assert connector.orders_changed_since(interrupted.dump()) is True
    assert connector.orders_changed_since(_Checkpoint().dump()) is None  # no download yet
    assert not route.called


def test_threedcart_probe_on_a_store_without_orders_yet_counts_the_look_back_window(
    router: respx.MockRouter,
) -> None:
    """A store with no order in the look-back period keeps no ``since``; its polls still ask one
    count instead of downloading the whole window every time."""
    connector = make_connector()
    window = connector._start_run(None, connector.zone).window
    checkpoint = _Checkpoint(baseline={"window": window, "counts": {"new": 0}}).dump()
    route = router.get(f"{API}/Orders").mock(return_value=httpx.Response(404))  # 3DCart: none found
    assert connector.orders_changed_since(checkpoint) is False
    assert dict(route.calls.last.request.url.params) == {"datestart": window, "countonly": "1"}
    route.mock(return_value=httpx.Response(200, json={"TotalCount": 1}))
    assert connector.orders_changed_since(checkpoint) is True


# -- X-Cart: one-row reads with a date filter and on the newest change ---------------------------------


def _xcart(flavour: str = "auto") -> XCartConnector:
    options = ConnectorOptions(allow_private_hosts=True, max_retries=1, backoff=0.0, timeout=2.0)
    settings = {"api_flavour": flavour, "import_statuses": ["P", "A"], "currency": "USD"}
    return XCartConnector(SHOP, {"api_key": "rw-key-5f2b9c1d"}, settings, options=options)


def _xcart_checkpoint(api: str = "addon") -> str:
    return json.dumps(
        {"v": 2, "since": 1_780_000_000, "changed": 1_780_000_100, "open": [], "cursor": 0, "complete": True}
        | ({"api": api} if api else {})
    )


def test_xcart_addon_probe_reads_one_row_placed_since_then_the_newest_change(
    router: respx.MockRouter,
) -> None:
    newest = {"lastRenewDate": 1_780_000_099}  # a second before the last scan began

    def reply(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["_path"] == "order"
        assert "_schema" not in params, "the default schema: no associations"
        assert (params["_cnd[limit][0]"], params["_cnd[limit][1]"]) == ("0", "1")
        if "_cnd[date][0]" in params:
            assert params["_cnd[date][0]"] == "1780000000"
            assert params.get_list("_cnd[paymentStatus][]") == ["P", "A"]
            return httpx.Response(200, json=[], headers={"X-Result-Count": "0"})
        assert (params["_cnd[orderBy][0]"], params["_cnd[orderBy][1]"]) == ("o.lastRenewDate", "DESC")
        return httpx.Response(200, json=[newest], headers={"X-Result-Count": "1"})

    route = router.get(f"{SHOP}/admin.php").mock(side_effect=reply)
    connector = _xcart()
    assert connector.orders_changed_since(_xcart_checkpoint()) is False
    assert route.call_count == 2, "the flavour the download used is reused: no detection"
    newest["lastRenewDate"] = 1_780_000_100  # in the second the scan began: maybe after it read
    assert _xcart().orders_changed_since(_xcart_checkpoint()) is True


def test_xcart_probe_answers_yes_on_an_order_placed_since_without_a_second_read(
    router: respx.MockRouter,
) -> None:
    route = router.get(f"{SHOP}/admin.php").mock(
        return_value=httpx.Response(
            200, json=[{"order_id": 9, "date": 1_780_000_050}], headers={"X-Result-Count": "1"}
        )
    )
    assert _xcart("addon").orders_changed_since(_xcart_checkpoint(api="")) is True
    assert route.call_count == 1


def test_xcart_builtin_probe_uses_the_date_filter_and_the_last_change_sort(router: respx.MockRouter) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["itemsPerPage"] == "1"
        if "date[after]" in params:
            assert params["date[after]"] == "2026-05-28T20:26:40Z"
            return httpx.Response(200, json=[])
        assert params["order[lastRenewDate]"] == "desc"
        return httpx.Response(200, json=[{"id": 3, "update_date": "2026-05-28T20:28:19+00:00"}])

    router.get(f"{SHOP}/api/orders").mock(side_effect=reply)
    assert _xcart("builtin").orders_changed_since(_xcart_checkpoint(api="builtin")) is False
