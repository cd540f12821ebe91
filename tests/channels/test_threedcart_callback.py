"""POST /callbacks/threedcart/: AUTHORIZE fills the waiting channel's token, REMOVE asks to reauthorise."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from channels.models import ChannelEvent, ConnectionState, SalesChannel
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db

PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CALLBACK = "/callbacks/threedcart/"


@pytest.fixture(autouse=True)
def app_keys(settings) -> None:
    settings.THREEDCART_PUBLIC_KEY = PUBLIC_KEY
    settings.THREEDCART_PRIVATE_KEY = "app-private-key"


def pending_3dcart(account, url: str = "https://Demo-Store.3dcartstores.com/", **fields) -> SalesChannel:
    values = {
        "platform": "threedcart",
        "store_url": url,
        "connection_state": ConnectionState.PENDING,
        "credentials": {},
        "settings": {"currency": "USD"},
        "store_facts": {},
    } | fields
    return SalesChannelFactory(account=account, **values)


def post(body: dict, *, as_form: bool = False):
    client = Client(enforce_csrf_checks=True)  # the store has no CSRF token: the view must be exempt
    if as_form:
        return client.post(CALLBACK, body)
    return client.post(CALLBACK, json.dumps(body), content_type="application/json")


def payload(action: str = "AUTHORIZE", **overrides) -> dict:
    return {
        "PublicKey": PUBLIC_KEY,
        "TimeStamp": "03-01-2025 09:15:00",
        "TokenKey": TOKEN,
        "Action": action,
        "SecureURL": "https://demo-store.3dcartstores.com",
    } | overrides


def test_authorize_fills_the_pending_channels_token(
    alice, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    channel = pending_3dcart(alice.account)
    queued: list[str] = []
    monkeypatch.setattr("channels.tasks.check_connection.delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(payload())
    assert queued == [str(channel.pk)]  # the token is verified in the background after commit
    assert response.status_code == 200
    assert response.json()["channels"] == 1
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.credentials["access_token"] == TOKEN
    assert channel.connection_state == ConnectionState.OK
    assert channel.store_url == "https://demo-store.3dcartstores.com"
    event = ChannelEvent.objects.get(channel=channel)
    assert event.action == "channel.threedcart_authorised"
    assert TOKEN not in json.dumps(event.detail)
    assert TOKEN not in response.content.decode()


def test_form_encoded_callback_works_too(alice) -> None:
    channel = pending_3dcart(alice.account)
    assert post(payload(), as_form=True).status_code == 200
    assert SalesChannel.objects.get(pk=channel.pk).credentials["access_token"] == TOKEN


def test_wrong_public_key_is_403_and_changes_nothing(alice) -> None:
    channel = pending_3dcart(alice.account)
    response = post(payload(PublicKey="not-our-key"))
    assert response.status_code == 403
    assert response.json()["message"]
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.credentials == {}
    assert channel.connection_state == ConnectionState.PENDING
    assert post({"hello": "world"}).status_code == 403
    assert Client().get(CALLBACK).status_code == 405


def test_unconfigured_app_refuses_callbacks(alice, settings) -> None:
    settings.THREEDCART_PUBLIC_KEY = ""
    pending_3dcart(alice.account)
    assert post(payload()).status_code == 403


def test_remove_marks_needs_reauth_and_wipes_the_token(alice) -> None:
    channel = pending_3dcart(
        alice.account, connection_state=ConnectionState.OK, credentials={"access_token": TOKEN}
    )
    response = post(payload("REMOVE", TokenKey=""))
    assert response.status_code == 200
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert channel.credentials["access_token"] == ""
    assert "Authorize" in channel.last_error
    assert not SalesChannel.objects.syncable().filter(pk=channel.pk).exists()


def test_other_stores_and_platforms_are_untouched(alice, bob) -> None:
    other_store = pending_3dcart(bob.account, url="https://another-store.3dcartstores.com")
    opencart = SalesChannelFactory(account=bob.account, store_url="https://demo-store.3dcartstores.com")
    removed = pending_3dcart(alice.account, name="Old")
    removed.removed_at = removed.created_at
    removed.save()
    assert post(payload()).json()["channels"] == 0
    assert SalesChannel.objects.get(pk=other_store.pk).credentials == {}
    assert SalesChannel.objects.get(pk=opencart.pk).credentials["api_key"]
    assert SalesChannel.objects.get(pk=removed.pk).credentials == {}


def test_same_store_waiting_in_two_accounts_fills_neither(alice, bob) -> None:
    mine = pending_3dcart(alice.account)
    theirs = pending_3dcart(bob.account, url="demo-store.3dcartstores.com")
    assert post(payload()).json()["channels"] == 0
    assert SalesChannel.objects.get(pk=mine.pk).credentials == {}
    assert SalesChannel.objects.get(pk=theirs.pk).credentials == {}
