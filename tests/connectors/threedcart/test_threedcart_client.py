"""The HTTP seam: request anatomy and every error mapping, against respx-scripted replies."""

from __future__ import annotations

import httpx
import pytest
import respx

from connectors.errors import AuthError, PermanentError, ProtocolError, RateLimited, TransientError
from connectors.threedcart.client import BUCKET_HEADROOM, BUCKET_SIZE, REFILL_PER_SECOND, ThreeDCartClient
from tests.connectors.threedcart.conftest import API, PRIVATE_KEY, STORE_URL, fixture, fresh_token, options


@pytest.fixture
def token() -> str:
    return fresh_token()


@pytest.fixture
def client(token: str) -> ThreeDCartClient:
    built = ThreeDCartClient(STORE_URL, token, options=options())
    built.http.sleep = lambda _seconds: None
    return built


def test_every_call_goes_to_the_api_host_with_the_three_headers(
    mock: respx.MockRouter, client: ThreeDCartClient, token: str
) -> None:
    route = mock.get(f"{API}/OrderStatus").mock(return_value=httpx.Response(200, json=[]))
    client.get_list("OrderStatus", {"limit": 5, "offset": 1}, what="statuses")
    request = route.calls.last.request
    assert request.url.host == "apirest.3dcart.com"
    assert request.url.path == "/3dCartWebAPI/v2/OrderStatus"
    assert request.headers["SecureURL"] == STORE_URL
    assert request.headers["PrivateKey"] == PRIVATE_KEY
    assert request.headers["Token"] == token
    assert request.headers["Accept"] == "application/json"
    assert request.url.params["limit"] == "5"
    assert request.url.params["offset"] == "1"


def test_an_international_store_address_goes_in_the_header_in_its_ascii_form(
    mock: respx.MockRouter, token: str
) -> None:
    """httpx cannot put "bücher" in a header (it was a 500); DNS and 3DCart know the xn-- form."""
    route = mock.get(f"{API}/OrderStatus").mock(return_value=httpx.Response(200, json=[]))
    ThreeDCartClient("https://bücher-laden.example", token, options=options()).get_list(
        "OrderStatus", {}, what="statuses"
    )
    assert route.calls.last.request.headers["SecureURL"] == "https://xn--bcher-laden-thb.example"


def test_a_non_ascii_token_is_a_clear_error_not_a_crash(mock: respx.MockRouter) -> None:
    route = mock.get(f"{API}/OrderStatus").mock(return_value=httpx.Response(200, json=[]))
    client = ThreeDCartClient(STORE_URL, "tökén-0123456789", options=options())
    with pytest.raises(PermanentError) as caught:
        client.get_list("OrderStatus", {}, what="statuses")
    assert caught.value.code == "header_encoding"
    assert not route.called


def test_api_base_can_be_overridden_for_the_sandbox(mock: respx.MockRouter, token: str) -> None:
    client = ThreeDCartClient(
        STORE_URL, token, options=options(api_base="http://127.0.0.1:9/3dCartWebAPI/v2/")
    )
    route = mock.get("http://127.0.0.1:9/3dCartWebAPI/v2/StoreSettings").mock(
        return_value=httpx.Response(200, json=fixture("store_settings.json"))
    )
    assert client.get_one("StoreSettings", what="settings")["StoreStandards"]["CurrencyCode"] == "USD"
    assert route.called


def test_client_bucket_stays_inside_the_stores_fifty_requests_refilled_two_per_second(
    client: ThreeDCartClient,
) -> None:
    assert (BUCKET_SIZE, REFILL_PER_SECOND) == (50, 2.0)
    # A few requests of headroom: the store counts arrivals, we count sends (latency varies).
    assert client.http.gate.capacity == BUCKET_SIZE - BUCKET_HEADROOM == 45
    assert client.http.gate.rate == 2.0


def test_bucket_is_shared_per_token_and_separate_between_tokens(token: str) -> None:
    first = ThreeDCartClient(STORE_URL, token, options=options())
    second = ThreeDCartClient(STORE_URL, token, options=options())
    other = ThreeDCartClient(STORE_URL, fresh_token(), options=options())
    assert first.http.gate is second.http.gate
    assert first.http.gate is not other.http.gate


def test_missing_app_private_key_is_an_operator_problem(token: str) -> None:
    with pytest.raises(PermanentError) as caught:
        ThreeDCartClient(STORE_URL, token, options=options(app_keys={}))
    assert caught.value.code == "app_key_missing"


def test_missing_token_asks_for_authorisation() -> None:
    with pytest.raises(AuthError) as caught:
        ThreeDCartClient(STORE_URL, "", options=options())
    assert "Authorize" in caught.value.message


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorised_is_auth_error_telling_the_seller_to_reauthorise(
    mock: respx.MockRouter, client: ThreeDCartClient, token: str, status: int
) -> None:
    mock.get(f"{API}/Orders").mock(
        return_value=httpx.Response(status, json={"Message": f"Authorization has been denied {token}"})
    )
    with pytest.raises(AuthError) as caught:
        client.get_list("Orders", {}, what="order list")
    message = caught.value.message
    assert "REST API" in message
    assert "Authorize" in message
    assert "scope" in message  # 401 also means the app lacks read/write permission
    assert caught.value.status_code == status
    assert token not in (caught.value.raw or "")


def test_404_on_a_list_is_an_empty_valid_end(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(404, content=b""))
    assert client.get_list("Orders", {}, what="order list") == []


def test_404_on_a_single_resource_is_not_found(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders/77").mock(return_value=httpx.Response(404))
    with pytest.raises(PermanentError) as caught:
        client.get_one("Orders/77", what="order 77")
    assert caught.value.code == "not_found"


def test_400_offset_past_end_is_the_end_of_the_list(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(400, json=fixture("offset_past_end_400.json")))
    assert client.get_list("Orders", {"offset": 301}, what="order list") == []


def test_other_400_is_permanent_with_the_store_message(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    body = [{"Key": "Error", "Value": "", "Status": "400", "Message": "Invalid date format"}]
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(PermanentError) as caught:
        client.get_list("Orders", {}, what="order list")
    assert "Invalid date format" in caught.value.message


def test_429_is_rate_limited(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    route = mock.get(f"{API}/Orders").mock(return_value=httpx.Response(429, headers={"Retry-After": "40"}))
    with pytest.raises(RateLimited) as caught:
        client.get_list("Orders", {}, what="order list")
    assert caught.value.retry_after == 40
    assert route.call_count == 1  # a long wait goes back to the scheduler instead of sleeping here


def test_429_with_short_retry_after_is_retried_inline(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    route = mock.get(f"{API}/Orders").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, json=[{"OrderID": 1}]),
        ]
    )
    assert client.get_list("Orders", {}, what="order list") == [{"OrderID": 1}]
    assert route.call_count == 2


def test_503_is_rate_limited(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(503, text="<html>busy</html>"))
    with pytest.raises(RateLimited) as caught:
        client.get_list("Orders", {}, what="order list")
    assert caught.value.status_code == 503


def test_500_is_transient_after_retries(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    route = mock.get(f"{API}/Orders").mock(return_value=httpx.Response(500))
    with pytest.raises(TransientError):
        client.get_list("Orders", {}, what="order list")
    assert route.call_count == 2  # max_retries=1


def test_timeout_is_transient(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError) as caught:
        client.get_list("Orders", {}, what="order list")
    assert caught.value.code == "timeout"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<html><body>Runtime Error</body></html>", "not_json"),
        (b"", "empty"),
        (b"\x00\xffgarbage", "not_json"),
        (b'{"OrderID": 5001}', "not_a_list"),
    ],
)
def test_unreadable_list_pages_are_protocol_errors(
    mock: respx.MockRouter, client: ThreeDCartClient, body: bytes, code: str
) -> None:
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(200, content=body))
    with pytest.raises(ProtocolError) as caught:
        client.get_list("Orders", {}, what="order list")
    assert caught.value.code == code


def test_raw_replies_are_kept_with_private_key_and_token_masked(
    mock: respx.MockRouter, client: ThreeDCartClient, token: str
) -> None:
    mock.get(f"{API}/Orders").mock(
        return_value=httpx.Response(200, text=f"<html>debug PrivateKey={PRIVATE_KEY} Token={token}</html>")
    )
    with pytest.raises(ProtocolError) as caught:
        client.get_list("Orders", {}, what="order list")
    assert caught.value.raw
    assert "debug" in caught.value.raw
    assert PRIVATE_KEY not in caught.value.raw
    assert token not in caught.value.raw


def test_countonly_returns_an_object(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    route = mock.get(f"{API}/Orders").mock(return_value=httpx.Response(200, json={"TotalCount": 306}))
    assert client.count("Orders", {"datestart": "03/01/2025 00:00:00"}, what="count") == 306
    assert route.calls.last.request.url.params["countonly"] == "1"


def test_count_without_total_is_protocol_error(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(200, json={"Total": 3}))
    with pytest.raises(ProtocolError):
        client.count("Orders", {}, what="count")


def test_single_get_unwraps_the_array_of_one(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.get(f"{API}/Orders/5001").mock(return_value=httpx.Response(200, json=[fixture("order_5001.json")]))
    assert client.get_one("Orders/5001", what="order")["OrderID"] == 5001


def test_single_get_with_several_records_is_protocol_error(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    mock.get(f"{API}/Orders/5001").mock(
        return_value=httpx.Response(200, json=[{"OrderID": 1}, {"OrderID": 2}])
    )
    with pytest.raises(ProtocolError):
        client.get_one("Orders/5001", what="order")


def test_pages_use_one_based_offsets_until_a_short_page(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    route = mock.get(f"{API}/Products").mock(
        side_effect=[
            httpx.Response(200, json=[{"n": 1}, {"n": 2}]),
            httpx.Response(200, json=[{"n": 3}, {"n": 4}]),
            httpx.Response(200, json=[{"n": 5}]),
        ]
    )
    pages = list(client.iterate_pages("Products", {}, limit=2, what="products"))
    assert [offset for offset, _ in pages] == [1, 3, 5]
    assert [call.request.url.params["offset"] for call in route.calls] == ["1", "3", "5"]


def test_pages_end_on_offset_past_end_after_a_full_page(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    mock.get(f"{API}/Products").mock(
        side_effect=[
            httpx.Response(200, json=[{"n": 1}, {"n": 2}]),
            httpx.Response(400, json=fixture("offset_past_end_400.json")),
        ]
    )
    pages = list(client.iterate_pages("Products", {}, limit=2, what="products"))
    assert pages == [(1, [{"n": 1}, {"n": 2}]), (3, [])]


def test_put_parses_per_item_results_including_206(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    route = mock.put(f"{API}/Products").mock(
        return_value=httpx.Response(206, json=fixture("write_partial_206.json"))
    )
    reply = client.put("Products", [{"SKUInfo": {"CatalogID": 11, "Stock": 1}}], what="update")
    assert reply.status_code == 206
    assert [(r.value, r.ok, r.message) for r in reply.results] == [
        ("11", True, "updated successfully"),
        ("12", False, "Product not found"),
    ]
    assert route.calls.last.request.headers["Content-Type"] == "application/json"


def test_put_with_unreadable_success_body_is_protocol_error(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    mock.put(f"{API}/Products").mock(return_value=httpx.Response(200, text='[{"Key":"CatalogID","Val'))
    with pytest.raises(ProtocolError):
        client.put("Products", [], what="update")


def test_put_bare_404_is_not_found(mock: respx.MockRouter, client: ThreeDCartClient) -> None:
    mock.put(f"{API}/Orders/1/Shipments/0").mock(return_value=httpx.Response(404))
    with pytest.raises(PermanentError) as caught:
        client.put("Orders/1/Shipments/0", {}, what="shipment")
    assert caught.value.code == "not_found"


def test_put_400_error_array_is_permanent_with_message(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    body = [{"Key": "Error", "Value": "", "Status": "400", "Message": "Bad Request"}]
    mock.put(f"{API}/Orders/1/Shipments/0").mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(PermanentError) as caught:
        client.put("Orders/1/Shipments/0", {}, what="shipment")
    assert "Bad Request" in caught.value.message


def test_put_401_is_auth_error_mentioning_write_scope(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    mock.put(f"{API}/Products").mock(return_value=httpx.Response(401, content=b""))
    with pytest.raises(AuthError) as caught:
        client.put("Products", [], what="product update")
    assert "scope" in caught.value.message


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("401", "Authorization has been denied for this request.", AuthError),
        ("", "Invalid Token", AuthError),
        ("403", "Forbidden", AuthError),
        ("429", "Too many requests", RateLimited),
        ("500", "An error has occurred.", TransientError),
        ("503", "Service Unavailable", RateLimited),
        ("400", "The request is invalid.", PermanentError),
        ("", "Something went wrong", PermanentError),
    ],
)
def test_an_error_array_with_http_200_is_the_typed_error_for_every_read(
    mock: respx.MockRouter, client: ThreeDCartClient, status: str, message: str, expected: type
) -> None:
    body = [{"Key": "Error", "Value": "", "Status": status, "Message": message}]
    mock.get(f"{API}/StoreSettings").mock(return_value=httpx.Response(200, json=body))
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(200, json=body))
    for call in (
        lambda: client.get_one("StoreSettings", what="store settings"),
        lambda: client.get_list("Orders", {}, what="order list"),
        lambda: client.count("Orders", {}, what="order count"),
    ):
        with pytest.raises(expected) as caught:
            call()
        assert message in caught.value.message


def test_an_error_array_with_http_200_on_a_write_is_the_typed_error(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    refused = [{"Key": "Error", "Value": "", "Status": "400", "Message": "CatalogID is required"}]
    mock.put(f"{API}/Products").mock(return_value=httpx.Response(200, json=refused))
    with pytest.raises(PermanentError) as caught:
        client.put("Products", [{}], what="product update")
    assert "CatalogID is required" in caught.value.message
    denied = [{"Key": "Error", "Value": "", "Status": "401", "Message": "Authorization has been denied"}]
    mock.put(f"{API}/Orders/1").mock(return_value=httpx.Response(200, json=denied))
    with pytest.raises(AuthError):
        client.put("Orders/1", {}, what="order update")


def test_an_error_array_with_http_200_saying_no_more_is_the_end_of_a_list(
    mock: respx.MockRouter, client: ThreeDCartClient
) -> None:
    past = [
        {
            "Key": "Error",
            "Value": "",
            "Status": "400",
            "Message": "Offset amount exceeds the total number of records",
        }
    ]
    mock.get(f"{API}/Orders").mock(return_value=httpx.Response(200, json=past))
    assert client.get_list("Orders", {"offset": 301}, what="order list") == []
    none = [{"Key": "Error", "Value": "", "Status": "404", "Message": "No orders found"}]
    mock.get(f"{API}/Products").mock(return_value=httpx.Response(200, json=none))
    assert client.get_list("Products", {}, what="product list") == []


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(401, json={"Message": "Store not found for the SecureURL provided."}),
        httpx.Response(
            200, json=[{"Key": "Error", "Value": "", "Status": "401", "Message": "Invalid SecureURL"}]
        ),
    ],
)
def test_a_refusal_that_names_the_store_says_to_check_the_store_url(
    mock: respx.MockRouter, client: ThreeDCartClient, reply: httpx.Response
) -> None:
    mock.get(f"{API}/StoreSettings").mock(return_value=reply)
    with pytest.raises(AuthError) as caught:
        client.get_one("StoreSettings", what="store settings")
    assert caught.value.code == "store_unknown"
    assert "check the store URL" in caught.value.message
    assert STORE_URL in caught.value.message
