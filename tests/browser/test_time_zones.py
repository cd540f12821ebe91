"""Time zones in a real browser (Debian Chromium).

An account in Sydney sees an order's time in Sydney, with the zone named and the store's own time
beside it, whatever zone the browser itself is in; changing the zone on the settings page changes
what the pages show. A sign-up from a browser in New York starts the account in New York (the zone
is read by static/js/timezone.js, which the Content-Security-Policy lets run as a file).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import Account, Role, User
from tests.browser.conftest import DESKTOP, SHOP_EMAIL, WAIT_MS, log_in
from tests.factories import PASSWORD, MembershipFactory, SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: 13:30 UTC on 10 March 2026: 00:30 on 11 March in Sydney (AEDT), 14:30 in Berlin (CET),
#: 09:30 in New York (EDT, summer time began on 8 March).
PLACED = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)


def test_times_shown_in_a_non_utc_account_zone(chromium, live_server) -> None:
    membership = MembershipFactory(user__email=SHOP_EMAIL, role=Role.OWNER, account__name="Harbour Goods")
    Account.objects.filter(pk=membership.account_id).update(time_zone="Australia/Sydney")
    channel = SalesChannelFactory(account=membership.account, name="Berlin shop")  # the store is in Berlin
    order = make_order(channel, "7001", placed_at=PLACED)
    # the browser is somewhere else again: what the pages show must not depend on it
    context = chromium.new_context(viewport=DESKTOP, timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    base = live_server.url

    log_in(page, base)
    page.goto(f"{base}{reverse('orders:list')}")
    row = page.locator("tr", has_text="#7001")
    expect(row).to_contain_text("11 Mar 2026, 00:30 AEDT")

    page.goto(f"{base}{reverse('orders:detail', args=[order.pk])}")
    expect(page.locator("#order-placed-at")).to_have_text("11 Mar 2026, 00:30 AEDT")
    expect(page.locator("#order-placed-at-store")).to_have_text(
        "(10 Mar 2026, 14:30 CET at the store, Europe/Berlin)"
    )

    page.get_by_role("link", name="Settings").click()
    expect(page.locator("#time-zone-now")).to_contain_text("Australia/Sydney")
    page.get_by_role("combobox", name="Time zone").select_option("America/New_York")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_role("status").first).to_contain_text("Times are now shown in America/New York")
    page.goto(f"{base}{reverse('orders:detail', args=[order.pk])}")
    expect(page.locator("#order-placed-at")).to_have_text("10 Mar 2026, 09:30 EDT")
    context.close()


def test_sign_up_takes_the_browsers_time_zone(chromium, live_server, mailoutbox) -> None:
    context = chromium.new_context(viewport=DESKTOP, timezone_id="America/New_York")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    base = live_server.url

    page.goto(f"{base}{reverse('signup')}")
    page.get_by_label("Company or shop name").fill("Brooklyn Prints")
    page.get_by_label("E-mail address").fill("prints@example.com")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(re.escape(reverse("signup_sent")) + "$"))
    (message,) = mailoutbox
    link = re.search(r"https?://\S+/signup/confirm/\S+", message.body)
    assert link, message.body

    page.goto(link.group(0))
    expect(page.locator("input[name=time_zone]")).to_have_value("America/New_York")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()

    account = User.objects.get(email="prints@example.com").memberships.get().account
    assert account.time_zone == "America/New_York"
    page.get_by_role("link", name="Settings").click()
    expect(page.locator("#time-zone-now")).to_contain_text(re.compile(r"America/New_York.*E[SD]T there"))
    context.close()
