"""Seller UI for products and listings: pages render the right rows, edits go through the
services, HTMX gets a row back, plain browsers a redirect, and another account's ids are 404."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from channels.models import SyncJob, SyncRun
from inventory.models import InventoryEvent, Listing, Product
from tests.factories import SalesChannelFactory, channel_listing_elsewhere

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_browser(alice: Any) -> Client:
    client = Client()
    client.force_login(alice.user)
    return client


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job)))
    )
    return jobs


def test_products_list_searches_and_pages(alice: Any, bob: Any, alice_browser: Client) -> None:
    for n in range(55):
        Product.objects.create(
            account=alice.account, sku=f"SKU-{n:03d}", name="Mug" if n == 7 else "", on_hand=n
        )
    Product.objects.create(account=bob.account, sku="BOB-SECRET", on_hand=1)

    page = alice_browser.get(reverse("inventory:product_list"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "SKU-000" in body
    assert "SKU-054" not in body  # page 2
    assert "BOB-SECRET" not in body
    assert "Page 1 of 2" in body
    found = alice_browser.get(reverse("inventory:product_list"), {"q": "mug"}).content.decode()
    assert 'data-sku="SKU-007"' in found
    assert 'data-sku="SKU-008"' not in found


def test_inline_edit_with_htmx_returns_the_row_and_requests_a_push(
    alice: Any, alice_browser: Client, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    channel = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    channel_listing_elsewhere(alice.account)
    product = Product.objects.create(account=alice.account, sku="MUG", on_hand=3, price=Decimal("5"))
    Listing.objects.create(account=alice.account, channel=channel, product=product, sku="MUG", remote_id="1")
    url = reverse("inventory:product_inline", args=[product.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_browser.post(
            url, {f"p-{product.pk}-on_hand": "12", f"p-{product.pk}-price": "6.50"}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(f'<tr id="product-{product.pk}"')
    assert 'value="12"' in body
    assert "Saved" in body
    assert 'data-announce="MUG saved: on hand 12."' in body  # read out by the page's aria-live region
    product.refresh_from_db()
    assert (product.on_hand, product.price) == (12, Decimal("6.5"))
    assert sorted(sent) == sorted([(str(channel.pk), SyncJob.STOCK), (str(channel.pk), SyncJob.PRICES)])

    bad = alice_browser.post(url, {f"p-{product.pk}-on_hand": "-1"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200  # htmx swaps only 2xx answers: the row carries the error
    assert 'role="alert"' in bad.content.decode()
    assert "Saved" not in bad.content.decode()
    assert 'data-announce="MUG not saved: ' in bad.content.decode()
    product.refresh_from_db()
    assert product.on_hand == 12


def test_inline_edit_without_javascript_redirects_back(alice: Any, alice_browser: Client) -> None:
    product = Product.objects.create(account=alice.account, sku="CAP", on_hand=1)
    back = reverse("inventory:product_list") + "?q=cap"
    response = alice_browser.post(
        reverse("inventory:product_inline", args=[product.pk]),
        {f"p-{product.pk}-on_hand": "4", f"p-{product.pk}-price": "", "next": back},
    )
    assert response.status_code == 302
    assert response["Location"] == back
    product.refresh_from_db()
    assert (product.on_hand, product.price) == (4, None)
    evil = alice_browser.post(
        reverse("inventory:product_inline", args=[product.pk]),
        {f"p-{product.pk}-on_hand": "5", "next": "https://evil.example.com/"},
    )
    assert evil["Location"] == reverse("inventory:product_list")


def test_create_and_edit_a_product_on_its_page(alice: Any, alice_browser: Client) -> None:
    created = alice_browser.post(
        reverse("inventory:product_create"),
        {"sku": "LAMP", "name": "Desk lamp", "on_hand": "8", "price": "20", "tax_rate": "19"},
    )
    product = Product.objects.get(account=alice.account, sku="LAMP")
    assert created["Location"] == reverse("inventory:product_detail", args=[product.pk])
    duplicate = alice_browser.post(reverse("inventory:product_create"), {"sku": "LAMP", "on_hand": "1"})
    assert duplicate.status_code == 200
    assert "already have a product with this SKU" in duplicate.content.decode()

    channel = SalesChannelFactory(
        account=alice.account, name="Main shop", settings={"use_store_tax_settings": False, "currency": "EUR"}
    )
    Listing.objects.create(
        account=alice.account,
        channel=channel,
        product=product,
        sku="LAMP",
        remote_id="41",
        store_quantity=2,
        last_pushed_quantity=8,
        last_error="Store said no",
    )
    page = alice_browser.get(reverse("inventory:product_detail", args=[product.pk])).content.decode()
    assert "Main shop" in page
    assert "Store said no" in page
    assert "23.80" in page  # 20 net + 19 %: this store is not left to add its own tax

    renamed = alice_browser.post(
        reverse("inventory:product_detail", args=[product.pk]),
        {"sku": "LAMP-2", "name": "Desk lamp", "on_hand": "9", "price": "20", "tax_rate": "19"},
    )
    assert renamed.status_code == 302
    product.refresh_from_db()
    assert (product.sku, product.on_hand) == ("LAMP-2", 9)
    # Renaming the SKU un-matches the old listing: it no longer belongs to this product.
    assert Listing.objects.get(sku="LAMP").product is None
    assert InventoryEvent.objects.filter(account=alice.account, action="product.renamed").exists()


def test_listing_overrides_form(alice: Any, alice_browser: Client) -> None:
    channel = SalesChannelFactory(account=alice.account)
    product = Product.objects.create(account=alice.account, sku="MUG", on_hand=10)
    listing = Listing.objects.create(
        account=alice.account, channel=channel, product=product, sku="MUG", remote_id="1"
    )
    prefix = f"l-{listing.pk}"
    response = alice_browser.post(
        reverse("inventory:listing_update", args=[listing.pk]),
        {
            f"{prefix}-buffer": "2",
            f"{prefix}-max_quantity": "",
            f"{prefix}-price_multiplier": "1.2",
            f"{prefix}-price_offset": "0.5",
        },
    )
    assert response["Location"] == reverse("inventory:product_detail", args=[product.pk])
    listing.refresh_from_db()
    assert (listing.buffer, listing.max_quantity, listing.price_multiplier, listing.price_offset) == (
        2,
        None,
        Decimal("1.2"),
        Decimal("0.5"),
    )


def test_unmatched_page_shows_both_sides_and_push_now(
    alice: Any, alice_browser: Client, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    channel = SalesChannelFactory(account=alice.account, name="Main shop", settings={"stock_sync": True})
    matched = Product.objects.create(account=alice.account, sku="BOTH", on_hand=1)
    Product.objects.create(account=alice.account, sku="MASTER-ONLY", on_hand=1)
    Listing.objects.create(account=alice.account, channel=channel, product=matched, sku="BOTH", remote_id="1")
    Listing.objects.create(account=alice.account, channel=channel, sku="STORE-ONLY", remote_id="2")

    SyncRun.objects.create(
        account=alice.account,
        channel=channel,
        job=SyncJob.STOCK,
        state="failed",
        updated=3,
        failed=2,
        error="Store down",
    )
    body = alice_browser.get(reverse("inventory:unmatched")).content.decode()
    assert "Last stock push" in body
    assert "3 sent, 2 failed — Store down" in body
    store_side = body.split('class="store-only"')[1].split("</ul>")[0]
    master_side = body.split('class="master-only"')[1].split("</ul>")[0]
    assert "STORE-ONLY" in store_side
    assert "BOTH" not in store_side
    assert "MASTER-ONLY" in master_side
    assert "BOTH" not in master_side

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_browser.post(reverse("inventory:push_now", args=[channel.pk]))
    assert response.status_code == 302
    assert sent == [(str(channel.pk), SyncJob.STOCK)]


def test_other_accounts_rows_are_404_everywhere(bob: Any, alice_browser: Client) -> None:
    channel = SalesChannelFactory(account=bob.account)
    product = Product.objects.create(account=bob.account, sku="BOB", on_hand=1)
    listing = Listing.objects.create(
        account=bob.account, channel=channel, product=product, sku="BOB", remote_id="1"
    )
    assert alice_browser.get(reverse("inventory:product_detail", args=[product.pk])).status_code == 404
    assert (
        alice_browser.post(
            reverse("inventory:product_detail", args=[product.pk]), {"sku": "X", "on_hand": "1"}
        ).status_code
        == 404
    )
    assert alice_browser.post(reverse("inventory:product_inline", args=[product.pk]), {}).status_code == 404
    assert alice_browser.post(reverse("inventory:product_delete", args=[product.pk])).status_code == 404
    assert alice_browser.post(reverse("inventory:listing_update", args=[listing.pk]), {}).status_code == 404
    assert alice_browser.post(reverse("inventory:push_now", args=[channel.pk])).status_code == 404
    product.refresh_from_db()
    assert product.on_hand == 1
    assert Product.objects.filter(pk=product.pk).exists()
    assert "BOB" not in alice_browser.get(reverse("inventory:unmatched")).content.decode()


def test_pages_need_a_login() -> None:
    response = Client().get(reverse("inventory:product_list"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_store_items_can_start_the_product_master(alice: Any, bob: Any, alice_browser: Client) -> None:
    channel = SalesChannelFactory(account=alice.account)
    existing = Product.objects.create(account=alice.account, sku="KNOWN", on_hand=99)
    Listing.objects.create(
        account=alice.account, channel=channel, product=existing, sku="KNOWN", remote_id="1", store_quantity=3
    )
    Listing.objects.create(
        account=alice.account,
        channel=channel,
        sku="NEW-1",
        name="New one",
        remote_id="2",
        store_quantity=4,
        store_price=Decimal("9.5"),
    )
    Listing.objects.create(
        account=alice.account, channel=channel, sku="NEW-2", remote_id="3", store_quantity=None
    )
    response = alice_browser.post(reverse("inventory:import_listings", args=[channel.pk]))
    assert response.status_code == 302
    created = {p.sku: p for p in Product.objects.filter(account=alice.account)}
    assert set(created) == {"KNOWN", "NEW-1", "NEW-2"}
    assert (created["NEW-1"].on_hand, created["NEW-1"].price, created["NEW-1"].name) == (
        4,
        Decimal("9.5"),
        "New one",
    )
    assert (created["NEW-2"].on_hand, created["NEW-2"].price) == (0, None)
    assert created["KNOWN"].on_hand == 99  # untouched
    assert Listing.objects.get(sku="NEW-1").product == created["NEW-1"]  # matched at once
    bobs = SalesChannelFactory(account=bob.account)
    assert alice_browser.post(reverse("inventory:import_listings", args=[bobs.pk])).status_code == 404
