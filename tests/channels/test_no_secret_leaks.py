"""No API response, admin page or log line ever contains a stored credential."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from accounts.models import User
from channels.models import ChannelEvent, SalesChannel
from config.logging import SecretMaskingFilter, mask_secrets
from connectors.errors import AuthError
from tests.factories import OPENCART_SECRET

pytestmark = pytest.mark.django_db

SECOND_SECRET = "Rotated0123456789abcdefABCDEF777"


@pytest.fixture
def superuser_client() -> Client:
    admin = User.objects.create_superuser(email="ops@example.com", password="ops-password-123")
    client = Client()
    client.force_login(admin)
    return client


def test_secret_never_leaves_through_api_admin_or_logs(
    alice, alice_api, fake_store, superuser_client, caplog
):
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    def keep(response) -> None:
        bodies.append(response.content.decode())

    create = {
        "platform": "opencart",
        "name": "Leak check",
        "store_url": "https://shop.example.com",
        "credentials": {"api_username": "Default", "api_key": OPENCART_SECRET},
        "settings": {"currency": "EUR"},
    }
    response = alice_api.post("/api/v1/channels/", create, format="json")
    assert response.status_code == 201
    keep(response)
    channel_id = response.json()["id"]
    detail = f"/api/v1/channels/{channel_id}/"
    for response in (
        alice_api.get("/api/v1/channels/"),
        alice_api.get(detail),
        alice_api.patch(detail, {"name": "Renamed"}, format="json"),
        alice_api.post(detail + "test/"),
        alice_api.post(detail + "reauthorise/", {"credentials": {"api_key": SECOND_SECRET}}, format="json"),
    ):
        assert response.status_code < 300
        keep(response)
    fake_store.error = AuthError("The store refused the key.")
    keep(alice_api.post(detail + "test/"))
    keep(
        alice_api.post(detail + "reauthorise/", {"credentials": {"api_key": OPENCART_SECRET}}, format="json")
    )

    channel = SalesChannel.objects.get(pk=channel_id)
    event = ChannelEvent.objects.filter(channel=channel).first()
    for path in (
        "/admin/channels/saleschannel/",
        f"/admin/channels/saleschannel/{channel.pk}/change/",
        "/admin/channels/channelevent/",
        f"/admin/channels/channelevent/{event.pk}/change/",
        "/admin/channels/syncrun/",
    ):
        response = superuser_client.get(path)
        assert response.status_code == 200, path
        keep(response)
    assert "•••• set" in bodies[-4]

    everything = "\n".join(bodies)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (OPENCART_SECRET, SECOND_SECRET):
        assert secret not in everything
        assert secret not in logged
    # The stored secret is the rotated one, which proves the calls above really handled it.
    assert channel.credentials["api_key"] == SECOND_SECRET
    for event in ChannelEvent.objects.filter(channel=channel):
        assert SECOND_SECRET not in str(event.detail)
        assert OPENCART_SECRET not in str(event.detail)


@pytest.mark.parametrize(
    "line",
    [
        "calling with Authorization: Api-Key sl_0123abcd_SECRETSECRETSECRET",
        'payload {"api_key": "SECRETSECRETSECRET", "x": 1}',
        "GET https://shop/api?token=SECRETSECRETSECRET&x=1",
        "headers PrivateKey: SECRETSECRETSECRET",
        "key sl_0123abcd_SECRETSECRETSECRET leaked",
    ],
)
def test_log_filter_masks_secret_shapes(line: str) -> None:
    assert "SECRETSECRETSECRET" not in mask_secrets(line)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (line,), None)
    SecretMaskingFilter().filter(record)
    assert "SECRETSECRETSECRET" not in record.getMessage()
