"""The HTTP seam: request anatomy and every error mapping, against respx-scripted replies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from connectors.base import ConnectorOptions
from connectors.errors import AuthError, PermanentError, ProtocolError, RateLimited, TransientError
from connectors.xcart.client import AddonClient, BuiltinClient, admin_url_of, form_pairs, store_time_from

STORE = "https://shop.example.com"
ADMIN = f"{STORE}/admin.php"
KEY = "rw-key-5f2b9c1d"
EMPTY_ERROR = {"Content-type": "text/html; charset=UTF-8"}
OPTIONS = ConnectorOptions(allow_private_hosts=True, max_retries=2, backoff=0.0, timeout=2.0)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def addon() -> Iterator[AddonClient]:
    client = AddonClient(STORE, KEY, options=OPTIONS)
    client.http.sleep = lambda _seconds: None
    yield client
    client.close()


@pytest.fixture
def builtin() -> Iterator[BuiltinClient]:
    client = BuiltinClient(STORE, KEY, options=OPTIONS)
    client.http.sleep = lambda _seconds: None
    yield client
    client.close()


def json_reply(data: object, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=data, headers={"X-Result-Count": "1", **headers})


def test_get_sends_target_key_path_schema_and_conditions(mock: respx.MockRouter, addon: AddonClient) -> None:
    route = mock.get(ADMIN).mock(return_value=json_reply([]))
    addon.get("order", schema="complex", cnd=[("_cnd[paymentStatus][]", "P"), ("_cnd[paymentStatus][]", "A")])
    params = route.calls.last.request.url.params
    assert params["target"] == "RESTAPI"
    assert params["_key"] == KEY
    assert params["_path"] == "order"
    assert params["_schema"] == "complex"
    assert params.get_list("_cnd[paymentStatus][]") == ["P", "A"]
    assert "action" not in params
    assert "_method" not in params


def test_write_sends_form_encoded_bracket_fields_with_put(mock: respx.MockRouter, addon: AddonClient) -> None:
    route = mock.put(ADMIN).mock(return_value=json_reply({"order_id": 5}))
    addon.write("PUT", "order/5", {"trackingNumbers": [{"value": "1Z"}], "shippingStatus": {"code": "S"}})
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    # the key travels in the body, not in the address the store's access log keeps
    assert request.content == (
        f"_key={KEY}&".encode()
        + b"model%5BtrackingNumbers%5D%5B0%5D%5Bvalue%5D=1Z&model%5BshippingStatus%5D%5Bcode%5D=S"
    )
    assert request.url.params["_path"] == "order/5"
    assert "_key" not in request.url.params


def test_form_pairs_flatten_nested_values_php_style() -> None:
    assert form_pairs("model", [{"product_id": 3, "amount": 0, "defaultAmount": False}]) == [
        ("model[0][product_id]", "3"),
        ("model[0][amount]", "0"),
        ("model[0][defaultAmount]", "0"),
    ]


def test_admin_url_defaults_to_admin_php_and_keeps_a_renamed_script() -> None:
    assert admin_url_of("https://shop.example.com/store/") == (
        "https://shop.example.com/store",
        "https://shop.example.com/store/admin.php",
    )
    assert (
        admin_url_of("https://shop.example.com/xc/myadmin.php")[1]
        == "https://shop.example.com/xc/myadmin.php"
    )


def test_null_body_is_not_found_not_an_error(mock: respx.MockRouter, addon: AddonClient) -> None:
    mock.get(ADMIN).mock(return_value=httpx.Response(200, text="null", headers={"X-Result-Count": "1"}))
    assert addon.get("order/999").data is None


def test_empty_403_with_rest_error_is_auth_error_with_the_seed_wording(
    mock: respx.MockRouter, addon: AddonClient
) -> None:
    mock.get(ADMIN).mock(
        return_value=httpx.Response(403, headers={**EMPTY_ERROR, "X-REST-Error": "Access denied"})
    )
    with pytest.raises(AuthError) as caught:
        addon.get("order-status-shipping")
    error = caught.value
    assert (
        "X-Cart refused the API key: copy 'API key (read/write)' from My addons > REST API" in error.message
    )
    assert error.code == "bad_key"
    assert error.status_code == 403
    assert "X-REST-Error: Access denied" in (error.raw or "")
    assert KEY not in (error.raw or "")
    assert "***" in (error.raw or "")


def test_403_on_a_write_after_reads_worked_says_the_key_is_read_only(
    mock: respx.MockRouter, addon: AddonClient
) -> None:
    mock.get(ADMIN).mock(return_value=json_reply([]))
    mock.put(ADMIN).mock(return_value=httpx.Response(403, headers=EMPTY_ERROR))
    addon.get("order-status-shipping")
    with pytest.raises(AuthError) as caught:
        addon.write("PUT", "product/0")
    assert caught.value.code == "read_only_key"
    assert "read-only" in caught.value.message


def test_404_means_add_on_missing_or_wrong_end_point(mock: respx.MockRouter, addon: AddonClient) -> None:
    mock.get(ADMIN).mock(return_value=httpx.Response(404, headers=EMPTY_ERROR))
    with pytest.raises(ProtocolError) as caught:
        addon.get("order")
    assert "add-on is not installed or the end point is wrong" in caught.value.message


def test_redirect_to_login_is_add_on_missing_and_never_followed(
    mock: respx.MockRouter, addon: AddonClient
) -> None:
    route = mock.get(ADMIN).mock(
        return_value=httpx.Response(302, headers={**EMPTY_ERROR, "Location": "admin.php?target=login"})
    )
    with pytest.raises(ProtocolError) as caught:
        addon.get("order")
    assert "REST API add-on is not installed or is disabled" in caught.value.message
    assert caught.value.code == "addon_missing"
    assert route.call_count == 1


def test_redirect_to_https_asks_for_an_https_end_point(mock: respx.MockRouter) -> None:
    client = AddonClient("http://shop.example.com", KEY, options=ConnectorOptions(allow_private_hosts=True))
    mock.get("http://shop.example.com/admin.php").mock(
        return_value=httpx.Response(
            301, headers={"Location": "https://shop.example.com/admin.php?target=RESTAPI"}
        )
    )
    with pytest.raises(ProtocolError) as caught:
        client.get("order")
    assert caught.value.code == "https_redirect"


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>Service temporarily misconfigured</body></html>",
        '[{"orderId":1,"items":[{"sku":"A"}',  # a truncated page must not decode to a fragment
        "",
    ],
)
def test_html_garbage_or_truncated_json_is_a_protocol_error(
    mock: respx.MockRouter, addon: AddonClient, body: str
) -> None:
    mock.get(ADMIN).mock(return_value=httpx.Response(200, text=body))
    with pytest.raises(ProtocolError):
        addon.get("order")


def test_php_notices_before_the_json_are_tolerated(mock: respx.MockRouter, addon: AddonClient) -> None:
    body = '<br />\n<b>Deprecated</b>: Function strftime() is deprecated in x.php on line 3<br />\n[{"id":1}]'
    mock.get(ADMIN).mock(return_value=httpx.Response(200, text=body))
    assert addon.get("order-status-shipping").data == [{"id": 1}]


def test_400_with_rest_error_is_permanent_with_the_reason(mock: respx.MockRouter, addon: AddonClient) -> None:
    mock.put(ADMIN).mock(
        return_value=httpx.Response(400, headers={**EMPTY_ERROR, "X-REST-Error": "Input data is incorrect"})
    )
    with pytest.raises(PermanentError) as caught:
        addon.write("PUT", "product", [{"product_id": 1, "amount": 2}])
    assert "Input data is incorrect" in caught.value.message


def test_5xx_is_retried_then_transient(mock: respx.MockRouter, addon: AddonClient) -> None:
    route = mock.get(ADMIN).mock(return_value=httpx.Response(500, text="<html>Fatal error</html>"))
    with pytest.raises(TransientError):
        addon.get("order")
    assert route.call_count == 3


def test_a_write_that_adds_rows_is_not_retried(mock: respx.MockRouter, addon: AddonClient) -> None:
    route = mock.put(ADMIN).mock(return_value=httpx.Response(502))
    with pytest.raises(TransientError):
        addon.write("PUT", "order/5", {"trackingNumbers": [{"value": "1Z"}]}, idempotent=False)
    assert route.call_count == 1


def test_timeout_is_transient(mock: respx.MockRouter, addon: AddonClient) -> None:
    mock.get(ADMIN).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError) as caught:
        addon.get("order")
    assert caught.value.code == "timeout"


def test_429_is_rate_limited_with_retry_after(mock: respx.MockRouter, addon: AddonClient) -> None:
    mock.get(ADMIN).mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(RateLimited) as caught:
        addon.get("order")
    assert caught.value.retry_after == 120


def test_session_cookie_is_not_sent_back(mock: respx.MockRouter, addon: AddonClient) -> None:
    route = mock.get(ADMIN).mock(return_value=json_reply([], **{"Set-Cookie": "xid=abc123; path=/"}))
    addon.get("order-status-shipping")
    addon.get("order-status-payment")
    assert "cookie" not in route.calls.last.request.headers


def test_store_time_comes_from_the_date_header_and_the_last_one_wins() -> None:
    response = httpx.Response(
        200, headers=[("Date", "Mon, 06 May 2024 10:00:00 GMT"), ("Date", "Mon, 06 May 2024 12:30:00 GMT")]
    )
    stamp = store_time_from(response)
    assert stamp is not None
    assert (stamp.hour, stamp.minute) == (12, 30)
    assert store_time_from(httpx.Response(200)) is None


@pytest.mark.parametrize(
    ("header", "utc"),
    [
        ("Wed, 02 Dec 2026 10:00:00 +0000", "2026-12-02T10:00:00+00:00"),  # the add-on's date('r')
        ("Wed, 02 Dec 2026 11:00:00 +0100", "2026-12-02T10:00:00+00:00"),  # PHP set to Berlin
        ("Wed, 02 Dec 2026 05:00:00 -0500", "2026-12-02T10:00:00+00:00"),
        ("Wed, 02 Dec 2026 10:00:00 GMT", "2026-12-02T10:00:00+00:00"),
    ],
)
def test_store_time_reads_the_numeric_zone_the_add_on_sends(header: str, utc: str) -> None:
    stamp = store_time_from(httpx.Response(200, headers={"Date": header}))
    assert stamp is not None
    assert stamp.isoformat() == utc


# -- 5.5+ built-in API ----------------------------------------------------------------------------


def test_builtin_sends_the_token_header_and_reads_json(
    mock: respx.MockRouter, builtin: BuiltinClient
) -> None:
    route = mock.get(f"{STORE}/api/orders").mock(return_value=httpx.Response(200, json=[]))
    assert builtin.get("orders", [("itemsPerPage", 1)]).data == []
    request = route.calls.last.request
    assert request.headers["X-Auth-Token"] == KEY
    assert request.url.params["itemsPerPage"] == "1"
    assert KEY not in str(request.url)


def test_builtin_401_is_auth_error(mock: respx.MockRouter, builtin: BuiltinClient) -> None:
    mock.get(f"{STORE}/api/orders").mock(
        return_value=httpx.Response(401, json={"message": "Invalid credentials."})
    )
    with pytest.raises(AuthError) as caught:
        builtin.get("orders")
    assert "Invalid credentials." in caught.value.message
    assert KEY not in (caught.value.raw or "")


def test_builtin_403_on_write_is_read_only(mock: respx.MockRouter, builtin: BuiltinClient) -> None:
    mock.put(f"{STORE}/api/products/3").mock(
        return_value=httpx.Response(403, json={"detail": "Access Denied."})
    )
    with pytest.raises(AuthError) as caught:
        builtin.put("products/3", {"amount": 2})
    assert caught.value.code == "read_only_key"


def test_builtin_404_is_none_when_allowed_and_a_protocol_error_otherwise(
    mock: respx.MockRouter, builtin: BuiltinClient
) -> None:
    mock.get(f"{STORE}/api/orders/9").mock(return_value=httpx.Response(404, json={"detail": "Not Found"}))
    assert builtin.get("orders/9", missing_ok=True).data is None
    with pytest.raises(ProtocolError):
        builtin.get("orders/9")


def test_builtin_400_is_permanent_with_the_detail(mock: respx.MockRouter, builtin: BuiltinClient) -> None:
    mock.put(f"{STORE}/api/orders/5/shipping_status").mock(
        return_value=httpx.Response(400, json={"detail": "Status code 'X' is wrong"})
    )
    with pytest.raises(PermanentError) as caught:
        builtin.put("orders/5/shipping_status", {"code": "X"})
    assert "Status code 'X' is wrong" in caught.value.message
