"""REST API for products and listings: bulk upsert at size, validation, tenancy, jobs on commit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from channels.models import SyncJob
from inventory.catalog import upsert_products
from inventory.models import InventoryEvent, Listing, Product
from inventory.stock_queue import reservations_changed
from tests.factories import SalesChannelFactory, channel_listing_elsewhere

pytestmark = pytest.mark.django_db

BULK_URL = "/api/v1/products/bulk"


def _items(count: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"sku": f"SKU-{n:05d}", "name": f"Product {n}", "on_hand": n % 50, "price": f"{n % 997}.25", **extra}
        for n in range(start, start + count)
    ]


def _queries_for(client: APIClient, items: list[dict[str, Any]]) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(BULK_URL, items, format="json")
    return len(captured.captured_queries), response


def test_bulk_upsert_of_10000_items_in_one_call_with_a_constant_number_of_queries(
    alice: Any, alice_api: APIClient
) -> None:
    alice_api.post(BULK_URL, _items(1, start=80_000), format="json")  # the key's first use is recorded once
    small_queries, small = _queries_for(alice_api, _items(10, start=90_000))
    assert small.status_code == 200, small.json()

    queries, response = _queries_for(alice_api, _items(10_000))

    assert response.status_code == 200, response.json()
    assert response.json() == {"created": 10_000, "updated": 0, "unchanged": 0}
    assert Product.objects.filter(account=alice.account).count() == 10_011
    assert small_queries <= 12
    # SQLite (the demo database) caps the parameters of one statement, so Django splits the bulk
    # insert there; on PostgreSQL the count must not grow with the number of items at all.
    extra = 0 if connection.vendor == "postgresql" else 10_000 // 100 + 20
    assert queries <= small_queries + extra, "the number of queries must not grow with the number of items"
    product = Product.objects.get(account=alice.account, sku="SKU-01234")
    assert (product.on_hand, product.price, product.name) == (1234 % 50, Decimal("237.25"), "Product 1234")

    # The same 10,000 again with 100 changed: still one call, the same queries, only those updated.
    again = _items(10_000)
    for item in again[:100]:
        item["on_hand"] = 999
    queries, response = _queries_for(alice_api, again)
    assert response.json() == {"created": 0, "updated": 100, "unchanged": 9_900}
    assert queries <= small_queries + extra
    assert Product.objects.filter(account=alice.account, on_hand=999).count() == 100


def test_an_invalid_item_saves_nothing_and_every_error_is_reported_by_position(
    alice: Any, alice_api: APIClient
) -> None:
    Product.objects.create(account=alice.account, sku="KEEP", on_hand=5)
    items = [
        *_items(3),
        {"sku": "", "on_hand": 1},
        {"sku": "NEG", "on_hand": -2},
        {"sku": "PRICE", "on_hand": 1, "price": "abc"},
        {"sku": "SKU-00001", "on_hand": 4},  # repeated in the same request
        {"sku": "NEW-WITHOUT-QTY", "price": "1.00"},
        {"sku": "KEEP", "on_hand": 6, "colour": "red"},
        "not an object",
    ]
    response = alice_api.post(BULK_URL, items, format="json")

    assert response.status_code == 400
    body = response.json()
    assert "nothing was saved" in body["message"]
    by_index = {error["index"]: error for error in body["errors"]}
    assert set(by_index) == {3, 4, 5, 6, 8, 9}
    assert "sku" in by_index[3]["errors"]
    assert by_index[4]["errors"]["on_hand"] == ["On hand cannot be negative."]
    assert "price" in by_index[5]["errors"]
    assert "item 1" in by_index[6]["errors"]["sku"][0]
    assert "non_field_errors" in by_index[8]["errors"]
    assert by_index[9]["sku"] == ""
    assert list(Product.objects.filter(account=alice.account).values_list("sku", "on_hand")) == [("KEEP", 5)]

    # A new SKU without a quantity is refused (it would zero the stores), nothing else saved either:
    # the request is well formed, what is stored refuses it (409, documented).
    response = alice_api.post(BULK_URL, [*_items(2), {"sku": "NEW", "price": "1.00"}], format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "unknown_sku"
    assert "nothing was saved" in response.json()["message"]
    assert response.json()["errors"] == [
        {"index": 2, "sku": "NEW", "errors": {"on_hand": ["A new product needs its quantity on hand."]}}
    ]
    assert Product.objects.filter(account=alice.account).count() == 1


def test_bulk_limits_and_shapes(alice_api: APIClient) -> None:
    too_many = alice_api.post(BULK_URL, _items(10_001), format="json")
    assert too_many.status_code == 400
    assert "at most 10000" in too_many.json()["message"]
    assert alice_api.post(BULK_URL, {"sku": "X"}, format="json").status_code == 400
    wrapped = alice_api.post(BULK_URL, {"items": _items(2)}, format="json")
    assert wrapped.json() == {"created": 2, "updated": 0, "unchanged": 0}
    partial = alice_api.post(BULK_URL, [{"sku": "SKU-00000", "on_hand": 77}], format="json")
    assert partial.json() == {"created": 0, "updated": 1, "unchanged": 0}
    product = Product.objects.get(sku="SKU-00000")
    assert (product.on_hand, product.price) == (77, Decimal("0.25"))  # price kept


def test_product_change_requests_jobs_on_commit_for_channels_that_list_it(
    alice: Any,
    bob: Any,
    alice_api: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Jobs only where something moved: the channels that list a changed SKU and sync what changed,
    one job each, sent after commit; a channel that does not list it, a paused channel and another
    tenant's channel with the same SKU get nothing."""
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: sent.append((str(channel_id), str(job)))
    )
    both = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    stock_only = SalesChannelFactory(
        account=alice.account, settings={"stock_sync": True, "price_sync": False}
    )
    paused = SalesChannelFactory(account=alice.account, enabled=False)
    channel_listing_elsewhere(alice.account)
    theirs = SalesChannelFactory(account=bob.account, settings={"stock_sync": True, "price_sync": True})
    for account, channel, sku in [
        (alice.account, both, "SKU-00000"),
        (alice.account, both, "SKU-00001"),
        (alice.account, stock_only, "SKU-00001"),
        (alice.account, paused, "SKU-00000"),
        (bob.account, theirs, "SKU-00000"),
    ]:
        # Waiting on the stores before the products exist: creating them links these listings.
        Listing.objects.create(account=account, channel=channel, sku=sku, remote_id=f"{channel.pk}-{sku}")

    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(BULK_URL, _items(3), format="json")
        assert sent == [], "nothing may be enqueued before the transaction commits"
    assert sorted(sent) == sorted(
        [(str(both.pk), SyncJob.STOCK), (str(both.pk), SyncJob.PRICES), (str(stock_only.pk), SyncJob.STOCK)]
    )

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(BULK_URL, [{"sku": "SKU-00000", "price": "5.00"}], format="json")
    assert sent == [(str(both.pk), SyncJob.PRICES)]

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(BULK_URL, [{"sku": "SKU-00001", "on_hand": 40}], format="json")
    assert sorted(sent) == sorted([(str(both.pk), SyncJob.STOCK), (str(stock_only.pk), SyncJob.STOCK)])

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(BULK_URL, [{"sku": "SKU-00002", "on_hand": 9, "price": "1.00"}], format="json")
    assert sent == [], "a product no channel lists asks for no job"

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(BULK_URL, [{"sku": "SKU-00000", "price": "5.00"}], format="json")  # unchanged
    assert sent == []
    assert InventoryEvent.objects.filter(account=alice.account, action="products.upserted").count() == 4


def test_products_list_retrieve_and_filters(alice: Any, alice_api: APIClient) -> None:
    alice_api.post(BULK_URL, [*_items(5), {"sku": "MUG-RED", "name": "Red mug", "on_hand": 3}], format="json")
    listed = alice_api.get("/api/v1/products/", {"page_size": 4})
    assert listed.status_code == 200
    first = listed.json()
    assert [row["sku"] for row in first["results"]] == ["MUG-RED", "SKU-00000", "SKU-00001", "SKU-00002"]
    rest = alice_api.get(first["next"]).json()
    assert [row["sku"] for row in rest["results"]] == ["SKU-00003", "SKU-00004"]
    found = alice_api.get("/api/v1/products/", {"search": "red mug"}).json()["results"]
    assert [row["sku"] for row in found] == ["MUG-RED"]
    product = Product.objects.get(sku="MUG-RED")
    one = alice_api.get(f"/api/v1/products/{product.pk}/").json()
    assert one == {
        "id": str(product.pk),
        "sku": "MUG-RED",
        "name": "Red mug",
        "on_hand": 3,
        "price": None,
        "tax_rate": "0.000",
        "created_at": one["created_at"],
        "updated_at": one["updated_at"],
    }
    assert alice_api.get("/api/v1/products/", {"updated_since": "yesterday"}).status_code == 400


def test_other_accounts_products_and_listings_answer_404(alice: Any, bob: Any, alice_api: APIClient) -> None:
    bobs_product = Product.objects.create(account=bob.account, sku="BOB-1", on_hand=1)
    bobs_channel = SalesChannelFactory(account=bob.account)
    bobs_listing = Listing.objects.create(
        account=bob.account, channel=bobs_channel, product=bobs_product, sku="BOB-1", remote_id="1"
    )
    assert alice_api.get(f"/api/v1/products/{bobs_product.pk}/").status_code == 404
    assert alice_api.get(f"/api/v1/listings/{bobs_listing.pk}/").status_code == 404
    assert (
        alice_api.patch(f"/api/v1/listings/{bobs_listing.pk}/", {"buffer": 5}, format="json").status_code
        == 404
    )
    assert alice_api.get("/api/v1/listings/", {"channel": str(bobs_channel.pk)}).status_code == 404
    assert (
        alice_api.post("/api/v1/listings/push", {"channel": str(bobs_channel.pk)}, format="json").status_code
        == 404
    )
    assert alice_api.get("/api/v1/products/").json()["results"] == []
    assert alice_api.get("/api/v1/listings/").json()["results"] == []
    # Alice's bulk upsert of the same SKU creates her own product; Bob's is untouched.
    alice_api.post(BULK_URL, [{"sku": "BOB-1", "on_hand": 50}], format="json")
    bobs_product.refresh_from_db()
    assert bobs_product.on_hand == 1
    bobs_listing.refresh_from_db()
    assert bobs_listing.buffer == 0
    assert APIClient().get("/api/v1/products/").status_code in (401, 403)


def test_listings_filters_availability_and_overrides(
    alice: Any, alice_api: APIClient, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: sent.append((str(channel_id), str(job)))
    )
    channel = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    other = SalesChannelFactory(account=alice.account)
    mug = Product.objects.create(account=alice.account, sku="MUG", on_hand=10)
    Listing.objects.create(
        account=alice.account, channel=channel, product=mug, sku="MUG", remote_id="1", buffer=3
    )
    Listing.objects.create(account=alice.account, channel=channel, sku="STORE-ONLY", remote_id="2")
    Listing.objects.create(account=alice.account, channel=other, product=mug, sku="MUG", remote_id="9")

    rows = alice_api.get("/api/v1/listings/", {"channel": str(channel.pk)}).json()["results"]
    assert [(row["sku"], row["available"]) for row in rows] == [("MUG", 7), ("STORE-ONLY", None)]
    unmatched = alice_api.get("/api/v1/listings/", {"unmatched": "true"}).json()["results"]
    assert [row["sku"] for row in unmatched] == ["STORE-ONLY"]
    by_sku = alice_api.get("/api/v1/listings/", {"sku": "MUG"}).json()["results"]
    assert len(by_sku) == 2

    listing = Listing.objects.get(channel=channel, sku="MUG")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.patch(
            f"/api/v1/listings/{listing.pk}/", {"buffer": 1, "max_quantity": 5}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert (response.json()["buffer"], response.json()["available"]) == (1, 5)
    assert sent == [(str(channel.pk), SyncJob.STOCK)]
    bad = alice_api.patch(f"/api/v1/listings/{listing.pk}/", {"buffer": -1}, format="json")
    assert bad.status_code == 400

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        pushed = alice_api.post("/api/v1/listings/push", {"channel": str(channel.pk)}, format="json")
    assert pushed.status_code == 202
    assert sorted(job for _, job in sent) == [SyncJob.PRICES, SyncJob.STOCK]
    assert not Listing.objects.filter(channel=channel, seen_at__isnull=False).exists()  # re-read first


def test_members_can_change_products_through_the_service(alice: Any) -> None:
    member = alice.member()
    result = upsert_products(alice.account, [{"sku": "A", "on_hand": 1}], actor=member)
    assert result.created == 1
    event = InventoryEvent.objects.get(account=alice.account)
    assert event.actor == member
    assert event.detail["created"] == 1


def test_orders_changing_reservations_request_stock_jobs_only(
    alice: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: sent.append((str(channel_id), str(job)))
    )
    channel = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    other = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    channel_listing_elsewhere(alice.account)
    mug = Product.objects.create(account=alice.account, sku="MUG", on_hand=5)
    cap = Product.objects.create(account=alice.account, sku="CAP", on_hand=5)
    for listed_on, product in [(channel, mug), (channel, cap), (other, cap)]:
        Listing.objects.create(
            account=alice.account, channel=listed_on, product=product, sku=product.sku, remote_id=product.sku
        )
    with django_capture_on_commit_callbacks(execute=True):
        reservations_changed(alice.account.pk, ["MUG"])
        assert sent == []
    assert sent == [(str(channel.pk), SyncJob.STOCK)]

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reservations_changed(alice.account.pk)  # every SKU: each channel with listings, once
    assert sorted(sent) == sorted([(str(channel.pk), SyncJob.STOCK), (str(other.pk), SyncJob.STOCK)])


def test_bulk_takes_10000_items_with_long_names_beyond_djangos_form_sized_body_cap(
    alice: Any, alice_api: APIClient
) -> None:
    items = [
        {"sku": f"SKU-{n:05d}", "name": "N" * 250 + str(n % 10), "on_hand": n % 50} for n in range(10_000)
    ]
    response = alice_api.post(BULK_URL, items, format="json")  # ~3.4 MB of JSON
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == 10_000
    broken = alice_api.generic("POST", BULK_URL, b"[{", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["message"]
