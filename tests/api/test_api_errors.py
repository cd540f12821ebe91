"""Hostile input to the REST API: every answer is a JSON error with a ``message``, never a 500 or HTML.

Each case here answered a 500 (or Django's HTML error page) before: JSON nested thousands deep
(``json.loads`` recursion), bodies over the upload cap (``RequestDataTooBig`` became an HTML 400),
NUL bytes in query filters (PostgreSQL refuses them), impossible dates, lone surrogates in SKUs,
wrong methods and content types, and CSRF failures of a session-authenticated client.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db

DEEP = 10_000


def _write_endpoints(channel_id: str, listing_id: str) -> list[tuple[str, str]]:
    """Every API operation that reads a JSON body."""
    return [
        ("post", "/api/v1/channels/"),
        ("patch", f"/api/v1/channels/{channel_id}/"),
        ("post", f"/api/v1/channels/{channel_id}/reauthorise/"),
        ("post", f"/api/v1/channels/{channel_id}/sync/"),
        ("post", "/api/v1/shipments/"),
        ("post", "/api/v1/products/bulk/"),
        ("patch", f"/api/v1/listings/{listing_id}/"),
        ("post", "/api/v1/listings/push/"),
    ]


def _assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body.get("message"), str), body
    assert body["message"].strip()
    return body


@pytest.fixture
def listing_id(alice: Any) -> str:
    from inventory.models import Listing

    channel = SalesChannelFactory(account=alice.account)
    listing = Listing.objects.create(account=alice.account, channel=channel, sku="A-1", remote_id="1")
    return str(listing.pk)


@pytest.mark.parametrize("shape", ["list", "object"])
def test_deeply_nested_json_is_a_400_on_every_write_endpoint(
    alice: Any, alice_api: APIClient, listing_id: str, shape: str
) -> None:
    channel = SalesChannelFactory(account=alice.account)
    body = "[" * DEEP + "]" * DEEP if shape == "list" else '{"a":' * DEEP + "1" + "}" * DEEP
    for method, url in _write_endpoints(str(channel.pk), listing_id):
        response = getattr(alice_api, method)(url, data=body, content_type="application/json")
        error = _assert_json_error(response, 400)
        assert "nested" in error["message"], (url, error)


def test_moderately_nested_json_still_parses(alice_api: APIClient) -> None:
    nested: Any = "deep"
    for _ in range(60):
        nested = {"x": [nested]}  # 120 levels inside the item: too deep
    response = alice_api.post("/api/v1/products/bulk/", data=[{"sku": "N-1", "name": nested}], format="json")
    assert "nested" in _assert_json_error(response, 400)["message"]
    nested = "deep"
    for _ in range(30):
        nested = {"x": [nested]}  # 60 levels plus the list and the item: within the limit
    response = alice_api.post("/api/v1/products/bulk/", data=[{"sku": "N-1", "name": nested}], format="json")
    # Parsed, then refused by the item's own validation, not by the depth guard.
    error = _assert_json_error(response, 400)
    assert error["errors"] == [{"index": 0, "sku": "N-1", "errors": {"name": ["Enter the name as text."]}}]


def test_brackets_inside_strings_do_not_count() -> None:
    from config.parsers import exceeds_depth

    assert not exceeds_depth(b'{"name": "' + b"[" * 500 + b'\\", "b": "\\"}"}')
    assert not exceeds_depth(b"[" * 64 + b"]" * 64)
    assert exceeds_depth(b"[" * 65 + b"]" * 65)
    assert exceeds_depth(b"[{" * 40 + b"}]" * 40)
    assert exceeds_depth(b"[" * 100)  # unbalanced: the decoder would recurse before failing
    assert not exceeds_depth(b"[[1,2], [3, [4]], {}]")


@pytest.mark.parametrize("megabytes", [10, 100])
def test_oversized_body_is_a_json_413(alice_api: APIClient, megabytes: int) -> None:
    body = b'{"name": "' + b"x" * (megabytes * 1024 * 1024) + b'"}'
    response = alice_api.post("/api/v1/channels/", data=body, content_type="application/json")
    error = _assert_json_error(response, 413)
    assert "bytes" in error["message"] or "large" in error["message"]


def test_oversized_declared_length_is_refused_before_reading(alice_api: APIClient) -> None:
    response = alice_api.post(
        "/api/v1/shipments/",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
    )
    _assert_json_error(response, 413)


def test_bulk_keeps_its_larger_cap(alice_api: APIClient) -> None:
    # 10,000 items are several megabytes: the bulk endpoint has its own, larger, limit.
    body = b'[{"sku": "BIG-1", "on_hand": 1}' + b" " * (3 * 1024 * 1024) + b"]"
    assert len(body) > 2_621_440  # Django's default DATA_UPLOAD_MAX_MEMORY_SIZE
    response = alice_api.post("/api/v1/products/bulk/", data=body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == 1
    too_big = b"[" + b" " * (16 * 1024 * 1024) + b"]"
    response = alice_api.post("/api/v1/products/bulk/", data=too_big, content_type="application/json")
    _assert_json_error(response, 413)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/products/?sku=A%00B",
        "/api/v1/products/?search=A%00B",
        "/api/v1/listings/?sku=A%00B",
        "/api/v1/orders/?status=1%00",
        "/api/v1/products/?updated_since=2026-13-01T00:00:00Z",
        "/api/v1/orders/?updated_since=2026-13-01T00:00:00Z",
        "/api/v1/products/?updated_since=2026-02-30T00:00:00Z",
    ],
)
def test_impossible_query_values_are_a_400(alice_api: APIClient, url: str) -> None:
    error = _assert_json_error(alice_api.get(url), 400)
    assert error.get("errors"), error


def test_lone_surrogate_in_a_bulk_sku_is_an_item_error(alice_api: APIClient) -> None:
    # A JSON escape can carry half a UTF-16 pair, which no database can store.
    body = '[{"sku": "OK-1", "on_hand": 1}, {"sku": "BAD-\\ud800", "on_hand": 2}]'
    response = alice_api.post("/api/v1/products/bulk/", data=body, content_type="application/json")
    error = _assert_json_error(response, 400)
    assert [item["index"] for item in error["errors"]] == [1]
    assert "sku" in error["errors"][0]["errors"]


def test_lone_surrogate_elsewhere_is_a_400(alice: Any, alice_api: APIClient) -> None:
    channel = SalesChannelFactory(account=alice.account)
    body = '{"name": "Shop \\udfff"}'
    response = alice_api.patch(f"/api/v1/channels/{channel.pk}/", data=body, content_type="application/json")
    _assert_json_error(response, 400)


def test_unknown_path_and_wrong_method_are_json(alice: Any, alice_api: APIClient) -> None:
    _assert_json_error(alice_api.get("/api/v1/nothing-here/"), 404)
    _assert_json_error(alice_api.get(f"/api/v1/channels/{uuid.uuid4()}/"), 404)
    _assert_json_error(alice_api.put("/api/v1/channels/", data={}, format="json"), 405)
    _assert_json_error(alice_api.get("/api/v1/products/bulk/"), 405)


def test_wrong_content_type_is_a_json_415(alice_api: APIClient) -> None:
    for url in ("/api/v1/channels/", "/api/v1/products/bulk/"):
        response = alice_api.post(url, data="a=b", content_type="application/x-www-form-urlencoded")
        _assert_json_error(response, 415)


def test_invalid_utf8_body_is_a_400(alice_api: APIClient) -> None:
    for url in ("/api/v1/channels/", "/api/v1/products/bulk/"):
        response = alice_api.post(url, data=b'{"name": "\xff\xfe"}', content_type="application/json")
        _assert_json_error(response, 400)


def test_csrf_failure_of_a_session_client_is_json(alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice.user)
    response = client.post("/api/v1/channels/", data="{}", content_type="application/json")
    error = _assert_json_error(response, 403)
    assert "CSRF" in error["message"]


def test_unauthenticated_and_throttled_are_json(client: Client) -> None:
    from rest_framework.exceptions import Throttled

    from channels.api_errors import api_exception_handler

    response = client.get("/api/v1/channels/", HTTP_AUTHORIZATION="Api-Key nope")
    assert response.status_code in (401, 403)
    _assert_json_error(response, response.status_code)
    throttled = api_exception_handler(Throttled(wait=30), {})
    assert throttled is not None
    assert throttled.status_code == 429
    assert "30" in throttled.data["message"]


def test_unhandled_error_is_a_json_500(alice_api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("channels.api.ChannelViewSet.refine_queryset", broken)
    alice_api.raise_request_exception = False
    response = alice_api.get("/api/v1/channels/")
    error = _assert_json_error(response, 500)
    assert "boom" not in error["message"]


def test_html_pages_keep_html_errors(client: Client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
