"""What the seller-UI browser tests share: Debian's Chromium, a signed-in shop, and axe-core.

axe-core comes from npm (``tests/browser/package.json``, installed by ``make test``); its script is
evaluated in the page through the DevTools protocol, which the page's Content-Security-Policy does
not govern, so the page is checked exactly as the seller gets it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accounts.models import Role
from channels.models import ConnectionState, SalesChannel, SyncJob, SyncRun, SyncState
from inventory.models import Listing, Product
from orders.models import Shipment, ShipmentState
from tests.factories import PASSWORD, MembershipFactory, SalesChannelFactory
from tests.orders.factories import make_order

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Playwright's wait for any one thing; generous, a CI machine may be busy.
WAIT_MS = 15_000

# expect() waits as long as the page's own calls do
expect.set_options(timeout=WAIT_MS)

AXE_SCRIPT = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"

#: The screen sizes every layout test runs at: a phone, a tablet, a desktop.
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}
DESKTOP = {"width": 1280, "height": 900}

SHOP_EMAIL = "shop-owner@example.com"
#: A sync-run error longer than any cut the channel page used to make.
LONG_RUN_ERROR = (
    "The store did not answer within 20 seconds while Storelink downloaded orders modified since "
    "yesterday; it answered the two calls before this one, so the store is up but slow under load "
    "— ask your host about PHP workers. END-OF-ERROR"
)


@pytest.fixture
def ui_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Loopback stores allowed, static files from the finders, the ORM usable from the test thread
    while Playwright's sync API runs its event loop there."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.DEBUG = False
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return settings


@pytest.fixture
def chromium(ui_settings: Any) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium must be installed (make system-deps)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright ran may hold a connection; close them so the test
            # database can be dropped.
            connections.close_all()


@pytest.fixture
def open_page(chromium: Browser) -> Callable[..., Page]:
    """A new page (its own cookies) at a given viewport size."""

    def factory(viewport: dict[str, int] | None = None) -> Page:
        context = chromium.new_context(viewport=viewport or DESKTOP)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        return page

    return factory


def log_in(page: Page, base: str, email: str = SHOP_EMAIL) -> None:
    page.goto(f"{base}{reverse('login')}")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    # most tests start from the channel list (the home page before the dashboard)
    page.goto(f"{base}{reverse('channels:list')}")
    expect(page.get_by_role("heading", name="Sales channel integration")).to_be_visible()


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line each."""
    assert AXE_SCRIPT.is_file(), "axe-core is missing: run `npm ci --prefix tests/browser` (make test does)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;true")
    results = page.evaluate(
        """async () => {
          const result = await window.axe.run(document, {resultTypes: ["violations"]});
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ") + " :: "
                                     + (n.failureSummary || "").split("\\n").slice(1, 2).join(""))
          }));
        }"""
    )
    return [
        f"{item['id']} ({item['impact']}): {item['help']} — {'; '.join(item['nodes'][:4])}"
        for item in results
        if item["impact"] in impacts
    ]


def overflow(page: Page) -> dict[str, Any]:
    """How much wider than the viewport the document is, and which elements stick out."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const wide = [...document.querySelectorAll("body *")]
            .filter((el) => el.getBoundingClientRect().right > width + 1 && el.offsetParent !== null
                     && !el.closest(".table-scroll"))
            .slice(0, 5).map((el) => {
              const classes = typeof el.className === "string" && el.className ? el.className : "";
              return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                + (classes ? "." + classes.replaceAll(" ", ".") : "");
            });
          return {scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, wide};
        }"""
    )


@pytest.fixture
def shop(db: Any) -> dict[str, Any]:
    """An owner (staff too, to reach the admin) with channels in every state — one of them
    degraded by recent failures — an order with a failed shipment, products and listings."""
    membership = MembershipFactory(
        user__email=SHOP_EMAIL, user__is_staff=True, user__is_superuser=True, role=Role.OWNER
    )
    account = membership.account
    now = timezone.now()
    ok = SalesChannelFactory(
        account=account,
        name="Working shop",
        store_url="https://shop.example.com",
        last_sync_at=now - timedelta(minutes=4),
        last_success_at=now - timedelta(minutes=4),
    )
    SalesChannelFactory(
        account=account,
        name="Locked shop",
        store_url="https://locked.example.com",
        connection_state=ConnectionState.NEEDS_REAUTH,
    )
    SalesChannelFactory(
        account=account,
        platform="xcart",
        name="New shop with a rather long name for a small screen",
        store_url="https://a-very-long-subdomain-of-a-store.example.com/shop/index.php",
        connection_state=ConnectionState.PENDING,
        credentials={"api_key": "xcart-key"},
    )
    flaky = SalesChannelFactory(
        account=account,
        name="Flaky shop",
        store_url="https://flaky.example.com",
        last_sync_at=now - timedelta(minutes=2),
        last_success_at=now - timedelta(minutes=7),
        failed_runs=1,
    )
    for minutes, state in ((2, SyncState.FAILED), (7, SyncState.SUCCEEDED), (12, SyncState.FAILED)):
        SyncRun.objects.create(
            account=account,
            channel=flaky,
            job=SyncJob.ORDERS,
            state=state,
            created_at=now - timedelta(minutes=minutes),
            started_at=now - timedelta(minutes=minutes),
            finished_at=now - timedelta(minutes=minutes),
            error=LONG_RUN_ERROR if state == SyncState.FAILED else "",
        )
    SyncRun.objects.create(
        account=account,
        channel=ok,
        job=SyncJob.ORDERS,
        state=SyncState.FAILED,
        created_at=now - timedelta(days=2),
        error=LONG_RUN_ERROR,
    )
    order = make_order(ok, "1001")
    Shipment.objects.create(
        account=account,
        order=order,
        channel=ok,
        carrier="DHL",
        tracking_numbers=["JD0001"],
        lines=[{"external_line_id": "1001-0", "quantity": 1}],
        state=ShipmentState.FAILED,
        last_error="The store refused the shipment: the order is closed on the store.",
    )
    product = Product.objects.create(
        account=account, sku="SKU-0", name="Mug", on_hand=4, price=Decimal("9.50")
    )
    Listing.objects.create(
        account=account,
        channel=ok,
        product=product,
        sku="SKU-0",
        remote_id="1",
        name="Mug",
        last_error="Store said no.",
        last_price_error="Store said no to the price.",
    )
    Listing.objects.create(account=account, channel=ok, sku="LOOSE-1", remote_id="2", name="Unmatched cap")
    return {
        "user": membership.user,
        "account": account,
        "channel": ok,
        "flaky": flaky,
        "order": order,
        "product": product,
    }


def live_channel(name: str) -> SalesChannel:
    return SalesChannel.objects.live().get(name=name)
