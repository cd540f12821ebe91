"""REST API for channels: behaviour, error shape, roles, and the cross-account matrix."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import create_api_key, revoke_api_key
from channels.models import ChannelEvent, ConnectionState, SalesChannel
from connectors.errors import AuthError, RateLimited, TransientError
from tests.conftest import api_client_with_key
from tests.factories import OPENCART_SECRET, SalesChannelFactory

pytestmark = pytest.mark.django_db

NEW_SECRET = "FreshKey0123456789abcdefABCDEF99"


def create_body(**overrides):
    return {
        "platform": "opencart",
        "name": "Main shop",
        "store_url": "https://shop.example.com",
        "credentials": {"api_username": "Default", "api_key": OPENCART_SECRET},
        "settings": {"currency": "EUR"},
    } | overrides


def url(channel=None, action: str = "") -> str:
    if channel is None:
        return "/api/v1/channels/"
    pk = channel if isinstance(channel, str) else channel.pk
    return f"/api/v1/channels/{pk}/" + (f"{action}/" if action else "")


# --------------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------------


def test_no_credentials_is_401_json(db) -> None:
    response = APIClient().get(url())
    assert response.status_code == 401
    assert response.json()["message"]
    assert response["WWW-Authenticate"] == "Api-Key"


def test_bad_and_revoked_keys_are_refused(alice) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Api-Key sl_deadbeef_nope")
    assert client.get(url()).status_code == 401
    key, plaintext = create_api_key(alice.account, actor=alice.user, name="ERP")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    assert client.get(url()).status_code == 200
    revoke_api_key(key, actor=alice.user)
    response = client.get(url())
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_session_auth_works_for_members(alice) -> None:
    SalesChannelFactory(account=alice.account, name="Visible")
    client = APIClient()
    client.force_login(alice.member(Role.MEMBER))
    response = client.get(url())
    assert response.status_code == 200
    assert [c["name"] for c in response.json()] == ["Visible"]


# --------------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------------


def test_create_tests_store_and_never_returns_credentials(alice_api, fake_store) -> None:
    response = alice_api.post(url(), create_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["connection_state"] == "ok"
    assert body["has_credentials"] is True
    assert "credentials" not in body
    assert OPENCART_SECRET not in response.content.decode()
    assert body["settings"]["currency"] == "EUR"
    assert len(fake_store.calls) == 1
    event = ChannelEvent.objects.get(channel_id=body["id"])
    assert event.actor_api_key is not None
    assert event.actor is None


@pytest.mark.parametrize(
    ("store_url", "message"),
    [
        (
            "https://shop.example.com:6379/",
            "The store URL's port 6379 is not allowed; allowed: 80, 443, 8080, 8443.",
        ),
        ("https://[2002:a00:1::]/", "6to4 address with the private or reserved IPv4 address 10.0.0.1"),
    ],
)
def test_create_refuses_a_store_on_a_port_or_address_that_is_not_allowed(
    alice_api, fake_store, settings, store_url, message
) -> None:
    settings.ALLOW_PRIVATE_STORE_HOSTS = False
    response = alice_api.post(url(), create_body(store_url=store_url), format="json")
    assert response.status_code == 400
    assert message in response.json()["errors"]["store_url"][0]
    assert fake_store.calls == []
    assert not SalesChannel.objects.exists()


@pytest.mark.parametrize(
    ("platform", "credentials", "field", "label"),
    [
        ("xcart", {"api_key": "ключ-0123456789abcdef"}, "api_key", "API key"),
        ("threedcart", {"access_token": "tökén0123456789abcdef"}, "access_token", "Access token"),
    ],
)
def test_create_refuses_a_header_credential_that_is_not_printable_ascii(
    alice_api, fake_store, platform, credentials, field, label
) -> None:
    """These go to the store as HTTP headers, which carry only ASCII: the API used to answer 500."""
    response = alice_api.post(
        url(), create_body(platform=platform, credentials=credentials, settings={}), format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"][field] == [f"{label} must contain only printable ASCII characters."]
    assert credentials[field] not in response.content.decode()
    assert fake_store.calls == []
    assert not SalesChannel.objects.exists()


def test_create_field_errors_are_json_next_to_fields(alice_api, fake_store) -> None:
    response = alice_api.post(
        url(), create_body(name="", store_url="ftp://x", credentials={"api_key": "x"}), format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["message"]
    assert "name" in body["errors"]
    assert not SalesChannel.objects.exists()
    response = alice_api.post(
        url(), create_body(store_url="ftp://x", credentials={"api_key": "x"}), format="json"
    )
    assert set(response.json()["errors"]) >= {"store_url", "api_key"}


def test_the_same_store_twice_is_a_409_with_a_message(alice, bob, alice_api, fake_store) -> None:
    first = alice_api.post(url(), create_body(), format="json").json()
    response = alice_api.post(
        url(), create_body(name="Again", store_url="https://Shop.Example.com:443/index.php"), format="json"
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "conflict"
    assert "already connected as “Main shop”" in body["message"]
    assert set(body["errors"]) == {"store_url"}
    other = alice_api.post(
        url(), create_body(name="Other", store_url="https://other.example.com"), format="json"
    )
    response = alice_api.post(
        url(other.json()["id"], "reauthorise"), {"store_url": "https://shop.example.com/"}, format="json"
    )
    assert response.status_code == 409
    assert "already connected" in response.json()["errors"]["store_url"][0]
    assert alice_api.delete(url(first["id"])).status_code == 204
    assert alice_api.post(url(), create_body(name="Again"), format="json").status_code == 201


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthError("OpenCart refused the API key.", code="bad_key"), 400),
        (TransientError("The store did not answer within 20 seconds."), 502),
        (RateLimited("The store is rate limiting Storelink.", retry_after=30), 502),
    ],
)
def test_store_errors_become_clear_json(alice_api, fake_store, error, status) -> None:
    fake_store.error = error
    response = alice_api.post(url(), create_body(), format="json")
    assert response.status_code == status
    assert response.json()["message"] == error.message
    assert not SalesChannel.objects.exists()


def test_lifecycle_through_the_api(alice, alice_api, fake_store) -> None:
    channel_id = alice_api.post(url(), create_body(), format="json").json()["id"]

    response = alice_api.patch(
        url(channel_id), {"name": "Renamed", "settings": {"price_sync": True}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["settings"]["price_sync"] is True

    assert alice_api.post(url(channel_id, "disable")).json()["enabled"] is False
    assert alice_api.post(url(channel_id, "enable")).json()["enabled"] is True

    fake_store.error = AuthError("The API key was revoked.")
    response = alice_api.post(url(channel_id, "test"))
    assert response.status_code == 400
    assert alice_api.get(url(channel_id)).json()["connection_state"] == ConnectionState.NEEDS_REAUTH

    fake_store.error = None
    response = alice_api.post(
        url(channel_id, "reauthorise"), {"credentials": {"api_key": NEW_SECRET}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["connection_state"] == "ok"
    assert SalesChannel.objects.get(pk=channel_id).credentials["api_key"] == NEW_SECRET

    response = alice_api.post(url(channel_id, "test"))
    assert response.status_code == 200
    assert response.json()["ok"] is True

    assert alice_api.delete(url(channel_id)).status_code == 204
    assert alice_api.get(url(channel_id)).status_code == 404
    assert alice_api.get(url()).json() == []
    assert SalesChannel.objects.get(pk=channel_id).credentials == {}


def test_put_is_not_offered(alice, alice_api) -> None:
    channel = SalesChannelFactory(account=alice.account)
    assert alice_api.put(url(channel), {"name": "x"}, format="json").status_code == 405


def test_malformed_id_is_404_json(alice_api) -> None:
    response = alice_api.get(url("not-a-uuid"))
    assert response.status_code == 404
    # An API client (no CSRF cookie) posting to an action of a malformed id: JSON 404 as well.
    client = Client(enforce_csrf_checks=True)
    posted = client.post(
        url("not-a-uuid", "enable"), HTTP_AUTHORIZATION=alice_api._credentials["HTTP_AUTHORIZATION"]
    )
    assert posted.status_code == 404
    assert posted.json()["code"] == "not_found"


# --------------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------------


def test_member_session_cannot_add_remove_or_reauthorise(alice, fake_store) -> None:
    channel = SalesChannelFactory(account=alice.account)
    client = APIClient()
    client.force_login(alice.member(Role.MEMBER))
    assert client.post(url(), create_body(name="Other"), format="json").status_code == 403
    response = client.post(
        url(channel, "reauthorise"), {"credentials": {"api_key": NEW_SECRET}}, format="json"
    )
    assert response.status_code == 403
    assert "admin" in response.json()["message"]
    assert client.delete(url(channel)).status_code == 403
    channel.refresh_from_db()
    assert channel.removed_at is None
    assert channel.credentials["api_key"] == OPENCART_SECRET
    assert SalesChannel.objects.count() == 1
    # A member may still switch it off and on.
    assert client.post(url(channel, "disable")).status_code == 200


# --------------------------------------------------------------------------------------------------
# Cross-account matrix: every endpoint, Bob's key against Alice's channel
# --------------------------------------------------------------------------------------------------

DETAIL_CALLS = [
    ("get", ""),
    ("patch", ""),
    ("delete", ""),
    ("post", "enable"),
    ("post", "disable"),
    ("post", "test"),
    ("post", "reauthorise"),
]


@pytest.mark.parametrize(("method", "action"), DETAIL_CALLS)
@pytest.mark.parametrize("auth", ["api_key", "session"])
def test_other_accounts_channel_is_404_and_untouched(alice, bob, fake_store, method, action, auth) -> None:
    channel = SalesChannelFactory(account=alice.account, name="Alice's shop", enabled=True)
    before = SalesChannel.objects.filter(pk=channel.pk).values().get()
    if auth == "api_key":
        client = api_client_with_key(bob.account)
    else:
        client = APIClient()
        client.force_login(bob.user)
    body = {"name": "Hijacked", "credentials": {"api_key": NEW_SECRET}, "settings": {"currency": "GBP"}}
    response = getattr(client, method)(url(channel, action), body, format="json")
    assert response.status_code == 404
    assert "Alice" not in response.content.decode()
    assert SalesChannel.objects.filter(pk=channel.pk).values().get() == before
    assert fake_store.calls == []
    assert not ChannelEvent.objects.filter(channel=channel).exists()


def test_list_shows_only_own_channels(alice, bob) -> None:
    SalesChannelFactory(account=alice.account, name="Alice's shop")
    SalesChannelFactory(account=bob.account, name="Bob's shop")
    names = [c["name"] for c in api_client_with_key(bob.account).get(url()).json()]
    assert names == ["Bob's shop"]


def test_create_lands_in_the_keys_account_only(alice, bob, fake_store) -> None:
    response = api_client_with_key(bob.account).post(url(), create_body(), format="json")
    assert response.status_code == 201
    assert SalesChannel.objects.get().account == bob.account


def test_base_viewset_refuses_a_get_queryset_override() -> None:
    from accounts.api import AccountScopedViewSet

    with pytest.raises(TypeError, match="must not override get_queryset"):

        class Sneaky(AccountScopedViewSet):
            def get_queryset(self):  # pragma: no cover - never runs
                return SalesChannel.objects.all()


def test_schema_and_docs_are_served(db) -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/channels/{id}/reauthorise/" in paths
    components = schema.json()["components"]["schemas"]
    assert "credentials" not in components["Channel"]["properties"]
    # Where the body does not name the platform (PATCH, reauthorise), the platform shapes overlap
    # (shared keys), so they are "any of", never an unsatisfiable "one of".
    for name in ("PlatformSettings", "PlatformSettingsRequest", "PlatformCredentialsUpdateRequest"):
        assert "anyOf" in components[name]
        assert "oneOf" not in components[name]
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    # served from our own static files (drf-spectacular-sidecar): the docs work without internet
    assert b"drf_spectacular_sidecar" in docs.content
    assert b"cdn.jsdelivr" not in docs.content
