"""Django admin: account scoping for staff, masked credentials, enable/disable actions."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role, User
from channels.models import ChannelEvent, SalesChannel
from tests.factories import OPENCART_SECRET, SalesChannelFactory, member_of

pytestmark = pytest.mark.django_db


def staff_client(user: User) -> Client:
    user.is_staff = True
    user.save()
    # Staff need model permissions; give them all channel and account permissions.
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["channels", "accounts"]))
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_only_their_accounts(alice, bob) -> None:
    mine = SalesChannelFactory(account=alice.account, name="Alice's shop")
    theirs = SalesChannelFactory(account=bob.account, name="Bob's shop")
    client = staff_client(member_of(alice.account, Role.ADMIN))
    page = client.get("/admin/channels/saleschannel/").content.decode()
    assert "Alice&#x27;s shop" in page
    assert "Bob&#x27;s shop" not in page
    assert (
        client.get(f"/admin/channels/saleschannel/{theirs.pk}/change/").status_code == 302
    )  # "does not exist"
    assert client.get(f"/admin/channels/saleschannel/{mine.pk}/change/").status_code == 200
    accounts_page = client.get("/admin/accounts/account/").content.decode()
    assert "Alice&#x27;s Shop" in accounts_page
    assert "Bob&#x27;s Shop" not in accounts_page


def test_superuser_filters_by_account_and_sees_masked_credentials(alice, bob) -> None:
    channel = SalesChannelFactory(account=alice.account)
    SalesChannelFactory(account=bob.account)
    admin = User.objects.create_superuser(email="ops@example.com", password="ops-password-123")
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/channels/saleschannel/", {"account__id__exact": str(alice.account.pk)})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    page = client.get(f"/admin/channels/saleschannel/{channel.pk}/change/").content.decode()
    assert "•••• set" in page
    assert OPENCART_SECRET not in page


def test_disable_and_enable_actions_go_through_services(alice, bob) -> None:
    channel = SalesChannelFactory(account=alice.account)
    foreign = SalesChannelFactory(account=bob.account)
    operator = member_of(alice.account, Role.ADMIN)
    client = staff_client(operator)
    response = client.post(
        "/admin/channels/saleschannel/",
        {"action": "disable_selected", "_selected_action": [str(channel.pk), str(foreign.pk)]},
    )
    assert response.status_code == 302
    assert SalesChannel.objects.get(pk=channel.pk).enabled is False
    assert SalesChannel.objects.get(pk=foreign.pk).enabled is True  # outside the staff user's scope
    event = ChannelEvent.objects.get(channel=channel)
    assert (event.action, event.actor) == ("channel.disabled", operator)
    client.post(
        "/admin/channels/saleschannel/", {"action": "enable_selected", "_selected_action": [str(channel.pk)]}
    )
    assert SalesChannel.objects.get(pk=channel.pk).enabled is True


def test_every_model_has_an_admin_page(alice) -> None:
    SalesChannelFactory(account=alice.account)
    admin = User.objects.create_superuser(email="ops2@example.com", password="ops-password-123")
    client = Client()
    client.force_login(admin)
    for path in (
        "/admin/accounts/user/",
        "/admin/accounts/account/",
        "/admin/accounts/membership/",
        "/admin/accounts/apikey/",
        "/admin/channels/saleschannel/",
        "/admin/channels/channelevent/",
        "/admin/channels/syncrun/",
    ):
        assert client.get(path).status_code == 200, path


def test_staff_cannot_attach_memberships_to_other_accounts(alice, bob) -> None:
    operator = member_of(alice.account, Role.ADMIN)
    client = staff_client(operator)
    newcomer = User.objects.create_user(email="newcomer@example.com", password="pw-123456789")
    response = client.post(
        "/admin/accounts/membership/add/",
        {"account": str(bob.account.pk), "user": str(newcomer.pk), "role": "owner"},
    )
    assert response.status_code == 200  # the form is shown again with an error
    assert not newcomer.memberships.exists()
    client.post(
        "/admin/accounts/membership/add/",
        {"account": str(alice.account.pk), "user": str(newcomer.pk), "role": "member"},
    )
    assert newcomer.memberships.get().account == alice.account


def test_staff_cannot_make_anyone_superuser(alice) -> None:
    operator = member_of(alice.account, Role.ADMIN)
    client = staff_client(operator)
    client.post(
        f"/admin/accounts/user/{operator.pk}/change/",
        {"email": operator.email, "is_active": "on", "is_superuser": "on", "is_staff": "on"},
    )
    operator.refresh_from_db()
    assert operator.is_superuser is False


def test_sync_now_action_enqueues_only_syncable_own_channels(
    alice, bob, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from channels import sync
    from channels.models import ConnectionState

    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), str(job))))
    healthy = SalesChannelFactory(account=alice.account, name="Healthy", settings={"stock_sync": False})
    paused = SalesChannelFactory(
        account=alice.account, name="Paused", connection_state=ConnectionState.NEEDS_REAUTH
    )
    foreign = SalesChannelFactory(account=bob.account, name="Bob's")
    client = staff_client(member_of(alice.account, Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/channels/saleschannel/",
            {
                "action": "sync_now_selected",
                "_selected_action": [str(healthy.pk), str(paused.pk), str(foreign.pk)],
            },
            follow=True,
        )
    assert sorted(sent) == [(str(healthy.pk), "orders"), (str(healthy.pk), "shipments")]
    page = response.content.decode()
    assert "Paused: not synced" in page
    assert "Sync started on 1 channel(s)." in page


def test_a_removed_channel_does_not_read_connected_in_the_admin(alice) -> None:
    from django.utils import timezone

    live = SalesChannelFactory(account=alice.account, name="Live shop")
    gone = SalesChannelFactory(
        account=alice.account, name="Gone shop", removed_at=timezone.now(), enabled=False
    )
    client = staff_client(member_of(alice.account, Role.ADMIN))
    listing = client.get("/admin/channels/saleschannel/")
    rows = {channel.name: channel.health.label for channel in listing.context["cl"].result_list}
    assert rows == {"Live shop": "Connected", "Gone shop": "Removed"}
    page = client.get(f"/admin/channels/saleschannel/{gone.pk}/change/").content.decode()
    assert "Removed" in page
    assert "Connected" not in page
    assert "Connected" in client.get(f"/admin/channels/saleschannel/{live.pk}/change/").content.decode()


def test_the_failure_count_cannot_be_edited_in_the_admin(alice) -> None:
    channel = SalesChannelFactory(account=alice.account, name="Live shop", failed_runs=2)
    client = staff_client(member_of(alice.account, Role.ADMIN))
    page = client.get(f"/admin/channels/saleschannel/{channel.pk}/change/").content.decode()
    for field in ("failed_runs", "failing_since", "last_error_job"):
        assert f'name="{field}' not in page  # shown, not an input
