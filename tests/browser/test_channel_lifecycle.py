"""One real-browser walk through a channel's life, against a real (loopback) OpenCart sandbox store.

Debian's Chromium, headless, driven by Playwright's sync API against pytest-django's live server:
sign up, add an OpenCart channel with the wizard (a wrong key first, then the right one), switch it
off and on with the HTMX toggle, reauthorise it after the store refused its key, and remove it. The
channel list is saved as a screenshot for CI (test-artifacts/), and for the README (docs/screenshots/)
only when asked (``make screenshots``): a test run must leave the checkout as it found it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from channels import services
from channels.models import ConnectionState, SalesChannel
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import OpenCartSandbox
from tests.factories import SalesChannelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where screenshots go: CI's artifacts always, the README's tracked images on request only.
SCREENSHOT_FOLDERS = (REPO_ROOT / "test-artifacts",) + (
    (REPO_ROOT / "docs" / "screenshots",) if os.environ.get("STORELINK_SCREENSHOTS") == "1" else ()
)
SCREENSHOT_TARGETS = tuple(folder / "channel-list.png" for folder in SCREENSHOT_FOLDERS)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EGRESS_IP = "198.51.100.23"
PASSWORD = "a-long-browser-password-7"
WAIT_MS = 10_000


@pytest.fixture
def browser_settings(settings, monkeypatch):
    """Loopback stores allowed (the sandbox), static files from the finders, and Django's ORM usable
    from the test thread while Playwright's sync API runs its event loop there."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.STORE_EGRESS_IPS = [EGRESS_IP]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return settings


@pytest.fixture
def opencart_store() -> Iterator[tuple[SandboxServer, OpenCartSandbox]]:
    app = OpenCartSandbox(family="3.0.3")
    app.seed(products=5, orders=3, days=5, rng_seed=7)
    with SandboxServer(app) as server:
        yield server, app


@pytest.fixture
def page(browser_settings):
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium must be installed (make system-deps)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()
            # ORM calls made while Playwright ran may sit in another context's connection; close
            # them so the test database can be dropped (PostgreSQL refuses while one is open).
            connections.close_all()


def test_channel_lifecycle_in_a_real_browser(page, live_server, opencart_store):
    server, store = opencart_store
    credentials = store.connector_credentials()

    # -- sign up: the e-mailed link leads to the password; the new owner lands on the empty list ---
    page.goto(f"{live_server.url}/signup/")
    page.get_by_label("Company or shop name").fill("Browser Test Traders")
    page.get_by_label("E-mail address").fill("browser@example.com")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    page.goto(re.search(r"https?://\S+/signup/confirm/\S+", mail.outbox[-1].body).group(0))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("No sales channels yet")).to_be_visible()

    # -- the OpenCart wizard: platform, name, connection details, settings ------------------------
    page.get_by_role("link", name="Add sales channel").first.click()
    page.get_by_role("link", name="Add OpenCart").click()
    page.get_by_label("Channel name").fill("Demo OpenCart")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_test_id("egress-ip")).to_have_text(EGRESS_IP)
    expect(page.get_by_role("link", name=re.compile("storelink-bridge.php"))).to_be_visible()
    # the README's "install the store bridge" section shows this step
    for folder in SCREENSHOT_FOLDERS:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "opencart-connection-step.png"), full_page=True)
    page.get_by_label("OpenCart end point").fill(server.url + "/")
    page.get_by_label("API username").fill(credentials["api_username"])
    page.get_by_label("Key", exact=True).fill("WrongKey0123456789abcdefWRONG")
    page.get_by_role("button", name="Test connection and continue").click()
    expect(page.locator("#connection-error")).to_contain_text("The API key was refused")
    assert SalesChannel.objects.count() == 0

    page.get_by_label("Key", exact=True).fill(credentials["api_key"])
    page.get_by_role("button", name="Test connection and continue").click()
    expect(page.locator("#test-result")).to_contain_text("3.0.3.8")
    # the settings step offers the store's own statuses and currency
    page.get_by_label("Processed order status").select_option("3")
    expect(page.get_by_label("Currency")).to_have_value("USD")
    page.get_by_role("checkbox", name="Processed (15)").check()
    page.get_by_role("button", name="Save channel").click()

    channel = SalesChannel.objects.get()
    row = page.locator(f"#channel-{channel.pk}")
    expect(row).to_contain_text("Demo OpenCart")
    expect(row).to_contain_text("Connected")
    assert channel.settings["processed_status"] == "3"
    assert "15" in channel.settings["import_statuses"]

    # -- the status switch: HTMX swaps the row in place, no page load ------------------------------
    switch = row.get_by_role("switch", name="Enabled: Demo OpenCart")
    expect(switch).to_have_attribute("aria-checked", "true")
    page.evaluate("window.__same_page = true")
    switch.click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(row.get_by_role("switch")).to_have_text("No")
    assert page.evaluate("window.__same_page") is True
    channel.refresh_from_db()
    assert channel.enabled is False

    row.get_by_role("switch").click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    channel.refresh_from_db()
    assert channel.enabled is True

    # -- reauthorise after the store refused the key (as a sync worker would record it) ------------
    services.mark_needs_reauth(channel, "OpenCart did not accept the API key.")
    page.reload()
    expect(row).to_contain_text("Needs reauthorising")
    row.get_by_role("link", name="Demo OpenCart").click()
    page.get_by_role("link", name="Reauthorise").first.click()
    expect(page.get_by_label("OpenCart end point")).to_have_value(server.url)
    expect(page.get_by_label("Key", exact=True)).to_have_value("")  # secrets are never shown
    page.get_by_label("Key", exact=True).fill(credentials["api_key"])
    page.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("Connected")
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.OK

    # two more of the seller's stores, so the screenshot shows every platform and state
    SalesChannelFactory(
        account=channel.account,
        platform="xcart",
        name="US outlet",
        store_url="https://outlet.example.com",
        enabled=False,
        credentials={"api_key": "xcart-key-for-the-screenshot"},
        last_sync_at=timezone.now() - timedelta(hours=3),
    )
    SalesChannelFactory(
        account=channel.account,
        platform="threedcart",
        name="Gift shop",
        store_url="https://gifts.3dcartstores.com",
        connection_state=ConnectionState.PENDING,
        credentials={"access_token": ""},
    )
    page.reload()
    expect(page.locator("#channel-table tbody tr")).to_have_count(3)
    for target in SCREENSHOT_TARGETS:
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    assert all(path.stat().st_size > 10_000 for path in SCREENSHOT_TARGETS)

    # -- remove, after a confirmation that says what happens ---------------------------------------
    row.get_by_role("link", name="Demo OpenCart").click()
    page.get_by_role("link", name="Remove channel").click()
    expect(page.get_by_text("makes a new channel", exact=False)).to_be_visible()
    page.get_by_role("button", name="Remove channel").click()
    expect(page.get_by_text("was removed. Its orders stay in Storelink.")).to_be_visible()
    expect(page.locator(f"#channel-{channel.pk}")).to_have_count(0)
    expect(page.locator("#channel-table tbody tr")).to_have_count(2)
    channel.refresh_from_db()
    assert channel.removed_at is not None
    assert channel.credentials == {}
