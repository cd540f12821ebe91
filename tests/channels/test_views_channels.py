"""Seller UI for existing channels: list, status switch, channel page, reauthorise, remove.

Every access test has a second tenant (bob) next to the first (alice), and members next to admins:
the UI must answer 404 for another account's channel and 403 for a role that may not act, and
nothing may change in either case.
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from accounts.models import Role
from channels import services, sync
from channels import views as channel_views
from channels.models import ChannelEvent, ConnectionState, SalesChannel
from connectors.base import StoreFacts, StoreStatus
from connectors.errors import AuthError
from tests.factories import OPENCART_SECRET, SalesChannelFactory, member_of

pytestmark = pytest.mark.django_db

SECRET_KEY_VALUE = OPENCART_SECRET


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
def alice(alice, client):
    """Alice (the shared tenant fixture), signed in."""
    client.force_login(alice.user)
    return alice


@pytest.fixture
def private_hosts(allow_private_hosts):
    return allow_private_hosts


def make_channel(tenant, name: str = "Main shop", **overrides: object) -> SalesChannel:
    overrides.setdefault("store_url", "https://shop.example.com")
    return SalesChannelFactory(account=tenant.account, name=name, **overrides)


# --------------------------------------------------------------------------------------------------
# List and toggle
# --------------------------------------------------------------------------------------------------


def test_list_shows_the_channel_columns_and_only_own_live_channels(client, alice, bob):
    mine = make_channel(alice, "Main shop")
    make_channel(alice, "Old shop", removed_at="2026-01-01T00:00:00Z")
    make_channel(bob, "Bob's secret shop")

    response = client.get(reverse("channels:list"))

    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="channel-{mine.pk}"' in body
    assert "img/logos/opencart.svg" in body
    assert 'alt="OpenCart logo"' in body
    assert 'role="switch" aria-checked="true"' in body
    assert ">Yes</button>" in body
    assert "Connected" in body
    assert "Old shop" not in body
    assert "Bob&#x27;s secret shop" not in body
    assert "Bob's secret shop" not in body
    assert SECRET_KEY_VALUE not in body


def test_empty_list_invites_to_add_a_channel(client, alice):
    body = client.get(reverse("channels:list")).content.decode()
    assert "No sales channels yet" in body
    assert reverse("channels:add") in body


def test_toggle_without_javascript_posts_and_redirects(client, alice):
    channel = make_channel(alice)

    response = client.post(reverse("channels:toggle", args=[channel.pk]), {"enabled": "no"})

    assert response.status_code == 302
    assert response.url == reverse("channels:list")
    channel.refresh_from_db()
    assert channel.enabled is False
    assert ChannelEvent.objects.filter(channel=channel, action="channel.disabled").count() == 1
    body = client.get(response.url).content.decode()
    assert 'aria-checked="false"' in body
    assert ">No</button>" in body


def test_toggle_with_htmx_returns_the_fresh_row(client, alice):
    channel = make_channel(alice, enabled=False)

    response = client.post(
        reverse("channels:toggle", args=[channel.pk]), {"enabled": "yes"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith("<tr")
    assert f'id="channel-{channel.pk}"' in body
    assert 'aria-checked="true"' in body
    assert "<html" not in body
    channel.refresh_from_db()
    assert channel.enabled is True


def test_toggle_is_idempotent_for_a_double_click(client, alice):
    channel = make_channel(alice)
    url = reverse("channels:toggle", args=[channel.pk])
    client.post(url, {"enabled": "no"})
    client.post(url, {"enabled": "no"})
    channel.refresh_from_db()
    assert channel.enabled is False
    assert ChannelEvent.objects.filter(channel=channel, action="channel.disabled").count() == 1


def test_toggle_from_channel_page_swaps_the_status_card_without_sync_now(client, alice):
    channel = make_channel(alice)
    assert "Sync now" in client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    response = client.post(
        reverse("channels:toggle", args=[channel.pk]),
        {"enabled": "no", "return_to": "detail"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert body.split(">", 1)[0].lstrip().startswith('<section class="card status-card" id="status-card"')
    assert "data-toggle-host" in body
    assert "<tr" not in body
    assert "<html" not in body
    assert 'aria-checked="false"' in body
    assert "Sync now" not in body  # a disabled channel cannot sync
    assert f'data-announce="“{channel.name}” is disabled."' in body

    body = client.post(
        reverse("channels:toggle", args=[channel.pk]),
        {"enabled": "yes", "return_to": "detail"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Sync now" in body


def test_toggle_needs_post(client, alice):
    channel = make_channel(alice)
    assert client.get(reverse("channels:toggle", args=[channel.pk])).status_code == 405


# --------------------------------------------------------------------------------------------------
# Channel page
# --------------------------------------------------------------------------------------------------


def test_channel_page_lists_its_sync_runs_with_counts_and_error(client, alice):
    from channels.models import SyncRun

    channel = make_channel(alice)
    other = make_channel(alice, "Second shop", store_url="https://second.example.com")
    SyncRun.objects.create(
        account=alice.account, channel=channel, job="orders", state="succeeded", fetched=41, created=37
    )
    SyncRun.objects.create(
        account=alice.account,
        channel=channel,
        job="shipments",
        state="failed",
        error="The store refused tracking number 1Z-BAD.",
    )
    SyncRun.objects.create(
        account=alice.account, channel=other, job="stock", state="failed", error="Elsewhere"
    )

    body = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()

    assert "No sync runs yet" not in body
    assert ">41<" in body
    assert ">37<" in body
    assert "The store refused tracking number 1Z-BAD." in body
    assert "Elsewhere" not in body  # another channel's runs stay on its own page
    assert reverse("channels:sync_now", args=[channel.pk]) in body


def test_channel_page_shows_settings_with_store_statuses_and_no_secret(client, alice):
    channel = make_channel(alice, last_error="The store took too long to answer.")

    body = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()

    assert "Processed order status" in body
    assert '<option value="3" selected>Shipped (3)</option>' in body
    assert 'value="GBP"' in body  # currency choices come from what the store reported
    assert "No sync runs yet" in body
    assert "The store took too long to answer." in body
    assert reverse("channels:reauthorise", args=[channel.pk]) in body
    assert reverse("channels:remove", args=[channel.pk]) in body
    assert SECRET_KEY_VALUE not in body


def test_channel_page_saves_settings_and_name(client, alice):
    channel = make_channel(alice)
    form = {
        "name": "Renamed shop",
        "version_family": "auto",
        "currency": "GBP",
        "use_store_tax_settings": "no",
        "use_options": "no",
        "processed_status": "5",
        "import_statuses": ["1", "2", "5"],
        "order_lookback_days": "14",
        "order_interval_minutes": "10",
        "stock_sync": "yes",
        "price_sync": "yes",
    }

    response = client.post(reverse("channels:detail", args=[channel.pk]), form)

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Renamed shop"
    assert channel.settings["currency"] == "GBP"
    assert channel.settings["use_store_tax_settings"] is False
    assert "prices_include_tax" not in channel.settings  # the master's basis is the account's
    assert channel.settings["use_options"] is False
    assert channel.settings["import_statuses"] == ["1", "2", "5"]
    assert channel.settings["order_lookback_days"] == 14
    assert channel.credentials["api_key"] == SECRET_KEY_VALUE  # settings never touch credentials


def test_channel_page_shows_each_error_next_to_its_field_and_saves_nothing(client, alice):
    channel = make_channel(alice)
    before = dict(channel.settings)
    form = {
        "name": "Main shop",
        "version_family": "auto",
        "currency": "EUR",
        "use_store_tax_settings": "yes",
        "use_options": "yes",
        "processed_status": "3",
        "import_statuses": ["1"],
        "order_lookback_days": "0",
        "order_interval_minutes": "5",
        "stock_sync": "yes",
        "price_sync": "no",
    }

    response = client.post(reverse("channels:detail", args=[channel.pk]), form)

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="field-order_lookback_days"' in body
    field_html = body.split('id="field-order_lookback_days"', 1)[1].split("</div>\n", 3)
    assert "field-errors" in "".join(field_html)
    channel.refresh_from_db()
    assert channel.settings == before


def test_state_badge_partial_for_polling(client, alice):
    channel = make_channel(alice, connection_state=ConnectionState.PENDING, platform="threedcart")
    body = client.get(reverse("channels:state", args=[channel.pk])).content.decode()
    assert "Waiting for authorisation" in body
    assert 'hx-trigger="every 5s"' in body
    assert "<html" not in body
    assert "data-announce" not in body  # still waiting: nothing to read out

    channel.connection_state = ConnectionState.OK
    channel.save()
    body = client.get(reverse("channels:state", args=[channel.pk])).content.decode()
    assert "hx-trigger" not in body  # polling stops
    assert f'data-announce="“{channel.name}”: Connected."' in body


def test_test_connection_button_records_needs_reauth(client, alice, monkeypatch):
    channel = make_channel(alice)

    class RefusingConnector:
        def test_connection(self):
            raise AuthError("The store refused the API key.", code="bad_key")

        def close(self):
            pass

    monkeypatch.setattr(services, "connector_for", lambda channel, http=None: RefusingConnector())

    response = client.post(reverse("channels:test", args=[channel.pk]), follow=True)

    assert "The store refused the API key." in response.content.decode()
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert channel.sync_runs.count() == 1


def test_sync_now_enqueues_the_channels_jobs_after_commit(
    client, alice, monkeypatch, django_capture_on_commit_callbacks
):
    channel = make_channel(alice)
    sent = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), job)))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("channels:sync_now", args=[channel.pk]), follow=True)

    assert "Sync started: orders, shipments, stock." in response.content.decode()
    assert sent == [(str(channel.pk), "orders"), (str(channel.pk), "shipments"), (str(channel.pk), "stock")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"enabled": False}, "switch it to Yes"),
        ({"connection_state": ConnectionState.NEEDS_REAUTH}, "reauthorise it first"),
    ],
)
def test_sync_now_refuses_paused_channels(
    client, alice, monkeypatch, django_capture_on_commit_callbacks, overrides, message
):
    channel = make_channel(alice, **overrides)
    sent = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append(job))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("channels:sync_now", args=[channel.pk]), follow=True)
    assert message in response.content.decode()
    assert sent == []


# --------------------------------------------------------------------------------------------------
# Remove and reauthorise
# --------------------------------------------------------------------------------------------------


def test_remove_asks_for_confirmation_first(client, alice):
    channel = make_channel(alice)

    body = client.get(reverse("channels:remove", args=[channel.pk])).content.decode()

    assert "new channel" in body
    assert "<strong>stay</strong>" in body
    assert "Cancel" in body
    channel.refresh_from_db()
    assert channel.removed_at is None


def test_remove_soft_deletes_and_returns_to_the_list(client, alice):
    channel = make_channel(alice)

    response = client.post(reverse("channels:remove", args=[channel.pk]))

    assert response.status_code == 302
    assert response.url == reverse("channels:list")
    channel.refresh_from_db()
    assert channel.removed_at is not None
    assert channel.credentials == {}
    listing = client.get(reverse("channels:list")).content.decode()
    assert f'id="channel-{channel.pk}"' not in listing
    assert "Its orders stay in Storelink" in listing
    # a removed channel is gone from the UI: its page is a 404 now
    assert client.get(reverse("channels:detail", args=[channel.pk])).status_code == 404


def test_reauthorise_form_never_shows_the_stored_key(client, alice):
    channel = make_channel(alice, connection_state=ConnectionState.NEEDS_REAUTH)
    body = client.get(reverse("channels:reauthorise", args=[channel.pk])).content.decode()
    assert 'value="https://shop.example.com"' in body
    assert 'type="password"' in body
    assert SECRET_KEY_VALUE not in body
    assert "OpenCart end point" in body


def test_reauthorise_failure_shows_the_store_error_and_changes_nothing(
    client, alice, private_hosts, monkeypatch
):
    channel = make_channel(alice, connection_state=ConnectionState.NEEDS_REAUTH, last_error="Key refused")

    def refuse(*args, **kwargs):
        raise AuthError("OpenCart refused the key: add Storelink's IP address to the API user.", code="ip")

    monkeypatch.setattr(services, "test_connection", refuse)

    response = client.post(
        reverse("channels:reauthorise", args=[channel.pk]),
        {
            "store_url": "http://127.0.0.1:8081",
            "api_username": "Storelink",
            "api_key": "NewKey0123456789abcdef",
        },
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "add Storelink&#x27;s IP address" in body
    assert "NewKey0123456789abcdef" not in body
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert channel.store_url == "https://shop.example.com"
    assert channel.credentials["api_key"] == SECRET_KEY_VALUE


def test_reauthorise_success_clears_needs_reauth(client, alice, private_hosts, monkeypatch):
    channel = make_channel(alice, connection_state=ConnectionState.NEEDS_REAUTH, last_error="Key refused")
    monkeypatch.setattr(
        services,
        "test_connection",
        lambda *a, **k: StoreFacts(
            platform_version="4.0.2.3", base_currency="EUR", order_statuses=(StoreStatus("3", "Shipped"),)
        ),
    )

    response = client.post(
        reverse("channels:reauthorise", args=[channel.pk]),
        {"store_url": "http://127.0.0.1:8081/", "api_username": "Storelink", "api_key": ""},
    )

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.OK
    assert channel.last_error == ""
    assert channel.store_url == "http://127.0.0.1:8081"
    assert channel.credentials["api_key"] == SECRET_KEY_VALUE  # blank secret keeps the stored one


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://user:pw@shop.example.com", "must not contain a user name or password"),
        ("ftp://shop.example.com", "must start with https://"),
        ("javascript:alert(1)", "must start with https://"),
        ("https://127.0.0.1/", "private or reserved address"),
        ("https://[::1]/", "private or reserved address"),
        ("https://169.254.169.254/latest/", "private or reserved address"),
        ("https://localhost/", "not a public address"),
        ("http://shop.example.com", "must use https://"),
        ("https://shop.example.com:6379/", "port 6379 is not allowed; allowed: 80, 443, 8080, 8443"),
        (
            "https://[64:ff9b::a9fe:a9fe]/",
            "NAT64 address with the private or reserved IPv4 address 169.254.169.254",
        ),
    ],
)
def test_reauthorise_refuses_hostile_store_urls(client, alice, settings, monkeypatch, url, message):
    settings.ALLOW_PRIVATE_STORE_HOSTS = False
    channel = make_channel(alice)
    monkeypatch.setattr(services, "test_connection", lambda *a, **k: pytest.fail("must not reach the store"))

    response = client.post(
        reverse("channels:reauthorise", args=[channel.pk]),
        {"store_url": url, "api_username": "Storelink", "api_key": ""},
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert message in body.replace("&#x27;", "'")
    assert 'id="field-store_url"' in body
    channel.refresh_from_db()
    assert channel.store_url == "https://shop.example.com"


def test_no_ui_page_or_log_line_shows_a_stored_credential(client, alice, caplog):
    channel = make_channel(alice, connection_state=ConnectionState.NEEDS_REAUTH)
    caplog.set_level("DEBUG")
    pages = [
        reverse("channels:list"),
        reverse("channels:detail", args=[channel.pk]),
        reverse("channels:reauthorise", args=[channel.pk]),
        reverse("channels:remove", args=[channel.pk]),
        reverse("channels:state", args=[channel.pk]),
        reverse("channels:add"),
        reverse("api_keys"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET_KEY_VALUE not in response.content.decode(), url
    client.post(reverse("channels:toggle", args=[channel.pk]), {"enabled": "no"})
    client.post(reverse("channels:detail", args=[channel.pk]), {"name": ""})
    assert SECRET_KEY_VALUE not in caplog.text


# --------------------------------------------------------------------------------------------------
# Bridge download
# --------------------------------------------------------------------------------------------------


def test_bridge_file_is_served_as_an_attachment(client, alice, tmp_path, monkeypatch):
    bridge = tmp_path / "storelink-bridge.php"
    bridge.write_text("<?php // bridge\n")
    monkeypatch.setattr(channel_views, "BRIDGE_FILE", bridge)

    response = client.get(reverse("channels:opencart_bridge"))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert 'filename="storelink-bridge.php"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == b"<?php // bridge\n"


def test_the_shipped_bridge_file_is_what_sellers_download(client, alice):
    response = client.get(reverse("channels:opencart_bridge"))
    body = b"".join(response.streaming_content)
    assert response["Content-Disposition"] == 'attachment; filename="storelink-bridge.php"'
    assert body.startswith(b"<?php")
    assert body == channel_views.BRIDGE_FILE.read_bytes()


def test_bridge_download_is_404_when_the_file_is_missing(client, alice, tmp_path, monkeypatch):
    monkeypatch.setattr(channel_views, "BRIDGE_FILE", tmp_path / "missing.php")
    assert client.get(reverse("channels:opencart_bridge")).status_code == 404


# --------------------------------------------------------------------------------------------------
# Tenancy: a second account's ids are 404 on every URL, and nothing changes
# --------------------------------------------------------------------------------------------------

CHANNEL_URLS = [
    ("get", "channels:detail"),
    ("post", "channels:detail"),
    ("post", "channels:toggle"),
    ("get", "channels:state"),
    ("post", "channels:test"),
    ("post", "channels:sync_now"),
    ("get", "channels:reauthorise"),
    ("post", "channels:reauthorise"),
    ("get", "channels:remove"),
    ("post", "channels:remove"),
]


@pytest.mark.parametrize(("method", "name"), CHANNEL_URLS)
def test_another_accounts_channel_is_404_everywhere(client, alice, bob, method, name):
    theirs = make_channel(bob, "Bob's shop")
    url = reverse(name, args=[theirs.pk])

    response = getattr(client, method)(
        url, {"enabled": "no", "store_url": "https://evil.example.com", "name": "x", "api_key": "k" * 20}
    )

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled is True
    assert theirs.removed_at is None
    assert theirs.name == "Bob's shop"
    assert theirs.store_url == "https://shop.example.com"
    assert not ChannelEvent.objects.filter(channel=theirs).exists()


@pytest.mark.parametrize(("method", "name"), CHANNEL_URLS)
def test_unknown_channel_id_is_404(client, alice, method, name):
    assert getattr(client, method)(reverse(name, args=[uuid.uuid4()])).status_code == 404


@pytest.mark.parametrize(("method", "name"), CHANNEL_URLS)
def test_anonymous_visitors_are_sent_to_log_in(client, bob, method, name):
    channel = make_channel(bob)
    response = getattr(client, method)(reverse(name, args=[channel.pk]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# --------------------------------------------------------------------------------------------------
# Roles: a member can look and toggle, but not touch credentials or remove
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def member_client(client, bob):
    member = member_of(bob.account, Role.MEMBER)
    client.force_login(member)
    return client


def test_member_sees_no_credential_or_remove_controls(member_client, bob):
    channel = make_channel(bob, connection_state=ConnectionState.NEEDS_REAUTH)

    detail = member_client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    listing = member_client.get(reverse("channels:list")).content.decode()

    for body in (detail, listing):
        assert reverse("channels:reauthorise", args=[channel.pk]) not in body
        assert reverse("channels:remove", args=[channel.pk]) not in body
        assert reverse("channels:add") not in body
        assert 'type="password"' not in body
    assert reverse("channels:toggle", args=[channel.pk]) in listing  # pausing a channel is allowed


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "channels:reauthorise"),
        ("post", "channels:reauthorise"),
        ("get", "channels:remove"),
        ("post", "channels:remove"),
    ],
)
def test_member_is_refused_credentials_and_removal(member_client, bob, method, name):
    channel = make_channel(bob)
    response = getattr(member_client, method)(
        reverse(name, args=[channel.pk]), {"store_url": "https://other.example.com", "api_key": "k" * 20}
    )
    assert response.status_code == 403
    channel.refresh_from_db()
    assert channel.removed_at is None
    assert channel.store_url == "https://shop.example.com"
    assert channel.credentials["api_key"] == SECRET_KEY_VALUE


def test_member_can_toggle(member_client, bob):
    channel = make_channel(bob)
    member_client.post(reverse("channels:toggle", args=[channel.pk]), {"enabled": "no"})
    channel.refresh_from_db()
    assert channel.enabled is False


def test_admin_may_reauthorise_and_remove(client, bob):
    admin = member_of(bob.account, Role.ADMIN)
    client.force_login(admin)
    channel = make_channel(bob)
    assert client.get(reverse("channels:reauthorise", args=[channel.pk])).status_code == 200
    assert client.post(reverse("channels:remove", args=[channel.pk])).status_code == 302
