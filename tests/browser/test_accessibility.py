"""Every page of the seller UI passes axe-core with no serious or critical violation, and fits a
phone, a tablet and a desktop screen without sideways scrolling.

Debian's Chromium visits each page (signed out, signed in, the add-channel wizard with a fake store
behind it, forms showing their errors, the Swagger UI API docs) at 390×844, 768×1024 and 1280×900.
On each it checks that the document is no wider than the viewport, that the navigation and "Log out"
can be reached, and runs axe-core (from npm, evaluated in the page).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, TABLET, axe_violations, log_in, overflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def anonymous_pages() -> list[str]:
    return [
        reverse("login"),
        reverse("signup"),
        reverse("signup_sent"),
        reverse("signup_confirm", args=["not-a-valid-token"]),
        reverse("password_reset"),
        reverse("password_reset_done"),
        reverse("password_reset_confirm", args=["x", "not-a-token"]),
        reverse("password_reset_complete"),
        "/no-such-page/",
    ]


def signed_in_pages(shop: dict[str, Any]) -> list[str]:
    channel, order, product = shop["channel"], shop["order"], shop["product"]
    return [
        reverse("dashboard"),
        reverse("channels:list"),
        reverse("channels:detail", args=[channel.pk]),
        reverse("channels:detail", args=[shop["flaky"].pk]),
        reverse("channels:reauthorise", args=[channel.pk]),
        reverse("channels:remove", args=[channel.pk]),
        reverse("channels:add"),
        reverse("channels:add_name", args=["opencart"]),
        reverse("orders:list"),
        reverse("orders:list") + "?flag=unknown_sku",  # filtered to nothing
        reverse("orders:to_ship"),
        reverse("orders:shipment_csv"),
        reverse("orders:detail", args=[order.pk]),
        reverse("orders:to_ship"),
        reverse("orders:shipment_csv"),
        reverse("inventory:product_list"),
        reverse("inventory:product_import"),
        reverse("inventory:product_detail", args=[product.pk]),
        reverse("inventory:product_create"),
        reverse("inventory:product_import"),
        reverse("inventory:unmatched"),
        reverse("api_keys"),
        reverse("account_settings"),
        "/no-such-page/",
    ]


class Findings:
    """What went wrong, page by page, so one run reports every page instead of the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, page: Page, label: str, *, signed_in: bool) -> None:
        size = page.viewport_size or {}
        where = f"{label} at {size.get('width')}px"
        layout = overflow(page)
        if layout["scrollWidth"] > layout["width"]:
            self.problems.append(f"{where}: {layout['scrollWidth']}px wide; sticking out: {layout['wide']}")
        for violation in axe_violations(page):
            self.problems.append(f"{where}: {violation}")
        if signed_in:
            self._navigation_reachable(page, where)

    def _navigation_reachable(self, page: Page, where: str) -> None:
        toggle = page.locator("#nav-toggle")
        opened = False
        if toggle.is_visible():
            toggle.click()
            opened = True
        links = page.get_by_role("navigation", name="Main").get_by_role("link")
        names = [links.nth(index).inner_text() for index in range(links.count())]
        if not {"Sales channels", "Orders", "Products", "API keys"} <= set(names):
            self.problems.append(f"{where}: the navigation has only {names}")
        for index, name in enumerate(names):
            if not links.nth(index).is_visible():
                self.problems.append(f"{where}: navigation link {name!r} cannot be reached")
        if not page.get_by_role("button", name="Log out").is_visible():
            self.problems.append(f"{where}: Log out cannot be reached")
        if opened:
            toggle.click()


def visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None, url
    assert response.status in (200, 400, 404), (url, response.status)
    page.wait_for_load_state("load")


@pytest.mark.parametrize("viewport", [PHONE, TABLET, DESKTOP], ids=["phone", "tablet", "desktop"])
def test_every_page_is_accessible_and_fits_the_screen(
    open_page: Callable[..., Page], live_server: Any, shop: dict[str, Any], fake_store: Any, viewport: dict
) -> None:
    base = live_server.url
    page = open_page(viewport)
    findings = Findings()
    for path in anonymous_pages():
        visit(page, base + path)
        findings.check(page, path, signed_in=False)

    # a form showing its errors
    visit(page, base + reverse("login"))
    page.get_by_label("E-mail address").fill("nobody@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-errors")).to_be_visible()
    findings.check(page, "login with an error", signed_in=False)

    log_in(page, base)
    for path in signed_in_pages(shop):
        visit(page, base + path)
        findings.check(page, path, signed_in=True)

    # the admin (Django's pages, with Storelink's models)
    for path in (
        "/admin/",
        "/admin/channels/saleschannel/",
        f"/admin/channels/saleschannel/{shop['channel'].pk}/change/",
        "/admin/orders/order/",
        f"/admin/orders/order/{shop['order'].pk}/change/",
        "/admin/orders/shipment/",
    ):
        visit(page, base + path)
        findings.check(page, path, signed_in=False)

    # the API docs (Swagger UI, drawn by its script once the schema has loaded)
    visit(page, base + reverse("api-docs"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Storelink API")
    expect(page.locator(".opblock-summary-control").first).to_be_visible()
    findings.check(page, "API docs", signed_in=False)

    # the wizard: name, connection details (with a failed test), settings, against a fake store
    visit(page, base + reverse("channels:add_name", args=["opencart"]))
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".form-errors")).to_be_visible()
    findings.check(page, "wizard name step with an error", signed_in=True)
    page.get_by_label("Channel name").fill("Wizard shop")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("OpenCart end point")).to_be_visible()
    findings.check(page, "wizard connection step", signed_in=True)
    from connectors.errors import AuthError

    fake_store.error = AuthError("The API key was refused.", code="bad_key")
    page.get_by_label("OpenCart end point").fill("https://wizard.example.com/")
    page.get_by_label("API username").fill("Storelink")
    page.get_by_label("Key", exact=True).fill("k" * 32)
    page.get_by_role("button", name="Test connection and continue").click()
    expect(page.locator("#connection-error")).to_be_visible()
    findings.check(page, "wizard connection step with a failed test", signed_in=True)
    fake_store.error = None
    page.get_by_label("Key", exact=True).fill("k" * 32)
    page.get_by_role("button", name="Test connection and continue").click()
    expect(page.locator("#test-result")).to_be_visible()
    findings.check(page, "wizard settings step", signed_in=True)

    # the 3DCart connection step (its own instructions and buttons)
    visit(page, base + reverse("channels:add_name", args=["threedcart"]))
    page.get_by_label("Channel name").fill("Gift shop")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("button", name="Continue without a token")).to_be_visible()
    findings.check(page, "wizard 3DCart connection step", signed_in=True)

    # CSV previews with a row in error: shipments and products
    visit(page, base + reverse("orders:shipment_csv"))
    page.get_by_label("Or paste the rows").fill(
        "order number,carrier,tracking number\n1001,DHL,JD0001\n1999,DHL,JD0003\n"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-errors")).to_be_visible()
    findings.check(page, "shipment CSV preview with an error", signed_in=True)
    visit(page, base + reverse("inventory:product_import"))
    page.locator("#csv-form textarea").fill("sku,name,on_hand,price\nSKU-0,Mug,17,10.25\nSKU-9,,-3,x\n")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-preview")).to_be_visible()
    findings.check(page, "product CSV preview", signed_in=True)

    # a new API key shown once, and the revoke confirmation
    visit(page, base + reverse("api_keys"))
    page.get_by_label("Name").fill("Warehouse")
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_test_id("api-key-plaintext")).to_be_visible()
    findings.check(page, "API keys with a new key", signed_in=True)
    page.get_by_role("link", name="Revoke API key Warehouse").click()
    expect(page.get_by_role("button", name="Revoke the key")).to_be_visible()
    findings.check(page, "revoke API key confirmation", signed_in=True)

    # the CSV imports' previews: a shipment file with a wrong row, a products file with a change
    visit(page, base + reverse("orders:shipment_csv"))
    page.get_by_label("Or paste the rows").fill("1001,DHL,JD0001\n9999,DHL,JD0002\n")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-errors")).to_be_visible()
    findings.check(page, "shipment CSV preview with an error", signed_in=True)
    visit(page, base + reverse("inventory:product_import"))
    page.get_by_label("Or paste the rows").fill("sku,on_hand,price\nSKU-0,5,10.00\n")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-changes")).to_be_visible()
    findings.check(page, "products CSV preview", signed_in=True)

    assert findings.problems == [], "\n".join(findings.problems)
