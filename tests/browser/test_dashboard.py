"""The dashboard in Debian's Chromium: its SVG charts carry the data, and a running job's counts
update on the page by themselves until the job ends.

The test writes orders on three known days and runs of both outcomes, opens the dashboard, and
reads the bars and figures the browser shows. Then it moves a running order download's counts on
in the database (as a worker does after each page) and waits for the page to show them without a
reload; when the run finishes the panel says so and stops polling.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from channels.models import SyncJob, SyncRun, SyncState
from tests.browser.conftest import DESKTOP, log_in
from tests.orders.factories import make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_charts_show_the_data_and_progress_updates_by_itself(
    open_page: Callable[..., Page], live_server: Any, shop: dict[str, Any]
) -> None:
    channel = shop["channel"]
    now = timezone.now()
    # the shop fixture placed order 1001 a day ago; three more today and two five days ago
    for number, days_ago in (("2001", 0), ("2002", 0), ("2003", 0), ("2004", 5), ("2005", 5)):
        make_order(channel, number, placed_at=now - timedelta(days=days_ago, minutes=2))
    SyncRun.objects.create(
        account=channel.account,
        channel=channel,
        job=SyncJob.ORDERS,
        state=SyncState.SUCCEEDED,
        created_at=now - timedelta(minutes=30),
        finished_at=now - timedelta(minutes=30),
        checks=6,
        last_checked_at=now - timedelta(minutes=4),
    )
    running = SyncRun.objects.create(
        account=channel.account,
        channel=channel,
        job=SyncJob.ORDERS,
        state=SyncState.RUNNING,
        started_at=now,
        fetched=100,
        created=100,
    )

    page = open_page(DESKTOP)
    log_in(page, live_server.url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()

    card = page.locator(f'[data-channel="{channel.pk}"]')
    chart = card.locator("svg.chart-orders")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("role", "img")
    bars = chart.locator("rect.bar")
    expect(bars).to_have_count(3)  # today, yesterday, five days ago
    counts = sorted(int(bars.nth(index).get_attribute("data-count") or 0) for index in range(3))
    assert counts == [1, 2, 3]
    tallest = max(bars.nth(index).bounding_box()["height"] for index in range(3))
    lowest = min(bars.nth(index).bounding_box()["height"] for index in range(3))
    assert tallest > 2 * lowest  # drawn to scale, not all alike
    expect(card.locator('[data-figure="orders"]')).to_have_text("6")
    expect(card.locator('[data-figure="runs-ok"]')).to_have_text("6")
    expect(card.locator('[data-figure="runs-failed"]')).to_have_text("1")  # two days ago
    expect(card.locator('[data-figure="lag"]')).to_have_text("4 min")
    expect(card.locator("svg.chart-health rect.bar-ok")).to_have_count(1)
    expect(card.locator("svg.chart-health rect.bar-failed")).to_have_count(1)
    flaky = page.locator(f'[data-channel="{shop["flaky"].pk}"]')
    expect(flaky.locator('[data-figure="runs-failed"]')).to_have_text("2")
    expect(flaky.locator("svg.chart-orders rect.bar")).to_have_count(0)

    # -- a running download's counts move on; the page follows without a reload --------------------
    panel = page.locator("#progress")
    item = panel.locator(f'[data-run="{running.pk}"]')
    expect(item.locator('[data-count="fetched"]')).to_have_text("100")
    page.evaluate("window.__same_page = true")
    SyncRun.objects.filter(pk=running.pk).update(fetched=750, created=740)
    expect(item.locator('[data-count="fetched"]')).to_have_text("750")
    expect(item.locator('[data-count="created"]')).to_have_text("740")
    SyncRun.objects.filter(pk=running.pk).update(
        state=SyncState.SUCCEEDED, finished_at=timezone.now(), fetched=1200, created=1190
    )
    expect(item.locator('[data-count="fetched"]')).to_have_text("1200")
    expect(item).to_have_attribute("data-state", "succeeded")
    expect(panel.get_by_role("heading", name="Just finished")).to_be_visible()
    expect(panel).not_to_have_attribute("hx-trigger", "every 2s")
    expect(page.locator("#live-status")).to_contain_text("Finished: Orders succeeded.")
    assert page.evaluate("window.__same_page") is True
    # the run's page has the same panel, which also stopped: nothing is running any more
    page.goto(live_server.url + reverse("channels:detail", args=[channel.pk]))
    expect(page.locator(f'#progress [data-run="{running.pk}"]')).to_be_visible()
    assert page.locator("#progress").get_attribute("hx-trigger") is None
