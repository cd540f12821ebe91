"""Request shapes and error mapping of the OpenCart core-API client, per family, with respx.

Replies are OpenCart's own wire (fixtures in ``tests/fixtures/opencart/core/``): HTTP 200 errors,
``[]`` for a wrong key, PHP notices before JSON, 4.0's 404/500 pages, 4.1's 403 labelled text/html.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors.errors import AuthError, PermanentError, ProtocolError, TransientError
from connectors.http import StoreHttp
from connectors.opencart.client import (
    CoreLoginBroken,
    OpenCartCoreClient,
    OrderNotFound,
    clock_skew_seconds,
    comment_mentions,
    ip_in_text,
    shipment_comment,
    tracking_numbers_in_comment,
)

BASE = "https://shop.example.com"
KEY = "A" * 64
FIXTURES = Path(__file__).parents[2] / "fixtures" / "opencart" / "core"
NOW = 1_767_225_600.0

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


def wire(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


def json_reply(name: str, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, text=wire(name), headers={"Content-Type": "application/json", **headers})


def html_reply(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=text, headers={"Content-Type": "text/html; charset=UTF-8"})


class FakeStore:
    """Answers ``index.php?route=...`` from a queue of replies per route and records every request."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[httpx.Request] = []
        mock.route(host="shop.example.com", path="/index.php").mock(side_effect=self._answer)

    def on(self, route: str, *replies: Reply) -> FakeStore:
        self.replies.setdefault(route, []).extend(replies)
        return self

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = request.url.params.get("route", "")
        queue = self.replies.get(route)
        if not queue:
            return html_reply(wire("not_found_40.html"), 404)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def calls(self, route: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.params.get("route") == route]


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode(), keep_blank_values=True)


@pytest.fixture
def store() -> Iterator[FakeStore]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield FakeStore(mock)


def client(
    family: str, *, username: str = "Storelink", version: str = "", retries: int = 0
) -> OpenCartCoreClient:
    http = StoreHttp(
        BASE,
        platform="opencart",
        max_retries=retries,
        backoff=0,
        secrets=[KEY],
        sleep=lambda _: None,
        allow_private_hosts=True,  # no DNS look-up in tests
    )
    return OpenCartCoreClient(http, family, username, KEY, version=version, clock=lambda: NOW)


# --------------------------------------------------------------------------------------------------
# Request shapes per family
# --------------------------------------------------------------------------------------------------


def test_21_login_sends_the_key_only_and_history_uses_token_and_query_order_id(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_21_success.json"))
    store.on("api/order/history", json_reply("history_success.json"))
    client("2.1").add_history("42", "3", "UPS 1Z999AA10123456784", notify=True)
    login, history = store.requests
    assert login.method == "POST"
    assert form(login) == {"key": [KEY]}
    assert login.headers["content-type"] == "application/x-www-form-urlencoded"
    assert history.url.params["token"] == "Qz7kR2mXbT9vLw4nYp8sHc3jFd6gAe1u"
    assert history.url.params["order_id"] == "42"
    assert form(history) == {
        "order_status_id": ["3"],
        "comment": ["UPS 1Z999AA10123456784"],
        "notify": ["1"],
        "override": ["0"],
    }


def test_22_keeps_the_phpsessid_cookie_of_the_login(store: FakeStore) -> None:
    login = json_reply("login_21_success.json", **{"Set-Cookie": "PHPSESSID=abc123sess; path=/"})
    notices = wire("notices_23_php82.txt")
    store.on("api/login", login)
    store.on("api/order/history", httpx.Response(200, text=notices + wire("history_success.json")))
    core = client("2.2")
    core.add_history("42", "3", "x", notify=False)
    history = store.calls("api/order/history")[0]
    assert history.headers["cookie"] == "PHPSESSID=abc123sess"
    assert history.url.params["token"] == "Qz7kR2mXbT9vLw4nYp8sHc3jFd6gAe1u"
    assert "api_token" not in history.url.params


def test_303_login_sends_username_and_key_and_history_uses_api_token(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", json_reply("history_success.json"))
    client("3.0.3").add_history("7", "15", "done", notify=False)
    login, history = store.requests
    assert form(login) == {"username": ["Storelink"], "key": [KEY]}
    assert history.url.params["api_token"] == "2f1c0d9e8b7a6f5e4d3c2b1a09"
    assert history.url.params["order_id"] == "7"
    assert "order_id" not in form(history)


def test_40_uses_account_login_and_the_pipe_method_route_with_order_id_in_the_body(store: FakeStore) -> None:
    store.on("api/account/login", json_reply("login_30_success.json"))
    store.on("api/sale/order|addHistory", json_reply("history_success.json"))
    client("4.0").add_history("42", "3", "DHL 1234567890", notify=True)
    login, history = store.requests
    assert form(login) == {"username": ["Storelink"], "key": [KEY]}
    assert login.url.params["store_id"] == "0"
    assert login.url.params["language"] == "en-gb"
    assert "%7C" in str(history.url)  # '|' travels percent-encoded
    assert history.url.params["api_token"] == "2f1c0d9e8b7a6f5e4d3c2b1a09"
    assert list(form(history)) == ["order_id", "order_status_id", "comment", "notify", "override"]
    assert form(history)["order_id"] == ["42"]


def test_402_known_version_uses_the_dot_separator(store: FakeStore) -> None:
    store.on("api/account/login", json_reply("login_30_success.json"))
    store.on("api/sale/order.addHistory", json_reply("history_success.json"))
    client("4.0", version="4.0.2.3").add_history("42", "3", "x", notify=False)
    assert len(store.calls("api/sale/order.addHistory")) == 1


def test_check_connection_probes_order_zero_without_writing(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", json_reply("history_not_found.json"))
    check = client("3.0.3").check_connection()
    assert check.authenticated
    probe = store.calls("api/order/history")[0]
    assert probe.url.params["order_id"] == "0"
    assert form(probe)["order_status_id"] == ["0"]


def test_41_check_connection_is_one_signed_call(store: FakeStore) -> None:
    store.on("api/order", json_reply("history_not_found.json"))
    assert client("4.1").check_connection().authenticated
    (request,) = store.requests
    assert request.url.params["call"] == "history_add"
    assert request.url.params["username"] == "Storelink"
    assert request.url.params["time"] == str(int(NOW))
    assert form(request)["order_id"] == ["0"]


# --------------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "route", "reply"),
    [
        ("2.2", "api/login", httpx.Response(200, text="[]")),
        ("3.0.3", "api/login", httpx.Response(200, text="[]")),
        ("2.1", "api/login", json_reply("login_21_wrong_key.json")),
        ("4.0", "api/account/login", json_reply("login_40_wrong_key.json")),
    ],
)
def test_wrong_key_is_auth_error_bad_key(
    store: FakeStore, family: str, route: str, reply: httpx.Response
) -> None:
    store.on(route, reply)
    with pytest.raises(AuthError) as caught:
        client(family).check_connection()
    assert caught.value.code == "bad_key"
    assert KEY not in (caught.value.raw or "")


@pytest.mark.parametrize(
    ("family", "route", "fixture", "ip"),
    [
        ("2.2", "api/login", "login_23_ip_refused.json", "203.0.113.4"),
        ("3.0.3", "api/login", "login_23_ip_refused.json", "203.0.113.4"),
        ("4.0", "api/account/login", "login_40_ip_refused.json", "2001:db8::7"),
    ],
)
def test_ip_refused_names_the_ip_to_add(
    store: FakeStore, family: str, route: str, fixture: str, ip: str
) -> None:
    store.on(route, json_reply(fixture))
    with pytest.raises(AuthError) as caught:
        client(family).check_connection()
    assert caught.value.code == "ip_not_allowed"
    assert (
        str(caught.value) == f"OpenCart refused the IP {ip}: add it to System > Users > API > IP addresses."
    )


def test_21_ip_refusal_points_at_the_api_user_setting(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_21_ip_refused.json"))
    with pytest.raises(AuthError) as caught:
        client("2.1").login()
    assert "OpenCart refused the IP 203.0.113.4" in str(caught.value)
    assert "Settings > Option > API User" in str(caught.value)


def test_23_notices_before_json_are_skipped(store: FakeStore) -> None:
    notices = wire("notices_23_php82.txt")
    assert len(notices) > 1500
    store.on("api/login", httpx.Response(200, text=notices + wire("login_21_success.json")))
    store.on("api/order/history", httpx.Response(200, text=notices + wire("history_not_found.json")))
    assert client("2.2").check_connection().authenticated


def test_expired_session_permission_error_logs_in_again_once(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", json_reply("history_permission.json"), json_reply("history_success.json"))
    client("3.0.3").add_history("42", "3", "x", notify=False)
    assert len(store.calls("api/login")) == 2
    assert len(store.calls("api/order/history")) == 2


def test_permission_error_twice_is_auth_error(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", json_reply("history_permission.json"))
    with pytest.raises(AuthError) as caught:
        client("3.0.3").add_history("42", "3", "x", notify=False)
    assert caught.value.code == "permission_denied"
    assert "IP addresses" in str(caught.value)
    assert len(store.calls("api/login")) == 2


@pytest.mark.parametrize(
    "rejection",
    [
        html_reply(wire("fatal_40_bad_token.html"), 500),
        html_reply(wire("not_found_40.html"), 404),
    ],
    ids=["500-fatal", "404-page"],
)
def test_40_bad_token_pages_mean_log_in_again_then_auth_error(
    store: FakeStore, rejection: httpx.Response
) -> None:
    store.on("api/account/login", json_reply("login_30_success.json"))
    store.on("api/sale/order|addHistory", rejection)
    store.on("api/sale/order.addHistory", rejection)
    with pytest.raises(AuthError) as caught:
        client("4.0").add_history("42", "3", "x", notify=False)
    assert caught.value.code == "session_rejected"
    assert len(store.calls("api/account/login")) == 2


def test_40_fatal_page_then_success_after_relogin(store: FakeStore) -> None:
    store.on("api/account/login", json_reply("login_30_success.json"))
    store.on(
        "api/sale/order|addHistory",
        html_reply(wire("fatal_40_bad_token.html"), 500),
        json_reply("history_success.json"),
    )
    client("4.0").add_history("42", "3", "x", notify=False)
    assert len(store.calls("api/account/login")) == 2


def test_40_plain_500_stays_transient(store: FakeStore) -> None:
    store.on("api/account/login", json_reply("login_30_success.json"))
    store.on("api/sale/order|addHistory", html_reply("<h1>500 Internal Server Error</h1>", 500))
    with pytest.raises(TransientError):
        client("4.0").add_history("42", "3", "x", notify=False)
    assert len(store.calls("api/sale/order|addHistory")) == 1, "a write is never retried blindly"


def test_41_403_with_a_skewed_store_clock_says_clock_skew(store: FakeStore) -> None:
    store.on("api/order", json_reply("forbidden_41.json", 403, Date=formatdate(NOW + 1200, usegmt=True)))
    with pytest.raises(AuthError) as caught:
        client("4.1").check_connection()
    assert caught.value.code == "clock_skew"
    assert "1200 seconds ahead of Storelink's" in str(caught.value)


def test_41_403_with_matching_clocks_blames_credentials(store: FakeStore) -> None:
    reply = json_reply("forbidden_41.json", 403, Date=formatdate(NOW + 3, usegmt=True))
    reply.headers["Content-Type"] = "text/html; charset=utf-8"
    store.on("api/order", reply)
    with pytest.raises(AuthError) as caught:
        client("4.1").check_connection()
    assert caught.value.code == "signature_rejected"
    assert "IP addresses" in str(caught.value)


def test_30_broken_login_not_json_is_core_login_broken(store: FakeStore) -> None:
    store.on("api/login", html_reply(wire("login_30_sql_error.html")))
    with pytest.raises(CoreLoginBroken) as caught:
        client("3.0.0").check_connection()
    assert "store bridge" in str(caught.value)


def test_30_broken_login_as_500_is_core_login_broken_too(store: FakeStore) -> None:
    store.on("api/login", html_reply(wire("login_30_sql_error.html"), 500))
    with pytest.raises(CoreLoginBroken):
        client("3.0.0").login()


def test_unknown_order_is_order_not_found(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", json_reply("history_not_found.json"))
    with pytest.raises(OrderNotFound):
        client("3.0.3").add_history("999", "3", "x", notify=False)
    assert len(store.calls("api/login")) == 1, "'not found' is an answer, not a reason to log in again"


def test_login_redirect_is_not_followed_and_names_the_target(store: FakeStore) -> None:
    store.on("api/login", httpx.Response(301, headers={"Location": "https://www.shop.example.com/index.php"}))
    with pytest.raises(PermanentError) as caught:
        client("2.2").login()
    assert caught.value.code == "redirect"
    assert "https://www.shop.example.com/index.php" in str(caught.value)
    assert len(store.requests) == 1


def test_html_page_instead_of_json_is_protocol_error(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", html_reply("<html><body>Maintenance</body></html>"))
    with pytest.raises(ProtocolError) as caught:
        client("3.0.3").add_history("42", "3", "x", notify=False)
    assert "HTML page" in str(caught.value)


def test_garbage_is_protocol_error(store: FakeStore) -> None:
    store.on("api/login", httpx.Response(200, text="\x00\x13garbage{not json"))
    with pytest.raises(ProtocolError):
        client("2.2").login()


def test_history_timeout_is_transient_and_not_retried(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on("api/order/history", httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError) as caught:
        client("3.0.3", retries=3).add_history("42", "3", "x", notify=False)
    assert caught.value.code == "timeout"
    assert len(store.calls("api/order/history")) == 1


def test_login_timeout_is_retried(store: FakeStore) -> None:
    store.on("api/login", httpx.ConnectTimeout("slow"), json_reply("login_30_success.json"))
    core = client("3.0.3", retries=2)
    core.login()
    assert core.token == "2f1c0d9e8b7a6f5e4d3c2b1a09"
    assert len(store.calls("api/login")) == 2


def test_error_as_object_on_history_is_read(store: FakeStore) -> None:
    store.on("api/login", json_reply("login_30_success.json"))
    store.on(
        "api/order/history",
        httpx.Response(200, json={"error": {"warning": "Warning: Order could not be found!"}}),
    )
    with pytest.raises(OrderNotFound):
        client("3.0.3").add_history("42", "3", "x", notify=False)


def test_order_id_must_be_a_positive_number(store: FakeStore) -> None:
    with pytest.raises(OrderNotFound):
        client("3.0.3").add_history("42; DROP", "3", "x", notify=False)
    assert store.requests == []


# --------------------------------------------------------------------------------------------------
# Helpers the connector and the sandbox share
# --------------------------------------------------------------------------------------------------


def test_shipment_comment_and_reading_it_back_after_escaping() -> None:
    one = shipment_comment(["1Z999AA10123456784"], "UPS", "Ground")
    assert one == "Shipped with UPS Ground.\nTracking number: 1Z999AA10123456784"
    several = shipment_comment(["A1", " B2 ", ""], "DHL & Co")
    assert several == "Shipped with DHL & Co.\nTracking numbers: A1, B2"
    stored = several.replace("&", "&amp;")  # as OpenCart keeps it
    assert tracking_numbers_in_comment(stored) == ["A1", "B2"]
    assert shipment_comment([]) == "Shipped."


def test_comment_mentions_matches_whole_numbers_only() -> None:
    assert comment_mentions("Tracking number: 1Z999", "1Z999")
    assert comment_mentions("Sent by hand, ref 1Z999.", "1Z999")  # a seller's own wording counts too
    assert not comment_mentions("Tracking number: 1Z9990", "1Z999")
    assert comment_mentions("Tracking number: JJD&lt;1&gt;", "JJD<1>")
    assert not comment_mentions("anything", " ")


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("Warning: Your IP 203.0.113.7 is not allowed to access this API!", "203.0.113.7"),
        ("Warnung: Ihre IP 2001:db8::7 ist nicht erlaubt", "2001:db8::7"),
        ("Warning: Incorrect API Key!", ""),
        ("Warning: session expired at 10:11:12", ""),
    ],
)
def test_ip_in_text(text: str, ip: str) -> None:
    assert ip_in_text(text) == ip


def test_clock_skew_takes_the_farthest_of_repeated_date_headers() -> None:
    response = httpx.Response(
        403,
        headers=[("Date", formatdate(NOW + 2, usegmt=True)), ("Date", formatdate(NOW - 900, usegmt=True))],
    )
    assert clock_skew_seconds(response, NOW) == pytest.approx(-900, abs=1)
    assert clock_skew_seconds(httpx.Response(403), NOW) is None
