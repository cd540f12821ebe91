"""The shared HTTP layer: URL guard, lenient JSON, masking, retries — the rules every connector inherits."""

from __future__ import annotations

import httpx
import pytest
import respx

from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.http import Masker, StoreHttp, check_store_url, parse_json_lenient


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://[::1", "not a valid web address"),
        ("ftp://shop.example.com", "must start with https://"),
        ("https://user:pw@shop.example.com", "user name or password"),
        ("https://", "no host name"),
        ("http://shop.example.com", "must use https://"),
        ("https://127.0.0.1/", "private or reserved"),
        ("https://169.254.169.254/latest/meta-data", "private or reserved"),
        ("https://[::ffff:10.0.0.1]/", "private or reserved"),
        ("https://localhost:8443/", "not a public address"),
        ("https://shop.example.com:99999/", "invalid port"),
    ],
)
def test_hostile_store_urls_are_refused_with_a_reason(url: str, fragment: str) -> None:
    with pytest.raises(PermanentError) as caught:
        check_store_url(url)
    assert fragment in caught.value.message
    assert caught.value.code == "bad_url"


def test_private_hosts_pass_only_when_the_deployment_allows_them() -> None:
    assert check_store_url("http://127.0.0.1:8701/", allow_private=True) == "http://127.0.0.1:8701"


def test_json_after_php_notices_is_found() -> None:
    body = (
        '<br />\n<b>Notice</b>: Undefined index: x in <b>/var/www/a.php</b> on line <b>3</b>{"a": {"b": [1]}}'
    )
    assert parse_json_lenient(body) == {"a": {"b": [1]}}


def test_a_body_without_json_is_an_error_not_an_empty_result() -> None:
    with pytest.raises(ValueError):
        parse_json_lenient("<html><body>Maintenance</body></html>")


def test_masker_hides_plain_and_url_encoded_secrets() -> None:
    mask = Masker(["s3cr3t/key+1"])
    assert mask("k=s3cr3t/key+1&x=s3cr3t%2Fkey%2B1") == "k=***&x=***"


def _http(**kwargs: object) -> StoreHttp:
    return StoreHttp(
        "https://shop.example.com", platform="test", allow_private_hosts=True, sleep=lambda _s: None, **kwargs
    )


@respx.mock
def test_idempotent_reads_retry_5xx_then_succeed() -> None:
    route = respx.get("https://shop.example.com/x").mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json={"ok": True})]
    )
    assert _http(max_retries=3).request("GET", "x").json() == {"ok": True}
    assert route.call_count == 3


@respx.mock
def test_writes_are_never_retried() -> None:
    route = respx.post("https://shop.example.com/x").mock(return_value=httpx.Response(500))
    with pytest.raises(TransientError):
        _http(max_retries=3).request("POST", "x", data={"a": "1"})
    assert route.call_count == 1


@respx.mock
def test_long_retry_after_goes_back_to_the_scheduler() -> None:
    respx.get("https://shop.example.com/x").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "120"})
    )
    with pytest.raises(RateLimited) as caught:
        _http().request("GET", "x")
    assert caught.value.retry_after == 120


@respx.mock
def test_timeouts_become_transient_errors_with_words() -> None:
    respx.get("https://shop.example.com/x").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError) as caught:
        _http(max_retries=1).request("GET", "x")
    assert "did not answer" in caught.value.message


@respx.mock
def test_redirects_are_not_followed_on_writes() -> None:
    respx.post("https://shop.example.com/x").mock(
        return_value=httpx.Response(302, headers={"Location": "https://shop.example.com/login"})
    )
    reply = _http().request("POST", "x", follow_redirects=True)
    assert reply.status_code == 302


def test_masker_learns_secrets_after_creation() -> None:
    mask = Masker(["initial-key"])
    mask.add("session-token-123")
    assert mask("a=initial-key&api_token=session-token-123") == "a=***&api_token=***"


def test_a_header_value_that_cannot_be_encoded_is_a_permanent_error_not_a_crash() -> None:
    """A non-ASCII token or key (or an operator's app key) makes httpx raise UnicodeEncodeError while
    building the request; it is the same on every attempt and its text quotes the secret."""
    secret = "ключ-0123456789"
    with respx.mock(assert_all_called=False) as router:
        route = router.get("https://shop.example.com/api").respond(200, json={})
        with pytest.raises(PermanentError) as caught:
            _http(secrets=[secret]).request("GET", "/api", headers={"X-Auth-Token": secret})
    assert caught.value.code == "header_encoding"
    assert "only printable ASCII" in caught.value.message
    assert secret not in f"{caught.value.message} {caught.value.raw} {caught.value!r}"
    assert caught.value.__cause__ is None
    assert not route.called


def test_a_header_value_h11_refuses_is_a_permanent_error_and_not_retried() -> None:
    """A line break in a header value passes httpx and is refused by h11 on the open connection."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.settimeout(0.5)
            try:
                accepted.append(conn.recv(65536))
            except OSError:
                accepted.append(b"")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        http = StoreHttp(
            f"http://127.0.0.1:{server.getsockname()[1]}",
            platform="test",
            allow_private_hosts=True,
            sleep=lambda _s: None,
        )
        with pytest.raises(PermanentError) as caught:
            http.request("GET", "/api", headers={"Token": "abc\nInjected: yes"})
    finally:
        server.close()
    assert caught.value.code == "header_encoding"
    assert b"Injected" not in b"".join(accepted)
    assert len(accepted) <= 1, "not retried"
