"""Store URLs whose host is not a valid DNS name (empty label, label over 63 characters, name over
253) are a field error in the wizard, the reauthorise form and the API, never a 500, and no
connection is tried. Both with the production rules (public hosts only) and with private hosts
allowed (demo, tests), where no DNS lookup would have caught them first."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from channels import services
from channels.models import ConnectionState, SalesChannel
from connectors.http import check_store_url
from tests.conftest import DEFAULT_FACTS
from tests.factories import OPENCART_SECRET, SalesChannelFactory

pytestmark = pytest.mark.django_db

BAD_HOSTS = [
    "https://a..b/",
    "https://.shop.example.com/",
    "https://" + "a" * 64 + ".example.com/",
    "https://" + ".".join(["abcdefghij" * 6] * 5) + "/",  # 5 labels of 60: 304 characters
    "https://shop-.example.com/",
    "https://sh_op.example.com/",
    "https://xn--/",
]


@pytest.fixture
def store_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def fake_test_connection(platform: str, store_url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(store_url)
        return DEFAULT_FACTS

    monkeypatch.setattr(services, "test_connection", fake_test_connection)
    return calls


@pytest.fixture(params=[False, True], ids=["public-only", "private-allowed"])
def private(request: pytest.FixtureRequest, settings: Any) -> bool:
    settings.ALLOW_PRIVATE_STORE_HOSTS = request.param
    return bool(request.param)


def _store_url_errors(body: str) -> str:
    return body.split('id="field-store_url"', 1)[1].split('id="field-api_username"', 1)[0]


@pytest.mark.parametrize("url", BAD_HOSTS)
def test_wizard_refuses_invalid_host_names(
    client: Client, alice: Any, private: bool, store_calls: list[Any], url: str
) -> None:
    client.force_login(alice.user)
    client.post(reverse("channels:add_name", args=["opencart"]), {"name": "Shop"})
    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": url, "api_username": "Storelink", "api_key": OPENCART_SECRET},
    )
    assert response.status_code == 200
    assert "not a valid host name" in _store_url_errors(response.content.decode())
    assert store_calls == []
    assert not SalesChannel.objects.exists()


@pytest.mark.parametrize("url", BAD_HOSTS)
def test_reauthorise_refuses_invalid_host_names(
    client: Client, alice: Any, private: bool, store_calls: list[Any], url: str
) -> None:
    channel = SalesChannelFactory(
        account=alice.account,
        store_url="https://shop.example.com",
        connection_state=ConnectionState.NEEDS_REAUTH,
    )
    client.force_login(alice.user)
    response = client.post(
        reverse("channels:reauthorise", args=[channel.pk]),
        {"store_url": url, "api_username": "Storelink", "api_key": ""},
    )
    assert response.status_code == 200
    assert "not a valid host name" in _store_url_errors(response.content.decode())
    assert store_calls == []
    channel.refresh_from_db()
    assert channel.store_url == "https://shop.example.com"


@pytest.mark.parametrize("url", BAD_HOSTS[:3])
def test_api_refuses_invalid_host_names(
    alice: Any, alice_api: Any, private: bool, store_calls: list[Any], url: str
) -> None:
    response = alice_api.post(
        "/api/v1/channels/",
        {
            "platform": "opencart",
            "name": "Shop",
            "store_url": url,
            "credentials": {"api_username": "Storelink", "api_key": OPENCART_SECRET},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "not a valid host name" in response.json()["errors"]["store_url"][0]
    assert store_calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com",
        "https://xn--bcher-kva.example/",
        "https://bücher.example/",
        "http://127.0.0.1:8099/shop",
        "https://[2001:db8::1]/",
        "https://" + "a" * 63 + ".example.com",
        "https://shop.example.com./",
    ],
)
def test_valid_host_names_pass_the_syntax_check(url: str) -> None:
    assert check_store_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["https://shop.example.com/#admin", "https://shop.example.com/shop#", "https://a.example#x"]
)
def test_fragments_are_refused_not_stored(
    alice_api: Any, private: bool, store_calls: list[Any], url: str
) -> None:
    response = alice_api.post(
        "/api/v1/channels/",
        {
            "platform": "opencart",
            "name": "Shop",
            "store_url": url,
            "credentials": {"api_username": "Storelink", "api_key": OPENCART_SECRET},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "# part" in response.json()["errors"]["store_url"][0]
    assert store_calls == []
    assert not SalesChannel.objects.exists()
