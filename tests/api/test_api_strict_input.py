"""The API refuses what its schema does not allow instead of ignoring it: unknown fields (PATCH
``store_url`` used to be dropped silently), any "sync now" body that is not the documented one,
out-of-range or malformed page sizes and booleans, invisible characters in text."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from channels.models import SalesChannel
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(alice: Any, monkeypatch: pytest.MonkeyPatch) -> SalesChannel:
    monkeypatch.setattr("channels.sync.send_job", lambda channel_id, job: None)
    return SalesChannelFactory(
        account=alice.account, connection_state="ok", store_url="https://shop.example.com"
    )


def test_patch_refuses_store_url_instead_of_ignoring_it(alice_api: APIClient, channel: SalesChannel) -> None:
    response = alice_api.patch(
        f"/api/v1/channels/{channel.pk}/",
        {"name": "New", "store_url": "https://evil.example.com"},
        format="json",
    )
    assert response.status_code == 400
    assert "reauthorise" in response.json()["errors"]["store_url"][0]
    channel.refresh_from_db()
    assert channel.store_url == "https://shop.example.com"
    assert channel.name != "New"


@pytest.mark.parametrize(
    "body", [[], ["orders"], {"jobs": ["orders"], "force": True}, {"jobs": "orders"}, "x"]
)
def test_sync_now_refuses_undocumented_bodies(alice_api: APIClient, channel: SalesChannel, body: Any) -> None:
    response = alice_api.post(f"/api/v1/channels/{channel.pk}/sync/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["message"]


def test_sync_now_accepts_the_documented_bodies(alice_api: APIClient, channel: SalesChannel) -> None:
    assert alice_api.post(f"/api/v1/channels/{channel.pk}/sync/").status_code == 202
    response = alice_api.post(f"/api/v1/channels/{channel.pk}/sync/", {"jobs": ["orders"]}, format="json")
    assert response.status_code == 202
    assert response.json()["jobs"] == ["orders"]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        (
            "post",
            "/api/v1/shipments/",
            {"order": "00000000-0000-0000-0000-000000000000", "tracking_numbers": ["1"], "x": 1},
        ),
        ("post", "/api/v1/listings/push/", {"channel": "00000000-0000-0000-0000-000000000000", "all": True}),
        ("post", "/api/v1/products/bulk/", {"items": [{"sku": "A", "on_hand": 1}], "mode": "replace"}),
    ],
)
def test_unknown_fields_are_refused(alice_api: APIClient, method: str, url: str, body: Any) -> None:
    response = getattr(alice_api, method)(url, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["message"]


@pytest.mark.parametrize(
    "query", ["page_size=0", "page_size=abc", "page_size=100000", "page_size=", "page_size=-1"]
)
def test_bad_page_sizes_are_refused(alice_api: APIClient, query: str) -> None:
    for path in ("/api/v1/orders/", "/api/v1/products/", "/api/v1/sync-runs/"):
        response = alice_api.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert "page_size" in response.json()["errors"]


def test_booleans_and_ids_are_checked(alice_api: APIClient) -> None:
    assert alice_api.get("/api/v1/listings/?unmatched=true").status_code == 200
    assert alice_api.get("/api/v1/listings/?unmatched=5").status_code == 400
    assert alice_api.get("/api/v1/listings/?include_removed=yes").status_code == 400
    assert alice_api.get("/api/v1/orders/?channel=").status_code == 400
    assert alice_api.get("/api/v1/products/?updated_since=").status_code == 400
    assert alice_api.get("/api/v1/sync-runs/?state=").status_code == 400
    assert alice_api.get("/api/v1/shipments/?state=").status_code == 400
    assert alice_api.get("/api/v1/products/?sku=" + "a" * 256).status_code == 400


@pytest.mark.parametrize("text", ["Shop\\u202e", "Sh\\u200bop", "Shop\\u001b", "Shop\\u007f"])
def test_invisible_characters_in_bodies_are_refused(
    alice_api: APIClient, channel: SalesChannel, text: str
) -> None:
    body = '{"name": "' + text + '"}'
    response = alice_api.patch(f"/api/v1/channels/{channel.pk}/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "name" in response.json()["message"]


def test_schema_says_what_is_enforced(alice_api: APIClient) -> None:
    schema = alice_api.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    assert components["PatchedChannelUpdateRequest"]["additionalProperties"] is False
    assert "store_url" not in components["PatchedChannelUpdateRequest"]["properties"]
    assert components["SyncRequestRequest"]["additionalProperties"] is False
    for platform in ("OpenCart", "XCart", "ThreeDCart"):
        create = components[f"{platform}ChannelCreateRequest"]
        assert create["additionalProperties"] is False
        assert "#" not in create["properties"]["store_url"]["pattern"].split("[^", 1)[0]
        assert components[f"{platform}CredentialsRequest"]["additionalProperties"] is False
        assert components[f"{platform}SettingsRequest"]["additionalProperties"] is False
    # one body per platform, told apart by ``platform``
    assert components["ChannelCreateRequest"]["discriminator"]["propertyName"] == "platform"
    assert len(components["ChannelCreateRequest"]["oneOf"]) == 3
    assert "credentials" in components["OpenCartChannelCreateRequest"]["required"]
    assert "credentials" not in components["ThreeDCartChannelCreateRequest"]["required"]
    for path, method in [("/api/v1/channels/", "post"), ("/api/v1/channels/{id}/", "patch")]:
        assert "409" in schema["paths"][path][method]["responses"]
    assert "409" in schema["paths"]["/api/v1/products/bulk/"]["post"]["responses"]
    sync = schema["paths"]["/api/v1/channels/{id}/sync/"]["post"]["responses"]
    assert {"202", "400", "409", "413", "415"} <= set(sync)


@pytest.mark.parametrize("currency", [False, 0, [], {}])
def test_a_currency_of_the_wrong_type_is_refused_not_replaced(
    alice_api: APIClient, fake_store: Any, currency: Any
) -> None:
    response = alice_api.post(
        "/api/v1/channels/",
        {
            "platform": "opencart",
            "name": "Shop",
            "store_url": "https://shop.example.com",
            "credentials": {"api_username": "Default", "api_key": "A" * 32},
            "settings": {"currency": currency},
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "currency" in response.json()["errors"]
    assert not SalesChannel.objects.exists()


@pytest.mark.parametrize(
    "since",
    [
        "0201-10-31T02:35:20+18:12",
        "0001-01-01T00:00:00+18:00",
        "9999-12-31T23:59:59-18:00",
        "2026-01-01T00:00:60Z",
    ],
)
def test_every_rfc3339_time_is_a_valid_filter(alice_api: APIClient, since: str) -> None:
    # PostgreSQL refuses offsets beyond ±15:59 and Python years outside 1-9999; RFC 3339 allows both.
    for path in ("/api/v1/products/", "/api/v1/orders/"):
        response = alice_api.get(path, {"updated_since": since})
        assert response.status_code == 200, (path, since, response.content[:200])


def _create(**overrides: Any) -> dict[str, Any]:
    return {
        "platform": "opencart",
        "name": "Strict shop",
        "store_url": "https://strict.example.com",
        "credentials": {"api_username": "Default", "api_key": "Key0123456789abcdefABCDEF0000"},
    } | overrides


@pytest.mark.parametrize(
    "body",
    [
        _create(name=5),
        _create(name="   "),
        _create(store_url=7),
        _create(credentials={"api_key": "Key0123456789abcdefABCDEF0000", "token": "x"}),
        _create(credentials={"api_key": 12345678901234567890}),
        _create(settings={"order_interval_minutes": "5"}),
        _create(settings={"stock_sync": "yes"}),
        _create(settings={"import_statuses": "1"}),
        _create(settings={"currency": None}),
        _create(settings={"api_flavour": "auto"}),  # an X-Cart setting on an OpenCart channel
    ],
)
def test_create_refuses_what_the_platforms_shape_does_not_allow(
    alice_api: APIClient, fake_store: Any, body: dict[str, Any]
) -> None:
    response = alice_api.post("/api/v1/channels/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    assert not SalesChannel.objects.filter(name="Strict shop").exists()


def test_refusals_by_the_stores_state_are_409(alice_api: APIClient, fake_store: Any) -> None:
    response = alice_api.post(
        "/api/v1/channels/", _create(settings={"processed_status": "99"}), format="json"
    )
    assert response.status_code == 409, response.content
    assert "not one of your store's order statuses" in response.json()["errors"]["processed_status"][0]
    # a 3DCart channel waiting for its token has no store answer to take the currency from
    response = alice_api.post(
        "/api/v1/channels/",
        {"platform": "threedcart", "name": "Gifts", "store_url": "https://gifts.example.com"},
        format="json",
    )
    assert response.status_code == 409, response.content
    assert "not reported its currency" in response.json()["errors"]["currency"][0]
    response = alice_api.post(
        "/api/v1/channels/",
        {
            "platform": "threedcart",
            "name": "Gifts",
            "store_url": "https://gifts.example.com",
            "settings": {"currency": "EUR"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content


def test_patch_and_reauthorise_tell_another_platforms_shape_from_a_wrong_one(
    alice_api: APIClient, channel: SalesChannel, fake_store: Any
) -> None:
    url = f"/api/v1/channels/{channel.pk}/"
    # fits X-Cart's settings, not this OpenCart channel's: the schema cannot know the platform
    response = alice_api.patch(url, {"settings": {"api_flavour": "auto"}}, format="json")
    assert response.status_code == 409, response.content
    assert "api_flavour" in response.json()["errors"]
    # fits no platform at all
    response = alice_api.patch(url, {"settings": {"order_interval_minutes": "5"}}, format="json")
    assert response.status_code == 400, response.content
    response = alice_api.patch(url, {"settings": {"no_such_setting": 1}}, format="json")
    assert response.status_code == 400, response.content
    # an X-Cart key (any text) on an OpenCart channel (16+ letters and digits)
    response = alice_api.post(url + "reauthorise/", {"credentials": {"api_key": "x-cart-key"}}, format="json")
    assert response.status_code == 409, response.content
    response = alice_api.post(url + "reauthorise/", {"credentials": {"api_key": 5}}, format="json")
    assert response.status_code == 400, response.content
    response = alice_api.patch(url, {"settings": {"order_interval_minutes": 15}}, format="json")
    assert response.status_code == 200, response.content
