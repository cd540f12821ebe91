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


def _page_numbers(response) -> list[str]:
    return [order.number for order in response.context["orders"]]


def _link(response, rel: str) -> str | None:
    import re

    found = re.search(rf'<a href="\?([^"]*)" rel="{rel}">', response.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


def test_list_pages_follow_a_cursor_and_show_every_order_once(client, alice, alice_channel):
    """Keyset pages: 130 orders, many placed at the same second (the id breaks the tie), walked
    forwards with "Older" and back with "Newer"; no page number, no total count."""
    from orders.views import PAGE_SIZE

    same_time = timezone.now() - timedelta(hours=3)
    for number in range(130):
        placed = same_time if number % 3 == 0 else same_time - timedelta(minutes=number)
        make_order(alice_channel, str(2000 + number), lines=1, placed_at=placed)
    client.force_login(alice.user)
    url = reverse("orders:list")
    response = client.get(url, {"channel": str(alice_channel.pk)})
    pages = [_page_numbers(response)]
    assert "Page 1 of" not in response.content.decode()
    assert _link(response, "prev") is None
    while (older := _link(response, "next")) is not None:
        assert f"channel={alice_channel.pk}" in older  # the filters stay on every page
        response = client.get(f"{url}?{older}")
        pages.append(_page_numbers(response))
    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 30]
    seen = [number for page in pages for number in page]
    assert len(seen) == len(set(seen)) == 130
    expected = [o.number for o in alice_channel.orders.order_by("-placed_at", "-id")]
    assert seen == expected
    # Back from the last page, "Newer" shows the pages again in the same order.
    back = client.get(f"{url}?{_link(response, 'prev')}")
    assert _page_numbers(back) == pages[1]
    first = client.get(f"{url}?{_link(back, 'prev')}")
    assert _page_numbers(first) == pages[0]
    assert _link(first, "prev") is None


def test_list_with_a_malformed_cursor_shows_the_first_page(client, alice, alice_channel):
    make_order(alice_channel, "4001")
    client.force_login(alice.user)
    for cursor in ("not-base64!", "W10", "WyJ4IiwieSJd", "WyIyMDI2LTAxLTAxIiwieCJd", "a" * 1000):
        for name in ("after", "before"):
            response = client.get(reverse("orders:list"), {name: cursor})
            assert response.status_code == 200
            assert _page_numbers(response) == ["#4001"]


def test_list_filters_by_shipping_state(client, alice, alice_channel):
    """Not shipped / partially shipped / shipped, from Storelink's shipments (failed ones ship nothing)."""
    untouched = make_order(alice_channel, "5001")
    partial = make_order(alice_channel, "5002")
    shipped = make_order(alice_channel, "5003")
    completed_in_two = make_order(alice_channel, "5004")
    only_failed = make_order(alice_channel, "5005")

    def shipment(order, *, partial: bool, state=ShipmentState.PENDING):
        Shipment.objects.create(
            account=alice.account,
            order=order,
            channel=alice_channel,
            tracking_numbers=["T"],
            lines=[{"external_line_id": f"{order.external_id}-0", "quantity": 2}],
            is_partial=partial,
            state=state,
        )

    shipment(partial, partial=True)
    shipment(shipped, partial=False, state=ShipmentState.CONFIRMED)
    shipment(completed_in_two, partial=True, state=ShipmentState.CONFIRMED)
    shipment(completed_in_two, partial=False)
    shipment(only_failed, partial=False, state=ShipmentState.FAILED)
    client.force_login(alice.user)

    def numbers(state):
        return set(_page_numbers(client.get(reverse("orders:list"), {"shipping": state})))

    assert numbers("unshipped") == {untouched.number, only_failed.number}
    assert numbers("partial") == {partial.number}
    assert numbers("shipped") == {shipped.number, completed_in_two.number}
    assert len(numbers("")) == 5
    bad = client.get(reverse("orders:list"), {"shipping": "sideways"})
    assert bad.status_code == 200
    assert bad.context["form"].errors["shipping"]
    assert len(_page_numbers(bad)) == 5  # the invalid filter alone is dropped


def test_status_filter_takes_the_name_the_store_shows(client, alice, alice_channel):
    """ "Paid" (any case) or the code finds the order; the names of the stores' statuses are offered."""
    paid = make_order(alice_channel, "6001", status_code="2", status_name="Paid")
    make_order(alice_channel, "6002", status_code="5", status_name="Complete")
    client.force_login(alice.user)
    for value in ("Paid", "paid", "2"):
        response = client.get(reverse("orders:list"), {"status": value})
        assert _page_numbers(response) == [paid.number], value
    body = client.get(reverse("orders:list")).content.decode()
    assert 'list="status-names"' in body
    assert '<option value="Processing">' in body  # from the channel's store facts


def test_list_search_finds_number_name_and_email_parts(client, alice, alice_channel):
    make_order(alice_channel, "7001", customer_name="Zoë Quantum", customer_email="zq@example.org")
    make_order(alice_channel, "7002", customer_name="Carla Customer", customer_email="carla@shop.test")
    client.force_login(alice.user)
    for term, expected in (("7001", ["#7001"]), ("quant", ["#7001"]), ("SHOP.TE", ["#7002"]), ("100_%", [])):
        assert _page_numbers(client.get(reverse("orders:list"), {"q": term})) == expected, term
    assert client.get(reverse("orders:list"), {"q": "a\x00b"}).status_code == 400  # refused, not a 500


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
