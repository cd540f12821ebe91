"""REST API: orders (cursor pagination, updated_since, filters), shipments (single, bulk,
Idempotency-Key, retry), "sync now"; another account's ids answer 404."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import ConnectionState
from orders.models import Order, Shipment, ShipmentState
from tests.conftest import api_client_with_key
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


@pytest.fixture
def bob_api(bob):
    return api_client_with_key(bob.account)


def test_orders_list_cursor_pages_and_updated_since(alice_api, alice_channel, bob_channel):
    for number in range(7):
        make_order(alice_channel, str(100 + number), lines=1)
    make_order(bob_channel, "999")
    old = timezone.now() - timedelta(days=3)
    Order.objects.filter(external_id__in=["100", "101"]).update(updated_at=old)
    seen: list[str] = []
    url = "/api/v1/orders/?page_size=3"
    while url:
        body = alice_api.get(url).json()
        seen += [order["external_id"] for order in body["results"]]
        url = body["next"]
    assert sorted(seen) == [str(100 + n) for n in range(7)]
    assert seen[:2] == ["100", "101"] or set(seen[:2]) == {"100", "101"}  # ordered by last change
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = alice_api.get("/api/v1/orders/", {"updated_since": since}).json()["results"]
    assert {order["external_id"] for order in recent} == {str(100 + n) for n in range(2, 7)}
    assert alice_api.get("/api/v1/orders/", {"updated_since": "yesterday"}).status_code == 400
    first = recent[0]
    assert first["lines"][0]["sku"] == "SKU-0"
    assert "raw" not in first


def test_orders_filters_and_detail(alice_api, alice_channel):
    order = make_order(alice_channel, "1", status_code="5", unknown_sku=True)
    make_order(alice_channel, "2")
    assert [
        o["external_id"] for o in alice_api.get("/api/v1/orders/", {"status": "5"}).json()["results"]
    ] == ["1"]
    flagged = alice_api.get("/api/v1/orders/", {"flag": "unknown_sku"}).json()["results"]
    assert [o["external_id"] for o in flagged] == ["1"]
    by_channel = alice_api.get("/api/v1/orders/", {"channel": str(alice_channel.pk)}).json()["results"]
    assert len(by_channel) == 2
    assert alice_api.get("/api/v1/orders/", {"channel": "nope"}).status_code == 400
    detail = alice_api.get(f"/api/v1/orders/{order.pk}/").json()
    assert detail["flags"] == ["unknown_sku"]
    assert detail["shipments"] == []
    assert detail["total"] == "45.00"


def test_amounts_keep_the_currency_decimals_the_store_sent(alice_api, alice_channel, alice):
    from decimal import Decimal

    from orders.models import Order

    dinar = make_order(
        alice_channel, "KW1", lines=1, currency="KWD", subtotal=Decimal("20.125"), total=Decimal("25.375")
    )
    yen = make_order(
        alice_channel, "JP1", lines=1, currency="JPY", subtotal=Decimal("2000"), total=Decimal("2500")
    )
    assert Order.objects.get(pk=dinar.pk).total == Decimal("25.375")  # stored, not rounded to 25.38
    shown = alice_api.get(f"/api/v1/orders/{dinar.pk}/").json()
    assert (shown["subtotal"], shown["total"], shown["lines"][0]["unit_price"]) == (
        "20.125",
        "25.375",
        "10.000",
    )
    assert alice_api.get(f"/api/v1/orders/{yen.pk}/").json()["total"] == "2500"

    from django.test import Client

    page = Client()
    page.force_login(alice.user)
    html = page.get(f"/orders/{dinar.pk}/").content.decode()
    assert "25.375 KWD" in html


def test_cross_account_ids_are_404(alice_api, bob, bob_channel, sent):
    bob_order = make_order(bob_channel, "9")
    bob_shipment = Shipment.objects.create(
        account=bob.account, order=bob_order, channel=bob_channel, tracking_numbers=["B"], state="failed"
    )
    assert alice_api.get(f"/api/v1/orders/{bob_order.pk}/").status_code == 404
    assert alice_api.get(f"/api/v1/shipments/{bob_shipment.pk}/").status_code == 404
    assert alice_api.post(f"/api/v1/shipments/{bob_shipment.pk}/retry").status_code == 404
    assert alice_api.post(f"/api/v1/channels/{bob_channel.pk}/sync", {}, format="json").status_code == 404
    assert alice_api.get(f"/api/v1/orders/{uuid.uuid4()}/").status_code == 404
    assert alice_api.get("/api/v1/orders/not-a-uuid/").status_code == 404
    # an order of another account in a body is "no such order", and nothing is created
    response = alice_api.post(
        "/api/v1/shipments/", {"order": str(bob_order.pk), "tracking_numbers": ["X"]}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["message"] == "No such order in your account."
    assert Shipment.objects.count() == 1
    assert sent == []


def test_create_shipment_with_idempotency_key(
    alice_api, alice_channel, sent, django_capture_on_commit_callbacks
):
    order = make_order(alice_channel, "1")
    body = {
        "order": str(order.pk),
        "carrier": "UPS",
        "tracking_numbers": ["1Z1", "1Z2"],
        "lines": [{"external_line_id": "1-0", "quantity": 2}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = alice_api.post("/api/v1/shipments/", body, format="json", HTTP_IDEMPOTENCY_KEY="wms-77")
    assert first.status_code == 201
    data = first.json()
    assert data["state"] == "pending"
    assert data["is_partial"] is True
    assert data["idempotency_key"] == "wms-77"
    again = alice_api.post("/api/v1/shipments/", body, format="json", HTTP_IDEMPOTENCY_KEY="wms-77")
    assert again.status_code == 200
    assert again.json()["id"] == data["id"]
    assert Shipment.objects.count() == 1
    assert sent == [(str(alice_channel.pk), "shipments")]
    listed = alice_api.get("/api/v1/shipments/", {"order": str(order.pk)}).json()["results"]
    assert [s["id"] for s in listed] == [data["id"]]
    too_many = alice_api.post(
        "/api/v1/shipments/",
        {**body, "lines": [{"external_line_id": "1-0", "quantity": 1}]},
        format="json",
    )
    assert too_many.status_code == 400
    assert "lines" in too_many.json()["errors"]


def test_bulk_shipments_report_per_item(alice_api, alice_channel):
    orders = [make_order(alice_channel, str(n)) for n in range(3)]
    items = [
        {"order": str(orders[0].pk), "tracking_numbers": ["A"]},
        {"order": str(orders[1].pk), "tracking_numbers": []},
        {"order": str(orders[2].pk), "tracking_numbers": ["C"], "idempotency_key": "own"},
    ]
    response = alice_api.post("/api/v1/shipments/", items, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["created"] for r in results] == [True, False, True]
    assert "tracking_numbers" in results[1]["errors"]
    assert results[0]["shipment"]["idempotency_key"] == "batch-1:0"
    assert results[2]["shipment"]["idempotency_key"] == "own"
    replay = alice_api.post("/api/v1/shipments/", items, format="json", HTTP_IDEMPOTENCY_KEY="batch-1").json()
    assert [r["created"] for r in replay["results"]] == [False, False, False]
    assert Shipment.objects.count() == 2
    assert alice_api.post("/api/v1/shipments/", [], format="json").status_code == 400


def test_retry_failed_shipment(alice_api, alice, alice_channel, sent):
    order = make_order(alice_channel, "1")
    shipment = Shipment.objects.create(
        account=alice.account,
        order=order,
        channel=alice_channel,
        tracking_numbers=["R"],
        lines=[{"external_line_id": "1-0", "quantity": 1}],
        state=ShipmentState.FAILED,
        last_error="nope",
    )
    response = alice_api.post(f"/api/v1/shipments/{shipment.pk}/retry")
    assert response.status_code == 200
    assert response.json()["state"] == "pending"
    Shipment.objects.filter(pk=shipment.pk).update(state=ShipmentState.CONFIRMED)
    assert alice_api.post(f"/api/v1/shipments/{shipment.pk}/retry").status_code == 400


def test_sync_now_api(alice_api, alice_channel, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(
            f"/api/v1/channels/{alice_channel.pk}/sync", {"jobs": ["orders"]}, format="json"
        )
    assert response.status_code == 202
    assert response.json() == {"channel": str(alice_channel.pk), "jobs": ["orders"]}
    assert sent == [(str(alice_channel.pk), "orders")]
    assert (
        alice_api.post(
            f"/api/v1/channels/{alice_channel.pk}/sync", {"jobs": ["coffee"]}, format="json"
        ).status_code
        == 400
    )
    alice_channel.connection_state = ConnectionState.NEEDS_REAUTH
    alice_channel.save()
    refused = alice_api.post(f"/api/v1/channels/{alice_channel.pk}/sync", format="json")
    assert refused.status_code == 409
    assert "reauthoris" in refused.json()["message"]


def test_api_requires_authentication(client, alice_channel):
    assert client.get("/api/v1/orders/").status_code in (401, 403)
    assert client.post("/api/v1/shipments/", {}, content_type="application/json").status_code in (401, 403)


def test_sync_runs_api(alice_api, alice, bob, alice_channel, bob_channel):
    from channels.models import SyncRun

    mine = SyncRun.objects.create(
        account=alice.account,
        channel=alice_channel,
        job="orders",
        state="failed",
        error="The store timed out.",
    )
    theirs = SyncRun.objects.create(account=bob.account, channel=bob_channel, job="orders", state="succeeded")
    runs = alice_api.get("/api/v1/sync-runs/", {"channel": str(alice_channel.pk)}).json()["results"]
    assert [r["id"] for r in runs] == [str(mine.pk)]
    assert runs[0]["error"] == "The store timed out."
    assert alice_api.get("/api/v1/sync-runs/", {"state": "succeeded"}).json()["results"] == []
    assert alice_api.get(f"/api/v1/sync-runs/{theirs.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/orders/?status=paid%00", "status"),
        ("/api/v1/orders/?updated_since=2024-13-45T00:00:00", "updated_since"),
        ("/api/v1/shipments/?state=%00", "state"),
        ("/api/v1/shipments/?state=shipped", "state"),
        ("/api/v1/sync-runs/?job=orders%00", "job"),
        ("/api/v1/sync-runs/?job=everything", "job"),
        ("/api/v1/sync-runs/?state=done", "state"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_field(alice_api, alice_channel, url, field):
    """NUL characters reach PostgreSQL as an error (a 500) and impossible dates raise in the
    parser; both must be the API's JSON field error instead."""
    make_order(alice_channel, "1")
    alice_api.raise_request_exception = False
    response = alice_api.get(url)
    assert response.status_code == 400, response.content[:200]
    assert field in response.json()["errors"]
    assert response.json()["message"]
