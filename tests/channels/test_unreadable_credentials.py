"""One channel whose stored credentials no configured key decrypts (FIELD_ENCRYPTION_KEYS rotated
wrongly) must not take the whole application down: every page and API list still renders, that
channel's jobs stop with an error that says what happened and it waits for reauthorising, and
nothing overwrites the ciphertext, so restoring the old key brings it back."""

from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import User
from channels import services, sync
from channels.fields import UnreadableCredentials
from channels.models import ConnectionState, SalesChannel
from tests.conftest import DEFAULT_FACTS
from tests.factories import OPENCART_SECRET, SalesChannelFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _raw(channel: SalesChannel) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT credentials FROM {SalesChannel._meta.db_table} WHERE id = %s",
            [channel.pk.hex if connection.vendor == "sqlite" else channel.pk],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def broken(alice: Any, settings: Any) -> tuple[SalesChannel, SalesChannel]:
    """Alice's two channels: ``lost`` saved under a key that was dropped, ``fine`` under the new one."""
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    lost = SalesChannelFactory(account=alice.account, name="Lost shop", store_url="https://lost.example.com")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    fine = SalesChannelFactory(account=alice.account, name="Fine shop", store_url="https://fine.example.com")
    return lost, fine


def test_loading_gives_a_flagged_empty_value_not_an_exception(broken: Any) -> None:
    lost, fine = broken
    loaded = SalesChannel.objects.get(pk=lost.pk)
    assert isinstance(loaded.credentials, UnreadableCredentials)
    assert loaded.credentials_unreadable
    assert not loaded.has_credentials
    assert dict(loaded.credentials) == {}
    assert SalesChannel.objects.get(pk=fine.pk).credentials["api_key"] == OPENCART_SECRET


def test_every_page_still_renders(client: Client, alice: Any, broken: Any) -> None:
    lost, _fine = broken
    client.force_login(alice.user)
    listing = client.get(reverse("channels:list"))
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "Lost shop" in body
    assert "Fine shop" in body
    for url in (
        reverse("channels:detail", args=[lost.pk]),
        reverse("channels:reauthorise", args=[lost.pk]),
        reverse("orders:list"),
        reverse("inventory:product_list"),
    ):
        assert client.get(url).status_code == 200, url


def test_api_lists_and_shows_the_channel(alice_api: Any, broken: Any) -> None:
    lost, _fine = broken
    response = alice_api.get("/api/v1/channels/")
    assert response.status_code == 200
    assert {row["name"] for row in response.json()} == {"Lost shop", "Fine shop"}
    shown = alice_api.get(f"/api/v1/channels/{lost.pk}/").json()
    assert shown["has_credentials"] is False


def test_operator_admin_pages_render(client: Client, broken: Any) -> None:
    lost, _fine = broken
    operator = User.objects.create_superuser("operator@example.com", "pw-operator-123")
    client.force_login(operator)
    assert client.get("/admin/channels/saleschannel/").status_code == 200
    page = client.get(f"/admin/channels/saleschannel/{lost.pk}/change/")
    assert page.status_code == 200
    assert "cannot be decrypted" in page.content.decode()


def test_a_job_stops_with_a_clear_error_and_waits_for_reauthorising(
    broken: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost, _fine = broken
    lost.connection_state = ConnectionState.OK
    lost.save(update_fields=["connection_state"])
    before = _raw(lost)

    def no_store(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the store must not be contacted with empty credentials")

    monkeypatch.setattr("channels.services.build_connector", no_store)
    run = sync.run_channel_job(lost.pk, "orders", lambda channel, connector, run: None)

    assert run is not None
    assert run.state == "failed"
    assert "cannot be decrypted" in run.error
    lost.refresh_from_db()
    assert lost.connection_state == ConnectionState.NEEDS_REAUTH
    assert "reauthorise" in lost.last_error.lower()
    assert "FIELD_ENCRYPTION_KEYS" not in lost.last_error  # sellers do not run the deployment
    assert _raw(lost) == before  # the ciphertext is kept: restoring the old key recovers it
    assert sync.run_channel_job(lost.pk, "orders", lambda *a: None) is None  # paused


def test_saving_the_row_keeps_the_ciphertext(broken: Any, settings: Any) -> None:
    lost, _fine = broken
    before = _raw(lost)
    loaded = SalesChannel.objects.get(pk=lost.pk)
    loaded.name = "Renamed"
    loaded.save()
    assert _raw(lost) == before
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert SalesChannel.objects.get(pk=lost.pk).credentials["api_key"] == OPENCART_SECRET


def test_reauthorising_with_the_secret_repairs_the_channel(
    alice: Any, broken: Any, monkeypatch: pytest.MonkeyPatch, allow_private_hosts: None
) -> None:
    lost, _fine = broken
    monkeypatch.setattr(services, "test_connection", lambda *a, **k: DEFAULT_FACTS)
    loaded = SalesChannel.objects.get(pk=lost.pk)
    with pytest.raises(services.ChannelError) as refused:
        services.reauthorise_channel(loaded, actor=alice.user, credentials={"api_username": "Default"})
    assert "api_key" in refused.value.message_dict
    repaired = services.reauthorise_channel(
        loaded, actor=alice.user, credentials={"api_username": "Default", "api_key": "N" * 32}
    )
    assert repaired.connection_state == ConnectionState.OK
    assert SalesChannel.objects.get(pk=lost.pk).credentials["api_key"] == "N" * 32


def test_rotation_skips_and_names_unreadable_rows(broken: Any) -> None:
    lost, fine = broken
    before = _raw(lost)
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_field_keys", stdout=out, stderr=err)
    assert _raw(lost) == before
    assert "1 channel(s)" in out.getvalue()  # the readable one
    assert str(lost.pk) in err.getvalue()
    assert str(fine.pk) not in err.getvalue()
