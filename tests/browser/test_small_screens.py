"""The seller's day on a phone and a tablet, and what the UI says while and after it works.

Debian's Chromium at 390×844 and 768×1024: the menu opens and leads to every page, "Log out" is
reachable, each channel's switch, connection state (a degraded one included) and last sync are on
screen and the switch works; an order page fits and a shipment can be recorded from it. At
desktop size: switching a channel off on its page takes "Sync now" away and is announced in the
aria-live region, and a connection test against a store that never answers shows that it is
waiting, then says the store did not answer. Keyboard focus shows on every control.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

from channels import sync
from orders.models import Shipment
from tests.browser.conftest import DESKTOP, PHONE, TABLET, log_in, overflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_on_screen(locator: Locator, page: Page) -> None:
    """Visible and inside the viewport's width (reachable without sideways scrolling)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    width = (page.viewport_size or {})["width"]
    assert box is not None
    assert box["x"] >= 0, (box, width)
    assert box["x"] + box["width"] <= width + 1, (box, width)


def assert_fits(page: Page) -> None:
    layout = overflow(page)
    assert layout["scrollWidth"] <= layout["width"], layout


def open_menu(page: Page) -> None:
    toggle = page.get_by_role("button", name="Menu")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()  # collapsed until asked
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Jobs the UI asks for are noted instead of sent to a broker no worker reads in this test."""
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), str(job))))
    return sent


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_channel_list_and_an_order_on_a_small_screen(
    open_page: Callable[..., Page], live_server: Any, shop: dict[str, Any], no_broker: Any, viewport: dict
) -> None:
    base = live_server.url
    page = open_page(viewport)
    log_in(page, base)
    assert_fits(page)

    # -- every channel's switch, connection state and last sync, on screen -----------------------
    rows = page.locator("#channel-table tbody tr")
    expect(rows).to_have_count(4)
    for index in range(4):
        row = rows.nth(index)
        row.scroll_into_view_if_needed()
        assert_on_screen(row.get_by_role("switch"), page)
        assert_on_screen(row.locator(".badge"), page)
        assert_on_screen(row.locator("td[data-label='Last sync'] > *"), page)
    flaky = page.locator(f"#channel-{shop['flaky'].pk}")
    expect(flaky.locator(".badge")).to_have_text("Degraded")
    expect(flaky).to_contain_text("2 failed runs in the last 3 hours, including the latest")
    expect(page.locator(f"#channel-{shop['channel'].pk} .badge")).to_have_text("Connected")

    switch = flaky.get_by_role("switch", name="Enabled: Flaky shop")
    switch.click()
    expect(flaky.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(page.locator("#live-status")).to_have_text("“Flaky shop” is disabled.")
    shop["flaky"].refresh_from_db()
    assert shop["flaky"].enabled is False
    assert_fits(page)

    # -- the menu leads to the orders, and an order page is usable --------------------------------
    if page.get_by_role("button", name="Menu").is_visible():
        open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    assert_fits(page)
    page.get_by_role("link", name="#1001").click()
    expect(page.get_by_role("heading", name="Order #1001")).to_be_visible()
    assert_fits(page)
    lines = page.locator("#order-lines")
    lines.scroll_into_view_if_needed()
    expect(lines.get_by_role("columnheader", name="SKU")).to_be_visible()
    form = page.locator("#shipment-form")
    form.scroll_into_view_if_needed()
    quantities = form.locator("input[type='number']")
    assert quantities.count() >= 1
    for index in range(quantities.count()):
        assert_on_screen(quantities.nth(index), page)
    quantities.first.fill("1")
    assert_on_screen(form.get_by_label("Carrier"), page)
    form.get_by_label("Carrier").fill("UPS")
    form.get_by_label("Tracking numbers").fill("1Z999")
    submit = form.get_by_role("button", name="Record shipment")
    assert_on_screen(submit, page)
    submit.click()
    expect(page.locator("#shipments")).to_contain_text("1Z999")
    assert Shipment.objects.filter(order=shop["order"], carrier="UPS").exists()
    assert_fits(page)

    # -- and out again -----------------------------------------------------------------------------
    if page.get_by_role("button", name="Menu").is_visible():
        open_menu(page)
    logout = page.get_by_role("button", name="Log out")
    assert_on_screen(logout, page)
    logout.click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_switching_a_channel_off_on_its_page_takes_sync_now_away(
    open_page: Callable[..., Page], live_server: Any, shop: dict[str, Any]
) -> None:
    page = open_page(DESKTOP)
    log_in(page, live_server.url)
    channel = shop["channel"]
    page.goto(live_server.url + reverse("channels:detail", args=[channel.pk]))
    card = page.locator("#status-card")
    expect(card.get_by_role("button", name="Sync now")).to_be_visible()
    page.evaluate("window.__same_page = true")

    card.get_by_role("switch", name="Enabled: Working shop").click()

    expect(page.locator("#status-card").get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(page.locator("#status-card").get_by_role("button", name="Sync now")).to_have_count(0)
    expect(page.locator("#live-status")).to_have_text("“Working shop” is disabled.")
    assert page.evaluate("window.__same_page") is True  # swapped in place, no page load
    page.locator("#status-card").get_by_role("switch").click()
    expect(page.locator("#status-card").get_by_role("button", name="Sync now")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("“Working shop” is enabled.")


RECORD_BUSY_STATE = """() => {
  const form = document.querySelector("form[data-busy]");
  const live = document.getElementById("live-status");
  new MutationObserver(() => {
    if (form.classList.contains("htmx-request")) {
      sessionStorage.setItem("busy", JSON.stringify({
        note: getComputedStyle(form.querySelector(".busy-note")).display,
        ariaBusy: form.getAttribute("aria-busy"),
      }));
    }
  }).observe(form, {attributes: true});
  new MutationObserver(() => {
    if (live.textContent) sessionStorage.setItem("live", live.textContent);
  }).observe(live, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture
def silent_store() -> Iterator[str]:
    """A loopback address that takes connections and never answers (the kernel completes the
    handshake; nobody reads): what a store behind a dead or overloaded host looks like."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        listener.close()


def test_a_connection_test_that_gets_no_answer_shows_it_is_waiting_then_says_so(
    open_page: Callable[..., Page],
    live_server: Any,
    shop: dict[str, Any],
    silent_store: str,
    ui_settings: Any,
) -> None:
    ui_settings.STORE_HTTP_TIMEOUT = 3.0
    ui_settings.STORE_HTTP_MAX_RETRIES = 0
    page = open_page(DESKTOP)
    log_in(page, live_server.url)
    page.goto(live_server.url + reverse("channels:add_name", args=["xcart"]))
    page.get_by_label("Channel name").fill("Sleepy outlet")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Website end point").fill(silent_store)
    page.get_by_label("API key").fill("xcart-key-0123456789")
    # What the page shows while the request is out is recorded in sessionStorage as it happens
    # (Playwright's own queries wait for the navigation to finish, when it is over).
    page.evaluate(RECORD_BUSY_STATE)
    page.get_by_role("button", name="Test connection and continue").click()

    # then the answer that never came, in words
    error = page.locator("#connection-error")
    expect(error).to_contain_text("did not answer", timeout=60_000)
    expect(page.locator("form[data-busy] .busy-note")).to_be_hidden()
    # while the store kept quiet, the form said it was waiting, and so did the live region
    busy = page.evaluate("JSON.parse(sessionStorage.getItem('busy') || '{}')")
    assert busy == {"note": "flex", "ariaBusy": "true"}, busy
    assert "waiting for the store to answer" in page.evaluate("sessionStorage.getItem('live') || ''")


FOCUS_STYLE = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {tag: el.tagName, text: (el.textContent || "").trim().slice(0, 30),
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
}"""


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_keyboard_focus_is_always_visible(
    open_page: Callable[..., Page], live_server: Any, shop: dict[str, Any], viewport: dict
) -> None:
    page = open_page(viewport)
    log_in(page, live_server.url)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert_on_screen(skip, page)
    if page.get_by_role("button", name="Menu").is_visible():
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Menu")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        page.keyboard.press("Escape")  # closes the menu and gives focus back to its button
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
        expect(page.get_by_role("button", name="Menu")).to_be_focused()
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_STYLE)
        if focused["tag"] == "BODY":
            break  # past the page's last control
        seen.append(focused)
        assert focused["outline"] != "none", focused
        assert focused["width"] >= 2, seen
    assert len(seen) >= 6, seen
    assert {"A", "BUTTON"} <= {item["tag"] for item in seen}, seen
