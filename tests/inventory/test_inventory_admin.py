"""Django admin for products and listings: scoped to the staff user's accounts, and edits go
through the services (audit row, pushes requested after commit) like the UI and the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import Role, User
from channels.models import SyncJob
from inventory.models import InventoryEvent, Listing, Product
from tests.factories import SalesChannelFactory, channel_listing_elsewhere, member_of

pytestmark = pytest.mark.django_db


def staff_client(user: User) -> Client:
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="inventory"))
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_only_their_accounts_products_and_listings(alice: Any, bob: Any) -> None:
    mine = Product.objects.create(account=alice.account, sku="ALICE-MUG", on_hand=1)
    theirs = Product.objects.create(account=bob.account, sku="BOB-MUG", on_hand=1)
    channel = SalesChannelFactory(account=bob.account)
    their_listing = Listing.objects.create(account=bob.account, channel=channel, sku="BOB-MUG", remote_id="1")
    client = staff_client(member_of(alice.account, Role.ADMIN))

    page = client.get("/admin/inventory/product/").content.decode()
    assert "ALICE-MUG" in page
    assert "BOB-MUG" not in page
    assert client.get(f"/admin/inventory/product/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/inventory/product/{theirs.pk}/change/").status_code == 302  # "does not exist"
    assert client.get(f"/admin/inventory/listing/{their_listing.pk}/change/").status_code == 302
    assert "BOB-MUG" not in client.get("/admin/inventory/listing/").content.decode()


def test_an_admin_edit_is_audited_and_pushed_like_any_other(
    alice: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: sent.append((str(channel_id), str(job)))
    )
    channel = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": True})
    channel_listing_elsewhere(alice.account)
    product = Product.objects.create(account=alice.account, sku="MUG", on_hand=1, price=Decimal("5"))
    Listing.objects.create(account=alice.account, channel=channel, product=product, sku="MUG", remote_id="1")
    operator = User.objects.create_superuser(email="ops@example.com", password="ops-password-123")
    client = Client()
    client.force_login(operator)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/inventory/product/{product.pk}/change/",
            {
                "sku": "MUG",
                "name": "Mug",
                "on_hand": "9",
                "price": "6.00",
                "tax_rate": "0",
                "listings-TOTAL_FORMS": "0",
                "listings-INITIAL_FORMS": "0",
                "listings-MIN_NUM_FORMS": "0",
                "listings-MAX_NUM_FORMS": "0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    product.refresh_from_db()
    assert (product.on_hand, product.price, product.name) == (9, Decimal("6"), "Mug")
    assert sorted(sent) == sorted([(str(channel.pk), SyncJob.STOCK), (str(channel.pk), SyncJob.PRICES)])
    event = InventoryEvent.objects.get(account=alice.account)
    assert event.actor == operator
    assert event.detail["updated"] == 1
