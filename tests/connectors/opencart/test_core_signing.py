"""The OpenCart 4.1 signer against vectors computed by PHP itself.

``tests/fixtures/opencart/core/signing_vectors.json`` was produced by ``signing_vectors.php`` (same
folder), which repeats OpenCart 4.1.0.4's server-side check with PHP's own ``htmlspecialchars``,
``trim``, ``http_build_query``, ``md5`` and ``hash_hmac`` — an oracle independent of our Python.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from connectors.http import StoreHttp
from connectors.opencart import signing
from connectors.opencart.client import OpenCartCoreClient, form_body

VECTORS = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "opencart" / "core" / "signing_vectors.json").read_text("utf-8")
)


def _pairs(vector: dict[str, Any]) -> list[tuple[str, str]]:
    """PHP encodes an empty POST array as ``[]``, a filled one as an object (in the order sent)."""
    return list(vector["post"].items()) if vector["post"] else []


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_string_and_signature_match_php(vector: dict[str, Any]) -> None:
    pairs = _pairs(vector)
    message = signing.string_to_sign(
        call=vector["call"],
        username=vector["username"],
        host=signing.host_header(vector["base_url"]),
        path=signing.script_directory(vector["base_url"]),
        store_id=int(vector["store_id"]),
        language=vector["language"],
        currency=vector["currency"],
        post_pairs=pairs,
        timestamp=vector["time"],
    )
    assert message == vector["expected_string"]
    assert signing.signature(vector["key"], message) == vector["expected_signature"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_sign_call_builds_the_query_php_checks(vector: dict[str, Any]) -> None:
    signed = signing.sign_call(
        key=vector["key"],
        username=vector["username"],
        base_url=vector["base_url"],
        call=vector["call"],
        post_pairs=_pairs(vector),
        timestamp=vector["time"],
        store_id=int(vector["store_id"]),
        language=vector["language"],
        currency=vector["currency"],
    )
    params = dict(signed.params)
    assert params["signature"] == vector["expected_signature"]
    assert params["route"] == "api/order"
    assert params["time"] == str(vector["time"])
    assert signed.host == vector["host"]


def test_php_clean_escapes_like_htmlspecialchars_ent_compat() -> None:
    assert signing.php_clean(" a & \"b\" <c> 'd' ") == "a &amp; &quot;b&quot; &lt;c&gt; 'd'"
    assert signing.php_clean("&amp;") == "&amp;amp;"  # already-escaped text is escaped again, as in PHP


def test_php_urlencode_encodes_tilde_and_uses_plus_for_space() -> None:
    assert signing.php_urlencode("a b~c-d_e.f/é") == "a+b%7Ec-d_e.f%2F%C3%A9"


def test_host_header_keeps_a_non_default_port_only() -> None:
    assert signing.host_header("https://Shop.Example.com:443/") == "shop.example.com"
    assert signing.host_header("http://shop.example.com:80") == "shop.example.com"
    assert signing.host_header("http://127.0.0.1:8080/shop") == "127.0.0.1:8080"
    assert signing.host_header("https://[2001:db8::1]:8443") == "[2001:db8::1]:8443"
    # a header carries only ASCII: an international domain name is sent (and signed) in its xn-- form
    assert signing.host_header("https://Bücher.example:8443/shop") == "xn--bcher-kva.example:8443"


def test_script_directory_for_root_and_subfolder_installs() -> None:
    assert signing.script_directory("https://shop.example.com") == "/"
    assert signing.script_directory("https://shop.example.com/") == "/"
    assert signing.script_directory("https://example.com/shop/") == "/shop/"
    assert signing.script_directory("https://example.com/shop/index.php") == "/shop/"


def test_the_client_sends_what_it_signed() -> None:
    """Host header with port, signature percent-encoded in the query, body bytes in the signed order."""
    vector = VECTORS[1]
    base = vector["base_url"]
    with respx.mock(assert_all_called=True) as mock, httpx.Client() as raw:
        route = mock.post(f"{base}/index.php").mock(
            return_value=httpx.Response(200, json={"success": "Success: You have modified orders!"})
        )
        http = StoreHttp(base, platform="opencart", client=raw, allow_private_hosts=True, max_retries=0)
        client = OpenCartCoreClient(
            http,
            "4.1",
            vector["username"],
            vector["key"],
            currency=vector["currency"],
            clock=lambda: float(vector["time"]),
        )
        client.add_history(
            vector["post"]["order_id"],
            vector["post"]["order_status_id"],
            vector["post"]["comment"],
            notify=vector["post"]["notify"] == "1",
        )
        request = route.calls.last.request
    assert request.headers["host"] == "127.0.0.1:8080"
    raw_query = urlsplit(str(request.url)).query
    assert (
        "signature="
        + vector["expected_signature"].replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        in raw_query
    )
    query = parse_qs(raw_query)
    assert query["call"] == ["history_add"]
    assert query["username"] == [vector["username"]]
    assert request.content == form_body(_pairs(vector))
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
