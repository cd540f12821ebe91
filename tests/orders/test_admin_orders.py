"""Django admin for orders, shipments and the sync engine's bookkeeping: scoped to the staff
user's accounts like every other admin page, filters by account/platform/state, and the actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import Role, User
from channels import sync
from channels.models import JobLease
from orders.models import Shipment, ShipmentState
from tests.factories import SalesChannelFactory, member_of
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job))))
    return jobs


def staff_client(user: User) -> Client:
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["channels", "accounts", "orders"])
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_shops(alice, bob):
    mine = SalesChannelFactory(account=alice.account, name="Alice Cart", platform="opencart")
    theirs = SalesChannelFactory(account=bob.account, name="Bobs Secret Cart", platform="xcart")
    my_order = make_order(mine, "A-1")
    their_order = make_order(theirs, "B-1")
    my_shipment = Shipment.objects.create(
        account=alice.account, order=my_order, channel=mine, tracking_numbers=["1ZA"], state="failed"
    )
    their_shipment = Shipment.objects.create(
        account=bob.account, order=their_order, channel=theirs, tracking_numbers=["1ZB"], state="failed"
    )
    sync.ensure_schedules([mine, theirs])
    sync.claim_lease(mine, "orders", "run-a", 60)
    sync.claim_lease(theirs, "orders", "run-b", 60)
    return {
        "mine": mine,
        "theirs": theirs,
        "my_order": my_order,
        "their_order": their_order,
        "my_shipment": my_shipment,
        "their_shipment": their_shipment,
    }


@pytest.mark.parametrize(
    "model", ["orders/order", "orders/shipment", "channels/channelschedule", "channels/joblease"]
)
def test_staff_see_only_their_accounts_rows(alice, two_shops, model) -> None:
    client = staff_client(member_of(alice.account, Role.ADMIN))
    response = client.get(f"/admin/{model}/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    page = response.content.decode()
    # Not in the rows, and not in a filter's choices either.
    assert "Bobs Secret Cart" not in page
    assert "Alice Cart" in page


def test_staff_cannot_open_or_act_on_another_accounts_rows(alice, two_shops, sent) -> None:
    client = staff_client(member_of(alice.account, Role.ADMIN))
    their_order, their_shipment = two_shops["their_order"], two_shops["their_shipment"]
    assert client.get(f"/admin/orders/order/{their_order.pk}/change/").status_code == 302  # "does not exist"
    assert client.get(f"/admin/orders/shipment/{their_shipment.pk}/change/").status_code == 302
    assert client.get(f"/admin/orders/order/{two_shops['my_order'].pk}/change/").status_code == 200
    client.post(
        "/admin/orders/shipment/",
        {"action": "retry_failed", "_selected_action": [str(their_shipment.pk)]},
    )
    their_shipment.refresh_from_db()
    assert their_shipment.state == ShipmentState.FAILED


def test_superuser_filters_by_account_platform_and_state(alice, bob, two_shops) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser(email="ops@example.com", password="ops-password-123"))
    by_account = client.get("/admin/orders/order/", {"account__id__exact": str(bob.account.pk)})
    assert by_account.context["cl"].result_count == 1
    by_platform = client.get("/admin/orders/order/", {"channel__platform__exact": "opencart"})
    assert [o.pk for o in by_platform.context["cl"].result_list] == [two_shops["my_order"].pk]
    Shipment.objects.filter(pk=two_shops["my_shipment"].pk).update(state="confirmed")
    by_state = client.get("/admin/orders/shipment/", {"state__exact": "failed"})
    assert [s.pk for s in by_state.context["cl"].result_list] == [two_shops["their_shipment"].pk]
    assert client.get("/admin/channels/channelschedule/").context["cl"].result_count == 2
    assert JobLease.objects.count() == 2


def test_shipment_state_cannot_be_set_by_hand(alice, two_shops) -> None:
    client = staff_client(member_of(alice.account, Role.ADMIN))
    shipment = two_shops["my_shipment"]
    client.post(
        f"/admin/orders/shipment/{shipment.pk}/change/",
        {"state": "confirmed", "carrier": "UPS", "service": "", "tracking_numbers": '["1ZA"]'},
    )
    shipment.refresh_from_db()
    assert shipment.state == ShipmentState.FAILED
    assert shipment.carrier == "UPS"  # the editable fields still save


def test_retry_failed_action_queues_own_shipments(alice, two_shops, sent, django_capture_on_commit_callbacks):
    client = staff_client(member_of(alice.account, Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/orders/shipment/",
            {"action": "retry_failed", "_selected_action": [str(two_shops["my_shipment"].pk)]},
        )
    assert response.status_code == 302
    two_shops["my_shipment"].refresh_from_db()
    assert two_shops["my_shipment"].state == ShipmentState.PENDING
    assert sent == [(str(two_shops["mine"].pk), "shipments")]


def test_a_shipments_items_are_shown_by_sku_and_name(alice, two_shops) -> None:
    client = staff_client(member_of(alice.account, Role.ADMIN))
    shipment = two_shops["my_shipment"]
    shipment.lines = [{"external_line_id": "A-1-1", "quantity": 2}]
    shipment.save()
    page = client.get(f"/admin/orders/shipment/{shipment.pk}/change/").content.decode()
    assert "2 × SKU-1 Item 1" in page
    order_page = client.get(f"/admin/orders/order/{two_shops['my_order'].pk}/change/").content.decode()
    assert "2 × SKU-1 Item 1" in order_page


def test_orders_cannot_be_deleted_in_bulk(alice, two_shops) -> None:
    client = staff_client(member_of(alice.account, Role.ADMIN))
    listing = client.get("/admin/orders/order/")
    assert listing.status_code == 200
    actions = [value for value, _label in listing.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "sync_channels_now" in actions
    # nor by posting the action by hand
    order = make_order(SalesChannelFactory(account=alice.account, name="Extra"), "9901")
    client.post(
        "/admin/orders/order/",
        {"action": "delete_selected", "_selected_action": [order.pk], "post": "yes"},
    )
    assert type(order).objects.filter(pk=order.pk).exists()
