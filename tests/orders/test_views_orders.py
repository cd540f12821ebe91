"""Seller UI for orders: list with filters, detail, add shipment, retry, sync now; tenancy."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels.models import ConnectionState
from orders.models import Shipment, ShipmentState
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = "tests.orders.urls"


@pytest.fixture
def sent(monkeypatch):
    from channels import sync

    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job))))
    return jobs


@pytest.fixture
def alice_channel(alice):
    return SalesChannelFactory(account=alice.account, name="Alice OpenCart")


@pytest.fixture
def bob_channel(bob):
    return SalesChannelFactory(account=bob.account, name="Bob OpenCart")


def test_list_shows_only_own_orders_with_filters(client, alice, alice_channel, bob_channel):
    make_order(alice_channel, "1001")
    make_order(alice_channel, "1002", total_mismatch=True, status_code="5", status_name="Complete")
    make_order(bob_channel, "9009")
    client.force_login(alice.user)
    page = client.get(reverse("orders:list")).content.decode()
    assert "#1001" in page
    assert "#1002" in page
    assert "#9009" not in page
    flagged = client.get(reverse("orders:list"), {"flag": "total_mismatch"}).content.decode()
    assert "#1002" in flagged
    assert "#1001" not in flagged
    by_status = client.get(reverse("orders:list"), {"status": "Complete"}).content.decode()
    assert "#1002" in by_status
    assert "#1001" not in by_status
    by_channel = client.get(reverse("orders:list"), {"channel": str(bob_channel.pk)}).content.decode()
    assert "#9009" not in by_channel  # another account's channel id filters to nothing
    future = client.get(reverse("orders:list"), {"placed_from": "2999-01-01"}).content.decode()
    assert "No order matches" in future


def test_list_filters_by_own_channel_and_date_range(client, alice, alice_channel):
    other = SalesChannelFactory(account=alice.account, name="Alice X-Cart", platform="xcart")
    now = timezone.now()
    make_order(alice_channel, "3001", placed_at=now - timedelta(days=10))
    make_order(alice_channel, "3002", placed_at=now - timedelta(days=2))
    make_order(other, "3003", placed_at=now - timedelta(days=2))
    client.force_login(alice.user)

    def numbers(**params):
        page = client.get(reverse("orders:list"), params).content.decode()
        return {n for n in ("#3001", "#3002", "#3003") if n in page}

    assert numbers(channel=str(other.pk)) == {"#3003"}
    since = (now - timedelta(days=5)).date().isoformat()
    until = (now - timedelta(days=5)).date().isoformat()
    assert numbers(placed_from=since) == {"#3002", "#3003"}
    assert numbers(placed_to=until) == {"#3001"}
    assert numbers(channel=str(alice_channel.pk), placed_from=since) == {"#3002"}
    # A mistyped date is reported on its field and does not drop the channel filter with it.
    response = client.get(reverse("orders:list"), {"channel": str(other.pk), "placed_from": "2024-13-45"})
    page = response.content.decode()
    assert "#3003" in page
    assert "#3001" not in page
    assert "#3002" not in page
    assert response.context["form"].errors["placed_from"]


def test_list_is_paginated(client, alice, alice_channel):
    for number in range(55):
        make_order(alice_channel, str(2000 + number), lines=1)
    client.force_login(alice.user)
    first = client.get(reverse("orders:list")).content.decode()
    assert "Page 1 of 2" in first
    second = client.get(reverse("orders:list"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in second


def test_detail_and_add_shipment(client, alice, alice_channel, sent, django_capture_on_commit_callbacks):
    order = make_order(alice_channel, "1001")
    client.force_login(alice.user)
    url = reverse("orders:detail", args=[order.pk])
    page = client.get(url).content.decode()
    assert "Item 0" in page
    assert "Add shipment" in page
    assert "raw payload" not in page  # staff only
    line = order.lines.first()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                f"qty_{line.pk}": "1",
                **{f"qty_{other.pk}": "0" for other in order.lines.exclude(pk=line.pk)},
                "carrier": "DHL",
                "tracking_numbers": "JD0001\nJD0002",
            },
        )
    assert response.status_code == 302
    shipment = Shipment.objects.get()
    assert shipment.tracking_numbers == ["JD0001", "JD0002"]
    assert shipment.lines == [{"external_line_id": line.external_line_id, "quantity": 1}]
    assert shipment.is_partial
    assert sent == [(str(alice_channel.pk), "shipments")]
    page = client.get(url).content.decode()
    assert "JD0002" in page
    assert "Pending" in page


def test_add_shipment_rejects_too_many_units(client, alice, alice_channel):
    order = make_order(alice_channel, "1001", lines=1)
    line = order.lines.get()
    client.force_login(alice.user)
    response = client.post(
        reverse("orders:detail", args=[order.pk]), {f"qty_{line.pk}": "5", "tracking_numbers": "X1"}
    )
    assert response.status_code == 200
    assert not Shipment.objects.exists()
    assert "2" in response.content.decode()


def test_staff_sees_raw_payload(client, alice, alice_channel):
    order = make_order(alice_channel, "1001")
    alice.user.is_staff = True
    alice.user.save()
    client.force_login(alice.user)
    assert "raw payload" in client.get(reverse("orders:detail", args=[order.pk])).content.decode()


def test_failed_shipment_can_be_retried(
    client, alice, alice_channel, sent, django_capture_on_commit_callbacks
):
    order = make_order(alice_channel, "1001")
    shipment = Shipment.objects.create(
        account=alice.account,
        order=order,
        channel=alice_channel,
        tracking_numbers=["Z1"],
        lines=[{"external_line_id": "1001-0", "quantity": 1}],
        state=ShipmentState.FAILED,
        attempts=8,
        last_error="The store refused the status.",
    )
    client.force_login(alice.user)
    page = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert "The store refused the status." in page
    assert "Retry" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("orders:shipment_retry", args=[shipment.pk]))
    assert response.status_code == 302
    shipment.refresh_from_db()
    assert shipment.state == ShipmentState.PENDING
    assert shipment.attempts == 0
    assert sent == [(str(alice_channel.pk), "shipments")]


def test_sync_now_button(client, alice, alice_channel, sent, django_capture_on_commit_callbacks):
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("channels:sync_now", args=[alice_channel.pk]))
    assert response.status_code == 302
    assert {"orders", "shipments"} <= {job for _, job in sent}
    alice_channel.connection_state = ConnectionState.NEEDS_REAUTH
    alice_channel.save()
    sent.clear()
    client.post(reverse("channels:sync_now", args=[alice_channel.pk]))
    assert sent == []


def test_other_accounts_rows_are_404(client, alice, bob, bob_channel, alice_channel):
    bob_order = make_order(bob_channel, "9009")
    bob_shipment = Shipment.objects.create(
        account=bob.account,
        order=bob_order,
        channel=bob_channel,
        tracking_numbers=["B"],
        lines=[],
        state=ShipmentState.FAILED,
    )
    client.force_login(alice.user)
    assert client.get(reverse("orders:detail", args=[bob_order.pk])).status_code == 404
    assert (
        client.post(reverse("orders:detail", args=[bob_order.pk]), {"tracking_numbers": "X"}).status_code
        == 404
    )
    assert client.post(reverse("orders:shipment_retry", args=[bob_shipment.pk])).status_code == 404
    assert client.post(reverse("channels:sync_now", args=[bob_channel.pk])).status_code == 404
    assert client.get(reverse("orders:detail", args=[uuid.uuid4()])).status_code == 404
    bob_shipment.refresh_from_db()
    assert bob_shipment.state == ShipmentState.FAILED
    assert not Shipment.objects.filter(order=bob_order).exclude(pk=bob_shipment.pk).exists()


def test_login_required(client, alice_channel):
    order = make_order(alice_channel, "1001")
    response = client.get(reverse("orders:detail", args=[order.pk]))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_reauth_banner_context(rf, alice, alice_channel):
    from channels.context_processors import reauth_banner

    request = rf.get("/")
    request.user = alice.user
    assert reauth_banner(request)["channels_needing_reauth"] == []
    alice_channel.connection_state = ConnectionState.NEEDS_REAUTH
    alice_channel.save()
    assert [c.pk for c in reauth_banner(request)["channels_needing_reauth"]] == [alice_channel.pk]
    from django.template.loader import render_to_string

    html = render_to_string("includes/reauth_banner.html", reauth_banner(request))
    assert reverse("channels:reauthorise", args=[alice_channel.pk]) in html

    # a member sees the banner too, but is sent to an admin rather than to a form they may not use
    member_request = rf.get("/")
    member_request.user = alice.member()
    member_html = render_to_string("includes/reauth_banner.html", reauth_banner(member_request))
    assert alice_channel.name in member_html
    assert reverse("channels:reauthorise", args=[alice_channel.pk]) not in member_html
    assert "Ask an owner or admin" in member_html
