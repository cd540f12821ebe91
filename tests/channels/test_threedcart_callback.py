"""3DCart's AUTHORIZE / REMOVE callback against a sandbox store: only the channel's own address
counts, and nothing a callback says is believed until 3DCart (the sandbox) confirms it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from channels.models import CallbackAddress, ChannelEvent, ConnectionState, SalesChannel
from channels.threedcart_handoff import callback_path
from connectors.sandbox import SandboxServer, make_sandbox
from tests.factories import SalesChannelFactory, member_of

pytestmark = pytest.mark.django_db

BARE_CALLBACK = "/callbacks/threedcart/"


@pytest.fixture
def store(settings: Any) -> Iterator[Any]:
    app = make_sandbox("threedcart")
    with SandboxServer(app) as server:
        app.seed(products=2, orders=1, days=2, rng_seed=3)
        options = app.connector_options()
        settings.ALLOW_PRIVATE_STORE_HOSTS = True
        settings.STORE_HTTP_TIMEOUT = 5.0
        settings.STORE_HTTP_MAX_RETRIES = 0
        settings.THREEDCART_API_BASE = options["api_base"]
        settings.THREEDCART_PUBLIC_KEY = options["app_keys"]["threedcart_public_key"]
        settings.THREEDCART_PRIVATE_KEY = options["app_keys"]["threedcart_private_key"]
        app.server = server
        yield app


def pending_channel(account: Any, store: Any, **fields: Any) -> SalesChannel:
    values = {
        "platform": "threedcart",
        "store_url": store.secure_url,
        "connection_state": ConnectionState.PENDING,
        "credentials": {},
        "settings": store.connector_settings(),
        "store_facts": {},
        "last_success_at": None,
    } | fields
    return SalesChannelFactory(account=account, **values)


def connected_channel(account: Any, store: Any, **fields: Any) -> SalesChannel:
    values = {"connection_state": ConnectionState.OK, "credentials": {"access_token": store.token}} | fields
    return pending_channel(account, store, **values)


def post(url: str, body: dict, *, as_form: bool = False) -> Any:
    client = Client(enforce_csrf_checks=True)  # the store has no CSRF token: the view must be exempt
    if as_form:
        return client.post(url, body)
    return client.post(url, json.dumps(body), content_type="application/json")


def events(channel: SalesChannel) -> list[ChannelEvent]:
    return list(ChannelEvent.objects.filter(channel=channel).order_by("created_at", "id"))


def test_authorize_at_the_channels_own_address_connects_it_after_3dcart_confirms_the_token(store, alice):
    channel = pending_channel(alice.account, store)
    response = post(callback_path(channel), store.callback_payload())
    assert response.status_code == 200, response.content
    assert response.json()["PostBackURL"].endswith(reverse("channels:detail", args=[channel.pk]))
    channel.refresh_from_db()
    assert channel.credentials["access_token"] == store.token
    assert channel.connection_state == ConnectionState.OK
    assert channel.store_url == store.secure_url
    assert channel.store_facts["base_currency"] == "USD"  # the proof call's facts are kept
    assert [e.action for e in events(channel)] == ["channel.threedcart_authorised"]
    assert store.token not in json.dumps(events(channel)[0].detail)
    assert store.token not in response.content.decode()
    assert CallbackAddress.objects.get(channel=channel).authorised_at is not None


def test_form_encoded_callback_works_too(store, alice):
    channel = pending_channel(alice.account, store)
    assert post(callback_path(channel), store.callback_payload(), as_form=True).status_code == 200
    channel.refresh_from_db()
    assert channel.credentials["access_token"] == store.token


def test_the_shared_callback_address_changes_nothing_for_anyone(store, alice, bob):
    """Today's attack: the app-wide address handed Alice's token to Bob's pending channel for her store."""
    bobs = pending_channel(bob.account, store)
    alices = connected_channel(alice.account, store)
    for action in ("AUTHORIZE", "REMOVE"):
        response = post(BARE_CALLBACK, store.callback_payload(action))
        assert response.status_code == 404
        assert "own callback address" in response.json()["message"]
    bobs.refresh_from_db()
    alices.refresh_from_db()
    assert bobs.credentials == {}
    assert bobs.connection_state == ConnectionState.PENDING
    assert alices.credentials["access_token"] == store.token
    assert alices.connection_state == ConnectionState.OK


def test_forged_authorize_against_two_accounts_stores_nothing(store, alice, bob):
    """Bob waits for Alice's store in his account and posts a made-up token to his own address;
    Alice's own channel is not reachable from his address at all."""
    alices = pending_channel(alice.account, store)
    bobs = pending_channel(bob.account, store)
    forged = store.callback_payload(TokenKey="f" * 32)
    response = post(callback_path(bobs), forged)
    assert response.status_code == 422
    assert "does not accept this token" in response.json()["message"]
    for channel in (alices, bobs):
        channel.refresh_from_db()
        assert channel.credentials == {}
        assert channel.connection_state == ConnectionState.PENDING
    refused = events(bobs)
    assert [(e.action, e.detail["code"]) for e in refused] == [
        ("channel.threedcart_callback_refused", "token_refused")
    ]
    assert "f" * 32 not in json.dumps(refused[0].detail)
    assert events(alices) == []

    # the genuine post to Alice's address connects hers, and only hers
    assert post(callback_path(alices), store.callback_payload()).status_code == 200
    alices.refresh_from_db()
    bobs.refresh_from_db()
    assert alices.connection_state == ConnectionState.OK
    assert bobs.credentials == {}


def test_forged_remove_against_two_accounts_leaves_the_working_channel_alone(store, alice, bob):
    alices = connected_channel(alice.account, store)
    bobs = connected_channel(bob.account, store, name="Bob's copy")
    address = callback_path(alices)  # say it leaked
    assert post(BARE_CALLBACK, store.callback_payload("REMOVE", TokenKey="")).status_code == 404
    response = post(address, store.callback_payload("REMOVE", TokenKey=""))
    assert response.status_code == 409
    assert "still accepts the stored token" in response.json()["message"]
    for channel in (alices, bobs):
        channel.refresh_from_db()
        assert channel.credentials["access_token"] == store.token
        assert channel.connection_state == ConnectionState.OK
    assert [e.detail["code"] for e in events(alices)] == ["token_still_valid"]
    assert events(bobs) == []


def test_genuine_remove_is_believed_once_3dcart_refuses_the_token(store, alice):
    channel = connected_channel(alice.account, store)
    address = callback_path(channel)
    store.revoke_token()  # the merchant removed Storelink's app
    response = post(address, store.callback_payload("REMOVE", TokenKey=""))
    assert response.status_code == 200
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert channel.credentials["access_token"] == ""
    assert "Authorize" in channel.last_error
    assert not SalesChannel.objects.syncable().filter(pk=channel.pk).exists()
    assert [e.action for e in events(channel)] == ["channel.threedcart_removed"]


def test_a_replayed_callback_is_refused(store, alice):
    channel = pending_channel(alice.account, store)
    body = store.callback_payload()
    assert post(callback_path(channel), body).status_code == 200
    # the address is used up: the same post again is a replay, a newer one finds it spent
    replay = post(reverse("threedcart-channel-callback", args=[_secret(channel)]), body)
    assert replay.status_code == 409
    assert replay.json()["code"] == "replayed"
    later = store.callback_payload(timestamp=datetime.now(UTC) + timedelta(seconds=5))
    again = post(reverse("threedcart-channel-callback", args=[_secret(channel)]), later)
    assert again.status_code == 409
    assert again.json()["code"] == "address_used"


def test_a_replayed_remove_is_refused_before_3dcart_is_asked(store, alice):
    channel = connected_channel(alice.account, store)
    address = callback_path(channel)
    body = store.callback_payload("REMOVE", TokenKey="")
    assert post(address, body).status_code == 409  # token still valid
    store.revoke_token()
    response = post(address, body)
    assert response.status_code == 409
    assert response.json()["code"] == "replayed"
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.OK


@pytest.mark.parametrize("minutes", [-45, 45, -60 * 24 * 400])
def test_a_stale_timestamp_is_refused(store, alice, minutes):
    channel = pending_channel(alice.account, store)
    body = store.callback_payload(timestamp=datetime.now(UTC) + timedelta(minutes=minutes))
    response = post(callback_path(channel), body)
    assert response.status_code == 403
    assert response.json()["code"] == "stale"
    channel.refresh_from_db()
    assert channel.credentials == {}
    assert channel.connection_state == ConnectionState.PENDING
    assert [e.detail["code"] for e in events(channel)] == ["stale"]


def test_hostile_store_url_goes_through_the_store_url_rules(store, alice, settings):
    channel = pending_channel(alice.account, store)
    hostile = store.callback_payload(SecureURL="http://host:6379/evil/path")
    settings.ALLOW_PRIVATE_STORE_HOSTS = False  # production rules: https and public hosts only
    response = post(callback_path(channel), hostile)
    assert response.status_code == 400
    assert "not an acceptable store address" in response.json()["message"]
    settings.ALLOW_PRIVATE_STORE_HOSTS = True  # even where the rules allow it, it is not this store
    for url in ("http://host:6379/evil/path", f"{store.secure_url}:6379", f"{store.secure_url}/evil/path"):
        later = store.callback_payload(
            timestamp=datetime.now(UTC) + timedelta(seconds=len(url)), SecureURL=url
        )
        response = post(callback_path(channel), later)
        assert response.status_code == 422, url
    channel.refresh_from_db()
    assert channel.credentials == {}
    assert channel.store_url == store.secure_url
    assert {e.detail["code"] for e in events(channel)} == {"bad_store_url"}


def test_a_callback_store_url_on_a_port_that_is_not_allowed_is_refused(store, alice, settings):
    channel = pending_channel(alice.account, store)
    settings.ALLOW_PRIVATE_STORE_HOSTS = False
    response = post(callback_path(channel), store.callback_payload(SecureURL="https://93.184.216.34:6379"))
    assert response.status_code == 400
    assert (
        "The store URL's port 6379 is not allowed; allowed: 80, 443, 8080, 8443."
        in response.json()["message"]
    )
    channel.refresh_from_db()
    assert channel.credentials == {}
    assert [e.detail["code"] for e in events(channel)] == ["bad_store_url"]


def test_wrong_public_key_and_garbage_are_refused_and_recorded(store, alice):
    channel = pending_channel(alice.account, store)
    address = callback_path(channel)
    response = post(address, store.callback_payload(PublicKey="not-our-key"))
    assert response.status_code == 403
    assert post(address, {"hello": "world"}).status_code == 400
    assert Client().get(address).status_code == 405
    channel.refresh_from_db()
    assert channel.credentials == {}
    assert channel.connection_state == ConnectionState.PENDING
    assert [e.detail["code"] for e in events(channel)] == ["bad_public_key", "missing_field"]


def test_unknown_address_and_removed_channels_answer_404(store, alice):
    assert post("/callbacks/threedcart/not-a-real-address/", store.callback_payload()).status_code == 404
    channel = pending_channel(alice.account, store)
    address = callback_path(channel)
    channel.removed_at = channel.created_at
    channel.save()
    assert post(address, store.callback_payload()).status_code == 404


def test_authorize_for_a_channel_that_is_not_waiting_changes_nothing(store, alice):
    channel = connected_channel(alice.account, store, credentials={"access_token": "old-token"})
    response = post(callback_path(channel), store.callback_payload())
    assert response.status_code == 409
    assert response.json()["code"] == "not_pending"
    channel.refresh_from_db()
    assert channel.credentials["access_token"] == "old-token"


def test_unconfigured_app_refuses_callbacks(store, alice, settings):
    channel = pending_channel(alice.account, store)
    settings.THREEDCART_PUBLIC_KEY = ""
    assert post(callback_path(channel), store.callback_payload()).status_code == 503
    channel.refresh_from_db()
    assert channel.credentials == {}


def test_the_channel_page_shows_its_own_address_to_admins_only(store, alice, client):
    channel = pending_channel(alice.account, store)
    client.force_login(alice.user)
    page = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    address = callback_path(channel)
    assert address in page
    assert store.public_key in page
    viewer = member_of(alice.account)
    client.force_login(viewer)
    assert address not in client.get(reverse("channels:detail", args=[channel.pk])).content.decode()


def test_after_a_hand_off_the_next_reauthorisation_gets_a_new_address(store, alice):
    channel = pending_channel(alice.account, store)
    first = callback_path(channel)
    assert callback_path(channel) == first  # stable until used
    assert post(first, store.callback_payload()).status_code == 200
    channel.refresh_from_db()
    second = callback_path(channel)
    assert second != first
    assert CallbackAddress.objects.filter(channel=channel).count() == 2
    stored = CallbackAddress.objects.get(channel=channel, authorised_at__isnull=True)
    assert second.rstrip("/").rsplit("/", 1)[-1] not in stored.digest


def _secret(channel: SalesChannel) -> str:
    address = CallbackAddress.objects.filter(channel=channel).order_by("created_at").first()
    assert address is not None
    return str(address.secret["secret"])
