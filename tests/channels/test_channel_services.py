"""Channel lifecycle services: validation, roles, audit trail, connection state."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Role
from channels import services
from channels.models import ChannelEvent, ConnectionState, SalesChannel, SyncJob, SyncRun, SyncState
from connectors.errors import AuthError, TransientError
from tests.factories import OPENCART_SECRET, SalesChannelFactory

pytestmark = pytest.mark.django_db

OC_CREDENTIALS = {"api_username": "Default", "api_key": OPENCART_SECRET}


def add_opencart(tenant, name: str = "Main shop", **overrides):
    values = {
        "platform": "opencart",
        "name": name,
        "store_url": "https://shop.example.com/",
        "credentials": OC_CREDENTIALS,
        "settings": {"currency": "EUR", "import_statuses": ["1", "2"]},
    } | overrides
    return services.add_channel(tenant.account, actor=tenant.user, **values)


def test_add_channel_tests_the_store_and_saves_everything(alice, fake_store) -> None:
    channel = add_opencart(alice)
    assert len(fake_store.calls) == 1
    call = fake_store.calls[0]
    assert call["store_url"] == "https://shop.example.com"
    assert call["credentials"]["api_key"] == OPENCART_SECRET
    assert call["options"].allow_private_hosts is True

    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.account == alice.account
    assert channel.enabled is True
    assert channel.connection_state == ConnectionState.OK
    assert channel.credentials == OC_CREDENTIALS
    assert channel.settings["currency"] == "EUR"
    assert channel.settings["processed_status"] == "3"  # spec default filled in
    assert channel.settings["order_lookback_days"] == 7
    assert {s["code"] for s in channel.store_facts["order_statuses"]} >= {"1", "2", "3"}
    event = ChannelEvent.objects.get(channel=channel)
    assert (event.action, event.actor, event.account) == ("channel.added", alice.user, alice.account)
    assert OPENCART_SECRET not in str(event.detail)


def test_add_channel_uses_given_store_facts_without_calling_the_store(alice, fake_store) -> None:
    facts = {"base_currency": "GBP", "order_statuses": [{"code": "1", "name": "Pending"}], "currencies": []}
    channel = add_opencart(
        alice, store_facts=facts, settings={"import_statuses": ["1"], "processed_status": "1"}
    )
    assert fake_store.calls == []
    assert channel.settings["currency"] == "GBP"  # filled from what the store reported


def test_add_channel_reports_all_field_errors_and_saves_nothing(alice, fake_store) -> None:
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, name="", store_url="ftp://shop", credentials={"api_key": "short"})
    errors = caught.value.message_dict
    assert set(errors) >= {"name", "store_url", "api_key"}
    assert "https" in errors["store_url"][0]
    assert fake_store.calls == []
    assert not SalesChannel.objects.exists()


def test_settings_must_use_the_stores_own_statuses(alice, fake_store) -> None:
    with pytest.raises(ValidationError) as caught:
        add_opencart(
            alice, settings={"currency": "EUR", "processed_status": "99", "import_statuses": ["1", "42"]}
        )
    errors = caught.value.message_dict
    assert "99" in errors["processed_status"][0]
    assert "42" in errors["import_statuses"][0]
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, settings={"currency": "USD"})
    assert "USD" in caught.value.message_dict["currency"][0]
    assert not SalesChannel.objects.exists()


def test_store_refusing_credentials_saves_nothing(alice, fake_store) -> None:
    fake_store.error = AuthError("OpenCart refused the API key.", code="bad_key")
    with pytest.raises(AuthError):
        add_opencart(alice)
    assert not SalesChannel.objects.exists()
    assert not ChannelEvent.objects.exists()


def test_name_unique_per_account_among_live_channels(alice, bob, fake_store) -> None:
    first = add_opencart(alice, name="Main shop")
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, name="main SHOP")
    assert "already have a channel" in caught.value.message_dict["name"][0]
    add_opencart(bob, name="Main shop")  # another tenant may use the same name
    services.remove_channel(first, actor=alice.user)
    again = add_opencart(alice, name="Main shop")  # re-adding makes a new channel
    assert again.pk != first.pk


@pytest.mark.parametrize(
    "again",
    [
        "https://shop.example.com",
        "https://SHOP.Example.COM/",
        "https://shop.example.com:443/",
        "http://shop.example.com/",
        "https://shop.example.com/index.php",
        "https://shop.example.com//",
        "https://shop.example.com./",
    ],
)
def test_the_same_store_twice_is_refused(alice, fake_store, again: str) -> None:
    first = add_opencart(alice)
    with pytest.raises(services.ChannelConflict) as caught:
        add_opencart(alice, name="Second", store_url=again)
    message = caught.value.message_dict["store_url"][0]
    assert "already connected as “Main shop”" in message
    assert "twice" in message
    assert SalesChannel.objects.live().filter(account=alice.account).get() == first
    assert len(fake_store.calls) == 1  # refused before the store is asked


def test_the_same_store_is_free_again_once_removed_and_in_other_accounts(alice, bob, fake_store) -> None:
    first = add_opencart(alice)
    add_opencart(bob)  # another account may connect the same store
    add_opencart(alice, name="Shop folder", store_url="https://shop.example.com/shop/")  # another store
    add_opencart(alice, name="Other port", store_url="https://shop.example.com:8443/")
    services.remove_channel(first, actor=alice.user)
    again = add_opencart(alice, name="Again")
    assert again.store_key == first.store_key == "shop.example.com"


def test_reauthorising_onto_a_connected_store_is_refused(alice, fake_store) -> None:
    add_opencart(alice)
    other = add_opencart(alice, name="Outlet", store_url="https://outlet.example.com/")
    with pytest.raises(services.ChannelConflict) as caught:
        services.reauthorise_channel(
            other, actor=alice.user, credentials={}, store_url="https://shop.example.com/index.php"
        )
    assert "already connected" in caught.value.message_dict["store_url"][0]
    assert SalesChannel.objects.get(pk=other.pk).store_url == "https://outlet.example.com"
    # its own URL, written differently, is the same channel, not a second one
    moved = services.reauthorise_channel(
        other, actor=alice.user, credentials={}, store_url="https://OUTLET.example.com/index.php"
    )
    assert moved.store_key == "outlet.example.com"


def test_the_database_refuses_a_second_live_channel_for_a_store(alice) -> None:
    """Two concurrent adds may both pass the check; the unique index lets only one commit."""
    from django.db import IntegrityError, transaction

    SalesChannelFactory(account=alice.account, store_url="https://shop.example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        SalesChannelFactory(account=alice.account, store_url="https://Shop.example.com/index.php")
    removed = SalesChannelFactory(account=alice.account, store_url="https://b.example.com")
    removed.removed_at = removed.created_at
    removed.save()
    SalesChannelFactory(account=alice.account, store_url="https://b.example.com/")


def test_a_lost_race_for_a_store_is_the_same_conflict(alice, fake_store, monkeypatch) -> None:
    add_opencart(alice)
    # as if the check ran before the other request committed
    monkeypatch.setattr(services, "ensure_store_not_connected", lambda *args, **kwargs: None)
    with pytest.raises(services.ChannelConflict) as caught:
        add_opencart(alice, name="Racer")
    assert "already connected as “Main shop”" in caught.value.message_dict["store_url"][0]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://127.0.0.1/", "private or reserved"),
        ("https://10.1.2.3/shop", "private or reserved"),
        ("https://169.254.169.254/", "private or reserved"),
        ("https://[::1]/", "private or reserved"),
        ("https://user:pw@shop.example.com/", "user name or password"),
        ("ftp://shop.example.com/", "https"),
        ("http://shop.example.com/", "https"),
        ("https://localhost/", "not a public address"),
        ("https://93.184.216.34:6379/", "port 6379 is not allowed; allowed: 80, 443, 8080, 8443"),
    ],
)
def test_store_url_guard(alice, settings, monkeypatch, url: str, fragment: str) -> None:
    settings.ALLOW_PRIVATE_STORE_HOSTS = False
    monkeypatch.setattr("channels.services.build_connector", lambda *a, **k: pytest.fail("store contacted"))
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, store_url=url)
    assert fragment in caught.value.message_dict["store_url"][0]


def test_the_operator_decides_which_ports_public_stores_may_use(alice, settings, monkeypatch) -> None:
    settings.ALLOW_PRIVATE_STORE_HOSTS = False
    settings.STORE_ALLOWED_PORTS = (443, 6379)
    assert services.clean_store_url("https://93.184.216.34:6379/") == "https://93.184.216.34:6379"
    assert services.connector_options().allowed_ports == (443, 6379)
    with pytest.raises(ValidationError) as caught:
        services.clean_store_url("https://93.184.216.34:8443/")
    assert caught.value.message_dict["store_url"] == [
        "The store URL's port 8443 is not allowed; allowed: 443, 6379."
    ]


def test_private_hosts_allowed_when_the_deployment_says_so(alice, fake_store) -> None:
    channel = add_opencart(alice, store_url="http://127.0.0.1:8081/")
    assert channel.store_url == "http://127.0.0.1:8081"


def test_enable_disable_are_idempotent_and_audited(alice, fake_store) -> None:
    channel = add_opencart(alice)
    channel = services.disable_channel(channel, actor=alice.user)
    channel = services.disable_channel(channel, actor=alice.user)
    assert SalesChannel.objects.get(pk=channel.pk).enabled is False
    channel = services.enable_channel(channel, actor=alice.user)
    assert SalesChannel.objects.get(pk=channel.pk).enabled is True
    actions = list(
        ChannelEvent.objects.filter(channel=channel).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["channel.added", "channel.disabled", "channel.enabled"]


def test_remove_is_soft_wipes_credentials_and_stops_jobs(alice, fake_store) -> None:
    channel = add_opencart(alice)
    services.remove_channel(channel, actor=alice.user)
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.removed_at is not None
    assert channel.enabled is False
    assert channel.credentials == {}
    assert not SalesChannel.objects.live().filter(pk=channel.pk).exists()
    assert not SalesChannel.objects.syncable().filter(pk=channel.pk).exists()
    with pytest.raises(ValidationError):
        services.enable_channel(channel, actor=alice.user)


def test_update_settings_merges_validates_and_renames(alice, fake_store) -> None:
    channel = add_opencart(alice)
    # another store: the same one twice is refused (test_the_same_store_twice_is_refused)
    other = add_opencart(alice, name="Outlet", store_url="https://outlet.example.com/")
    channel = services.update_channel_settings(
        channel, actor=alice.user, settings={"order_lookback_days": 30}, name="Flagship"
    )
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.name == "Flagship"
    assert channel.settings["order_lookback_days"] == 30
    assert channel.settings["currency"] == "EUR"  # untouched keys kept
    with pytest.raises(ValidationError) as caught:
        services.update_channel_settings(channel, actor=alice.user, settings={"order_lookback_days": 500})
    assert "at most 90" in caught.value.message_dict["order_lookback_days"][0]
    with pytest.raises(ValidationError):
        services.update_channel_settings(channel, actor=alice.user, name=other.name)
    assert SalesChannel.objects.get(pk=channel.pk).settings["order_lookback_days"] == 30
    event = ChannelEvent.objects.filter(channel=channel, action="channel.settings_changed").get()
    assert event.detail["settings"] == ["order_lookback_days"]


def test_reauthorise_rechecks_and_clears_needs_reauth(alice, fake_store) -> None:
    channel = add_opencart(alice)
    services.mark_needs_reauth(channel, "OpenCart refused the API key.")
    assert SalesChannel.objects.get(pk=channel.pk).connection_state == ConnectionState.NEEDS_REAUTH
    new_key = "NewKey0123456789abcdefABCDEF0000"
    channel = services.reauthorise_channel(
        channel, actor=alice.user, credentials={"api_username": "Storelink", "api_key": new_key}
    )
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.connection_state == ConnectionState.OK
    assert channel.last_error == ""
    assert channel.credentials == {"api_username": "Storelink", "api_key": new_key}
    assert fake_store.calls[-1]["credentials"]["api_key"] == new_key


def test_reauthorise_keeps_a_blank_secret_and_saves_nothing_on_failure(alice, fake_store) -> None:
    channel = add_opencart(alice)
    services.reauthorise_channel(
        channel,
        actor=alice.user,
        credentials={"api_username": "Default", "api_key": ""},
        store_url="https://new.example.com",
    )
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.credentials["api_key"] == OPENCART_SECRET
    assert channel.store_url == "https://new.example.com"

    fake_store.error = AuthError("Your IP address is not allowed.", code="ip_not_allowed")
    with pytest.raises(AuthError):
        services.reauthorise_channel(
            channel,
            actor=alice.user,
            credentials={"api_key": "Other0123456789abcdefABCDEF00000"},
            store_url="https://third.example.com",
        )
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.store_url == "https://new.example.com"
    assert channel.credentials["api_key"] == OPENCART_SECRET


def test_check_connection_records_outcome(alice, fake_store) -> None:
    channel = add_opencart(alice)
    fake_store.error = AuthError("The API key was revoked.", code="bad_key")
    with pytest.raises(AuthError):
        services.check_channel_connection(channel, actor=alice.user)
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert channel.last_error == "The API key was revoked."
    run = SyncRun.objects.get(channel=channel)
    assert (run.job, run.state, run.error) == (SyncJob.TEST, SyncState.FAILED, "The API key was revoked.")

    fake_store.error = TransientError("The store did not answer within 20 seconds.")
    with pytest.raises(TransientError):
        services.check_channel_connection(channel, actor=alice.user)
    assert SalesChannel.objects.get(pk=channel.pk).connection_state == ConnectionState.ERROR

    fake_store.error = None
    services.check_channel_connection(channel, actor=alice.user)
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert (channel.connection_state, channel.last_error) == (ConnectionState.OK, "")
    assert SyncRun.objects.filter(channel=channel, state=SyncState.SUCCEEDED).count() == 1


def test_members_cannot_add_reauthorise_or_remove(alice, fake_store) -> None:
    channel = add_opencart(alice)
    member = alice.member(Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.add_channel(
            alice.account,
            actor=member,
            platform="opencart",
            name="Second",
            store_url="https://x.example.com",
            credentials=OC_CREDENTIALS,
            settings={},
        )
    assert fake_store.calls == [fake_store.calls[0]]  # the refused add never reached the store
    with pytest.raises(PermissionDenied):
        services.reauthorise_channel(channel, actor=member, credentials=OC_CREDENTIALS)
    with pytest.raises(PermissionDenied):
        services.remove_channel(channel, actor=member)
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.removed_at is None
    assert channel.credentials == OC_CREDENTIALS
    # ... but may switch the channel and change settings.
    services.disable_channel(channel, actor=member)
    services.update_channel_settings(channel, actor=member, settings={"stock_sync": False})
    assert SalesChannel.objects.get(pk=channel.pk).settings["stock_sync"] is False


def test_admin_role_may_reauthorise(alice, fake_store) -> None:
    channel = add_opencart(alice)
    admin = alice.member(Role.ADMIN)
    services.reauthorise_channel(channel, actor=admin, credentials=OC_CREDENTIALS)
    assert ChannelEvent.objects.filter(channel=channel, action="channel.reauthorised", actor=admin).exists()


def test_other_tenant_cannot_act_on_a_channel(alice, bob) -> None:
    channel = SalesChannelFactory(account=alice.account)
    for action in (services.enable_channel, services.disable_channel, services.remove_channel):
        with pytest.raises(PermissionDenied):
            action(channel, actor=bob.user)
    with pytest.raises(PermissionDenied):
        services.update_channel_settings(channel, actor=bob.user, name="Hijacked")
    assert SalesChannel.objects.get(pk=channel.pk).name == channel.name


def test_threedcart_without_token_is_pending_and_not_tested(alice, fake_store) -> None:
    channel = services.add_channel(
        alice.account,
        actor=alice.user,
        platform="threedcart",
        name="3D",
        store_url="https://demo-store.3dcartstores.com",
        credentials={},
        settings={"currency": "USD"},
    )
    assert channel.connection_state == ConnectionState.PENDING
    assert fake_store.calls == []
    assert not SalesChannel.objects.syncable().filter(pk=channel.pk).exists()


def test_connector_for_builds_from_stored_values_and_options(alice, settings) -> None:
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.THREEDCART_PRIVATE_KEY = "app-private"
    settings.THREEDCART_PUBLIC_KEY = "app-public"
    settings.THREEDCART_API_BASE = "http://127.0.0.1:9/"
    channel = SalesChannelFactory(account=alice.account)
    connector = services.connector_for(channel)
    assert connector.platform == "opencart"
    assert connector.credentials["api_key"] == OPENCART_SECRET
    assert connector.settings["currency"] == "EUR"
    assert connector.options.allow_private_hosts is True
    # a platform gets the operator's app keys and API host its connector declares, and no other's
    assert dict(connector.options.app_keys) == {}
    assert connector.options.api_base == ""
    threedcart = services.connector_options("threedcart")
    assert threedcart.app_keys["threedcart_private_key"] == "app-private"
    assert threedcart.app_keys["threedcart_public_key"] == "app-public"
    assert threedcart.api_base == "http://127.0.0.1:9/"


def test_unknown_platform_is_a_field_error(alice, fake_store) -> None:
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, platform="magento")
    assert "platform" in caught.value.message_dict


@pytest.mark.parametrize(
    ("settings_values", "field"),
    [
        ({"import_statuses": False}, "import_statuses"),
        ({"import_statuses": [{"code": "1"}]}, "import_statuses"),
        ({"currency": ["EUR"]}, "currency"),
        ({"order_lookback_days": "soon"}, "order_lookback_days"),
        ({"stock_sync": {"on": True}}, "stock_sync"),
    ],
)
def test_wrongly_typed_settings_are_field_errors_not_crashes(
    alice, fake_store, settings_values, field
) -> None:
    channel = add_opencart(alice)
    with pytest.raises(ValidationError) as caught:
        services.update_channel_settings(channel, actor=alice.user, settings=settings_values)
    assert field in caught.value.message_dict


@pytest.mark.parametrize(
    "url", ["https://shop[.example.com/", "https://[::1/", "https://shop.example.com:99999/"]
)
def test_malformed_store_urls_are_field_errors(alice, fake_store, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, store_url=url)
    assert caught.value.message_dict["store_url"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Shop\x00"}, "name"),
        ({"name": "Shop\ud800"}, "name"),
        ({"store_url": "https://shop.example.com/\x00"}, "store_url"),
        ({"settings": {"currency": "EUR", "import_statuses": ["1\x00"]}}, "import_statuses"),
    ],
)
def test_invisible_characters_are_refused_before_the_database(alice, fake_store, overrides, field) -> None:
    with pytest.raises(ValidationError) as caught:
        add_opencart(alice, store_facts={"base_currency": "EUR"}, **overrides)
    assert field in caught.value.message_dict
    assert not SalesChannel.objects.exists()
