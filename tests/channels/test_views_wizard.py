"""The add-channel wizard: the steps per platform, state in the session, nothing saved
half-way, the store's own statuses and currency in the settings step, hostile URLs refused."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role
from channels import services
from channels.models import ChannelEvent, ConnectionState, SalesChannel
from channels.wizard_views import WIZARD_SESSION
from connectors.base import StoreFacts, StoreStatus
from connectors.errors import AuthError, TransientError
from tests.factories import member_of

pytestmark = pytest.mark.django_db

OPENCART_KEY = "K3yFromOpenCartAdmin0123456789abcdef"
FACTS = StoreFacts(
    platform_version="4.0.2.3",
    base_currency="GBP",
    timezone="Europe/London",
    order_statuses=(
        StoreStatus("1", "Pending"),
        StoreStatus("2", "Processing"),
        StoreStatus("3", "Shipped"),
        StoreStatus("15", "Processed"),
        StoreStatus("17", "Awaiting pickup"),
    ),
    currencies=("GBP", "EUR"),
    warnings=("Maintenance mode is on: the bridge still answers.",),
)


@pytest.fixture(autouse=True)
def _ui_test_settings(settings):
    """Pages link static files and tests run without ``collectstatic``: no manifest storage.
    A fast password hasher keeps the many sign-ups and logins of these tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def owner(client, settings, alice):
    """Alice, owner of her account, signed in; the deployment allows loopback stores."""
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.STORE_EGRESS_IPS = ["203.0.113.7", "203.0.113.8"]
    settings.THREEDCART_PUBLIC_KEY = "pub-3dcart-app-key-0001"
    client.force_login(alice.user)
    return alice


@pytest.fixture
def store_calls(monkeypatch):
    """Replace the store with a recorder; tests set ``calls.result`` to facts or an exception."""

    class Calls(list):
        result: object = FACTS

    calls = Calls()

    def fake_test_connection(platform, store_url, credentials, settings=None, **kwargs):
        calls.append({"platform": platform, "store_url": store_url, "credentials": dict(credentials)})
        if isinstance(calls.result, Exception):
            raise calls.result
        return calls.result

    monkeypatch.setattr(services, "test_connection", fake_test_connection)
    return calls


def opencart_settings_form(**overrides: object) -> dict[str, object]:
    form: dict[str, object] = {
        "version_family": "auto",
        "currency": "GBP",
        "use_store_tax_settings": "yes",
        "use_options": "yes",
        "processed_status": "3",
        "import_statuses": ["1", "2", "15"],
        "order_lookback_days": "7",
        "order_interval_minutes": "5",
        "stock_sync": "yes",
        "price_sync": "no",
    }
    form.update(overrides)
    return form


def walk_to_connection(client, platform: str = "opencart", name: str = "UK web shop") -> None:
    response = client.post(reverse("channels:add_name", args=[platform]), {"name": name})
    assert response.status_code == 302
    assert response.url == reverse("channels:add_connection", args=[platform])


def test_platform_choice_lists_every_platform_with_its_logo(client, owner):
    body = client.get(reverse("channels:add")).content.decode()
    for key, label in (("opencart", "OpenCart"), ("xcart", "X-Cart"), ("threedcart", "3DCart")):
        assert reverse("channels:add_name", args=[key]) in body
        assert f"img/logos/{key}.svg" in body
        assert f'aria-label="Add {label}"' in body


def test_opencart_wizard_end_to_end(client, owner, store_calls):
    walk_to_connection(client)

    page = client.get(reverse("channels:add_connection", args=["opencart"])).content.decode()
    assert "OpenCart end point" in page
    assert "203.0.113.7" in page
    assert "203.0.113.8" in page
    assert reverse("channels:opencart_bridge") in page
    assert "IP addresses" in page

    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099/shop/", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )
    assert response.status_code == 302
    assert store_calls == [
        {
            "platform": "opencart",
            "store_url": "http://127.0.0.1:8099/shop",
            "credentials": {"api_username": "Storelink", "api_key": OPENCART_KEY},
        }
    ]

    settings_page = client.get(response.url).content.decode()
    assert "4.0.2.3" in settings_page
    assert "Maintenance mode is on" in settings_page
    assert "Awaiting pickup (17)" in settings_page  # the store's own statuses are the choices
    assert '<option value="GBP" selected>GBP</option>' in settings_page  # preset from the store
    assert OPENCART_KEY not in settings_page

    response = client.post(reverse("channels:add_settings", args=["opencart"]), opencart_settings_form())
    assert response.status_code == 302
    assert response.url == reverse("channels:list")

    channel = SalesChannel.objects.get()
    assert channel.name == "UK web shop"
    assert channel.platform == "opencart"
    assert channel.store_url == "http://127.0.0.1:8099/shop"
    assert channel.enabled is True
    assert channel.connection_state == ConnectionState.OK
    assert channel.credentials == {"api_username": "Storelink", "api_key": OPENCART_KEY}
    assert channel.settings["import_statuses"] == ["1", "2", "15"]
    assert channel.settings["use_store_tax_settings"] is True
    assert "prices_include_tax" not in channel.settings
    assert channel.store_facts["platform_version"] == "4.0.2.3"
    assert ChannelEvent.objects.filter(channel=channel, action="channel.added").exists()
    assert WIZARD_SESSION not in client.session  # the typed key leaves the session with the wizard

    listing = client.get(reverse("channels:list")).content.decode()
    assert f'id="channel-{channel.pk}"' in listing
    assert "was added and is enabled" in listing


def test_credentials_are_encrypted_inside_the_session(client, owner, store_calls):
    walk_to_connection(client)
    client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )
    state = client.session[WIZARD_SESSION]
    assert OPENCART_KEY not in repr(state)
    assert state["credentials"].startswith("fernet:")


def test_connection_failure_shows_the_store_message_and_saves_nothing(client, owner, store_calls):
    store_calls.result = AuthError(
        "OpenCart refused the request: this IP address is not allowed for the API user.",
        code="ip_not_allowed",
    )
    walk_to_connection(client)

    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "this IP address is not allowed for the API user" in body
    assert "ip_not_allowed" in body
    assert OPENCART_KEY not in body  # the key field is never filled back in
    assert 'value="http://127.0.0.1:8099"' in body  # the URL is kept for the next try
    assert SalesChannel.objects.count() == 0
    assert "credentials" not in client.session[WIZARD_SESSION]
    # and the settings step cannot be reached around the failed test
    skipped = client.get(reverse("channels:add_settings", args=["opencart"]))
    assert skipped.url == reverse("channels:add_connection", args=["opencart"])


def test_a_transient_store_error_is_shown_too(client, owner, store_calls):
    store_calls.result = TransientError("The store did not answer within 20 seconds.")
    walk_to_connection(client)
    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )
    assert "did not answer within 20 seconds" in response.content.decode()
    assert SalesChannel.objects.count() == 0


def test_missing_and_malformed_fields_are_reported_next_to_each_field(client, owner, store_calls):
    walk_to_connection(client)

    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "", "api_username": "Storelink", "api_key": "short!"},
    )

    body = response.content.decode()
    store_field = body.split('id="field-store_url"', 1)[1].split('id="field-api_username"', 1)[0]
    key_field = body.split('id="field-api_key"', 1)[1].split("</form>", 1)[0]
    assert "This field is required." in store_field
    assert "Key has an invalid format." in key_field
    assert 'aria-invalid="true"' in body
    # the error and the help text are announced with the field
    assert 'aria-describedby="id_api_key_helptext id_api_key_error"' in body
    assert 'id="id_api_key_error"' in body
    assert store_calls == []
    assert SalesChannel.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://admin:secret@shop.example.com/", "must not contain a user name or password"),
        ("file:///etc/passwd", "must start with https://"),
        ("gopher://shop.example.com", "must start with https://"),
        ("https://127.0.0.1:8099/", "private or reserved address"),
        ("https://10.0.0.5/", "private or reserved address"),
        ("https://localhost/", "not a public address"),
        ("https://shop.example.com:6379/", "port 6379 is not allowed; allowed: 80, 443, 8080, 8443"),
        ("https://[2002:7f00:1::]/", "6to4 address with the private or reserved IPv4 address 127.0.0.1"),
    ],
)
def test_hostile_store_urls_are_refused_without_contacting_them(
    client, owner, settings, store_calls, url, message
):
    settings.ALLOW_PRIVATE_STORE_HOSTS = False
    walk_to_connection(client)

    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": url, "api_username": "Storelink", "api_key": OPENCART_KEY},
    )

    body = response.content.decode().replace("&#x27;", "'")
    assert message in body.split('id="field-store_url"', 1)[1].split('id="field-api_username"', 1)[0]
    assert store_calls == []
    assert SalesChannel.objects.count() == 0


def test_invalid_settings_save_nothing(client, owner, store_calls):
    walk_to_connection(client)
    client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )

    response = client.post(
        reverse("channels:add_settings", args=["opencart"]),
        opencart_settings_form(order_lookback_days="500", processed_status="99"),
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 90." in body
    assert "Select a valid choice. 99 is not one of the available choices." in body
    assert SalesChannel.objects.count() == 0
    assert client.session[WIZARD_SESSION]["tested"] is True  # the seller can fix and save again


def test_duplicate_name_is_refused_at_the_name_step(client, owner):
    account = owner.account
    SalesChannel.objects.create(
        account=account, platform="xcart", name="UK web shop", store_url="https://a.example"
    )
    response = client.post(reverse("channels:add_name", args=["opencart"]), {"name": "uk web shop"})
    assert "already have a channel with this name" in response.content.decode()


def test_steps_cannot_be_skipped(client, owner):
    assert client.get(reverse("channels:add_connection", args=["xcart"])).url == reverse(
        "channels:add_name", args=["xcart"]
    )
    assert client.get(reverse("channels:add_settings", args=["xcart"])).url == reverse(
        "channels:add_name", args=["xcart"]
    )
    walk_to_connection(client, "xcart")
    # a wizard started for X-Cart does not leak into OpenCart's steps
    assert client.get(reverse("channels:add_settings", args=["opencart"])).url == reverse(
        "channels:add_name", args=["opencart"]
    )


def test_unknown_platform_is_404(client, owner):
    assert client.get(reverse("channels:add_name", args=["magento"])).status_code == 404


def test_cancel_forgets_the_wizard(client, owner, store_calls):
    walk_to_connection(client)
    client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )
    response = client.get(reverse("channels:add_cancel"))
    assert response.url == reverse("channels:list")
    assert WIZARD_SESSION not in client.session
    assert SalesChannel.objects.count() == 0


def test_xcart_wizard_uses_its_own_labels_and_settings(client, owner, store_calls):
    store_calls.result = StoreFacts(
        platform_version="5.4.1",
        base_currency="USD",
        order_statuses=(
            StoreStatus("P", "Paid"),
            StoreStatus("S", "Shipped"),
            StoreStatus("A", "Authorized"),
        ),
    )
    walk_to_connection(client, "xcart", "US shop")
    page = client.get(reverse("channels:add_connection", args=["xcart"])).content.decode()
    assert "Website end point" in page
    assert "My addons" in page

    client.post(
        reverse("channels:add_connection", args=["xcart"]),
        {"store_url": "http://127.0.0.1:8098", "api_key": "xcart-rest-api-key-123"},
    )
    settings_page = client.get(reverse("channels:add_settings", args=["xcart"])).content.decode()
    assert "Use X-Cart tax settings" in settings_page
    # Collected once and read by nothing: Storelink takes shipping and its tax from each order.
    assert "Shipping surcharge name" not in settings_page
    assert "Use X-Cart tax settings for shipping" not in settings_page
    assert "A price of 100.00 in your product master (net) is written to X-Cart as 100.00" in settings_page

    response = client.post(
        reverse("channels:add_settings", args=["xcart"]),
        {
            "api_flavour": "auto",
            "currency": "USD",
            "use_store_tax_settings": "no",
            "processed_status": "S",
            "import_statuses": ["P", "A"],
            "order_lookback_days": "7",
            "order_interval_minutes": "5",
            "stock_sync": "yes",
            "price_sync": "no",
        },
    )
    assert response.status_code == 302
    channel = SalesChannel.objects.get()
    assert channel.settings["use_store_tax_settings"] is False
    assert channel.credentials == {"api_key": "xcart-rest-api-key-123"}


def test_threedcart_step_shows_public_key_and_callback_and_can_wait_for_the_store(client, owner, store_calls):
    walk_to_connection(client, "threedcart", "Shift4Shop store")
    page = client.get(reverse("channels:add_connection", args=["threedcart"])).content.decode()
    assert "pub-3dcart-app-key-0001" in page
    # a callback address belongs to one saved channel: the wizard says where it will be shown
    assert "/callbacks/threedcart/" not in page
    assert "its own callback address" in page
    assert "Access token" in page

    # without a token, "test" explains the two ways forward ...
    response = client.post(
        reverse("channels:add_connection", args=["threedcart"]),
        {"store_url": "http://127.0.0.1:8097", "access_token": "", "action": "test"},
    )
    assert "Continue without a token" in response.content.decode()
    assert store_calls == []

    # ... and "continue without a token" saves a pending channel for the callback to complete
    response = client.post(
        reverse("channels:add_connection", args=["threedcart"]),
        {"store_url": "http://127.0.0.1:8097", "access_token": "", "action": "await"},
    )
    assert response.url == reverse("channels:add_settings", args=["threedcart"])
    assert "Waiting for the store" in client.get(response.url).content.decode()
    response = client.post(
        reverse("channels:add_settings", args=["threedcart"]),
        {
            "currency": "USD",
            "timezone": "America/New_York",
            "processed_status": "4",
            "import_statuses": "1, 2",
            "order_lookback_days": "7",
            "order_interval_minutes": "5",
            "stock_sync": "yes",
            "price_sync": "no",
        },
    )
    assert response.status_code == 302
    channel = SalesChannel.objects.get()
    assert channel.connection_state == ConnectionState.PENDING
    listing = client.get(response.url).content.decode()
    assert "connects as soon as your store authorises Storelink" in listing
    assert "Waiting for authorisation" in listing
    assert channel.settings["import_statuses"] == ["1", "2"]
    detail = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    assert f"/callbacks/threedcart/{channel.callback_addresses.get().secret['secret']}/" in detail


def test_members_cannot_add_channels(client, owner):
    member = member_of(owner.account, Role.MEMBER)
    client.force_login(member)
    for url in (
        reverse("channels:add"),
        reverse("channels:add_name", args=["opencart"]),
        reverse("channels:add_connection", args=["opencart"]),
        reverse("channels:add_settings", args=["opencart"]),
    ):
        assert client.get(url).status_code == 403
    assert client.post(reverse("channels:add_name", args=["opencart"]), {"name": "x"}).status_code == 403


def test_a_store_already_connected_is_refused_at_the_connection_step(client, owner, store_calls):
    """Its orders would be downloaded twice; removed channels and other accounts do not count."""
    SalesChannel.objects.create(
        account=owner.account, platform="xcart", name="Old shop", store_url="http://127.0.0.1:8099"
    )
    walk_to_connection(client)
    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {
            "store_url": "HTTP://127.0.0.1:8099/index.php",
            "api_username": "Storelink",
            "api_key": OPENCART_KEY,
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "already connected as “Old shop”" in body
    assert "twice" in body
    assert store_calls == []  # refused before the store is asked
    SalesChannel.objects.filter(name="Old shop").update(removed_at="2026-01-01T00:00:00Z")
    response = client.post(
        reverse("channels:add_connection", args=["opencart"]),
        {"store_url": "http://127.0.0.1:8099/", "api_username": "Storelink", "api_key": OPENCART_KEY},
    )
    assert response.status_code == 302
    assert len(store_calls) == 1


@pytest.mark.parametrize(
    ("platform", "field", "label", "value"),
    [
        ("xcart", "api_key", "API key", "ключ-0123456789abcdef"),
        ("threedcart", "access_token", "Access token", "tökén0123456789abcdef"),
    ],
)
def test_a_credential_sent_as_a_header_must_be_printable_ascii(
    client, owner, store_calls, platform, field, label, value
):
    """httpx cannot put such a value in a header: it used to be a 500 at "test connection"."""
    walk_to_connection(client, platform)
    response = client.post(
        reverse("channels:add_connection", args=[platform]),
        {"store_url": "https://shop.example.com", field: value},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f"{label} must contain only printable ASCII characters." in body
    assert value not in body
    assert store_calls == []
    assert SalesChannel.objects.count() == 0
