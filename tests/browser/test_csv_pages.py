"""CSV pages in a real browser (Debian Chromium).

The to-ship queue: a warehouse CSV of three rows, one of them wrong, is previewed with that row's
error and nothing recorded; fixed in place, it is previewed again and recorded, and the queue then
shows only what is still to ship. Products: the export is downloaded, edited and uploaded again,
and the preview's change is what the product then holds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.urls import reverse
from playwright.sync_api import Page, expect, sync_playwright

from accounts.models import Role
from inventory.models import Product
from orders.models import Shipment
from tests.factories import PASSWORD, MembershipFactory, SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
WAIT_MS = 15_000


@pytest.fixture
def page(settings, monkeypatch) -> Iterator[Page]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.DEBUG = False
    settings.CELERY_BROKER_URL = "memory://"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium must be installed (make system-deps)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)  # a busy CI machine may take seconds per page
            yield page
        finally:
            chromium.close()
            connections.close_all()


def _log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}{reverse('login')}")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Sales channels")).to_be_visible()


def test_a_csv_of_three_rows_with_one_bad_is_recorded_only_once_fixed(page, live_server, monkeypatch) -> None:
    from channels import sync

    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: None)  # no broker in this test
    membership = MembershipFactory(user__email="ship@example.com", role=Role.OWNER)
    shop = SalesChannelFactory(account=membership.account, name="Main shop")
    for number in ("1001", "1002", "1003", "1004"):
        make_order(shop, number)
    base = live_server.url
    _log_in(page, base, "ship@example.com")
    page.get_by_role("link", name="To ship").first.click()
    expect(page.locator("#to-ship-table tbody tr")).to_have_count(4)

    page.get_by_role("link", name="Import shipments from CSV").click()
    page.get_by_label("Or paste the rows").fill(
        "order number,carrier,tracking number,sku,qty\n"
        "1001,DHL,JD0001,,\n"
        "1002,UPS,1Z0002,SKU-1,1\n"
        "1999,DHL,JD0003,,\n"
    )
    page.get_by_role("button", name="Preview").click()
    errors = page.locator("#csv-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("4")
    expect(errors.first).to_contain_text("Order 1999 not found.")
    expect(page.locator("#csv-apply")).to_have_count(0)
    assert Shipment.objects.count() == 0

    box = page.get_by_label("Or paste the rows")
    box.fill(box.input_value().replace("1999", "1003"))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-errors")).to_have_count(0)
    shipments = page.locator("#csv-shipments tbody tr")
    expect(shipments).to_have_count(3)
    expect(shipments.nth(1)).to_contain_text("1 × SKU-1 Item 1")
    assert Shipment.objects.count() == 0
    page.get_by_role("button", name="Record 3 shipments").click()

    expect(page.locator(".messages")).to_contain_text("Recorded 3 shipments")
    assert sorted(Shipment.objects.values_list("order__number", flat=True)) == ["#1001", "#1002", "#1003"]
    rows = page.locator("#to-ship-table tbody tr")
    expect(rows).to_have_count(2)  # #1004, and #1002 with three units still to ship
    expect(page.locator("#to-ship-table")).to_contain_text("Partially shipped")


def test_products_csv_round_trip(page, live_server, tmp_path) -> None:
    membership = MembershipFactory(user__email="stock@example.com", role=Role.OWNER)
    Product.objects.create(
        account=membership.account, sku="MUG-1", name="Mug", on_hand=4, price=Decimal("9.50")
    )
    _log_in(page, live_server.url, "stock@example.com")
    page.get_by_role("link", name="Products").first.click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = tmp_path / "products.csv"
    download.value.save_as(exported)
    text = exported.read_text(encoding="utf-8-sig")
    assert "MUG-1,Mug,4,9.5000" in text
    edited = tmp_path / "edited.csv"
    edited.write_text(text.replace("MUG-1,Mug,4,9.5000", "MUG-1,Mug,17,10.25"), encoding="utf-8")

    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(str(edited))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-changes")).to_contain_text("on hand: 4 → 17")
    assert Product.objects.get(sku="MUG-1").on_hand == 4
    page.get_by_role("button", name="Import 1 change").click()
    expect(page.locator(".messages")).to_contain_text("0 new, 1 changed")
    product = Product.objects.get(sku="MUG-1")
    assert (product.on_hand, product.price) == (17, Decimal("10.25"))
