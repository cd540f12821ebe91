"""The dashboard home: orders per day and sync health per channel, and the progress panel.

The figures are checked against rows written with known days (a zero day among them), in a time
zone where the account's day and UTC's differ; another account's orders and runs never show; and
the page costs the same number of queries for 2 channels as for 20.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels import progress
from channels.models import SyncJob, SyncRun, SyncState
from orders import dashboard
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db

ZONE = "Pacific/Auckland"


@pytest.fixture(autouse=True)
def _ui_test_settings(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def alice(alice, client):
    client.force_login(alice.user)
    return alice


def run(channel, state: str, at: datetime, *, job: str = SyncJob.ORDERS, **fields) -> SyncRun:
    return SyncRun.objects.create(
        account_id=channel.account_id,
        channel=channel,
        job=job,
        state=state,
        created_at=at,
        started_at=at,
        finished_at=None if state in (SyncState.RUNNING, SyncState.QUEUED) else at,
        **fields,
    )


def summary_for(channel, now=None) -> dashboard.ChannelSummary:
    return dashboard.summarise([channel], now=now)[0]


def test_orders_per_day_fall_on_the_local_day_with_zero_days_between(alice):
    channel = SalesChannelFactory(account=alice.account, name="Shop")
    zone = ZoneInfo(ZONE)
    now = datetime(2026, 12, 2, 9, 0, tzinfo=zone)
    # 23:30 on 30 Nov in Auckland is 30 Nov 10:30 UTC; 00:30 on 1 Dec is still 30 Nov in UTC.
    make_order(channel, "1", placed_at=datetime(2026, 11, 30, 23, 30, tzinfo=zone))
    make_order(channel, "2", placed_at=datetime(2026, 12, 1, 0, 30, tzinfo=zone))
    make_order(channel, "3", placed_at=datetime(2026, 12, 1, 8, 0, tzinfo=zone))
    make_order(channel, "4", placed_at=datetime(2026, 12, 2, 8, 0, tzinfo=zone))
    make_order(channel, "old", placed_at=datetime(2026, 11, 2, 23, 0, tzinfo=zone))  # day 31: outside
    with timezone.override(zone):
        summary = summary_for(channel, now=now)
    by_day = {day.day.isoformat(): day.orders for day in summary.days}
    assert len(summary.days) == dashboard.DASHBOARD_DAYS
    assert summary.days[-1].day.isoformat() == "2026-12-02"
    assert summary.days[0].day.isoformat() == "2026-11-03"
    assert by_day["2026-11-30"] == 1
    assert by_day["2026-12-01"] == 2
    assert by_day["2026-12-02"] == 1
    assert by_day["2026-11-29"] == 0
    assert summary.orders_total == 4


def test_sync_health_counts_folded_checks_and_the_lag_is_since_the_last_orders_success(alice):
    channel = SalesChannelFactory(account=alice.account, name="Shop")
    now = timezone.now()
    run(
        channel,
        SyncState.SUCCEEDED,
        now - timedelta(days=3),
        checks=40,
        last_checked_at=now - timedelta(hours=1),
    )
    run(channel, SyncState.FAILED, now - timedelta(days=3))
    run(channel, SyncState.FAILED, now - timedelta(minutes=10))
    run(channel, SyncState.SUCCEEDED, now - timedelta(minutes=5), job=SyncJob.STOCK)
    run(channel, SyncState.SUCCEEDED, now - timedelta(minutes=1), job=SyncJob.TEST)  # not a sync run
    run(channel, SyncState.FAILED, now - timedelta(days=40))  # outside the window
    summary = summary_for(channel, now=now)
    assert summary.runs_ok == 41
    assert summary.runs_failed == 2
    assert summary.failure_share == 5
    assert summary.lag == timedelta(hours=1)
    assert summary.lag_text == "1 h"
    three_days_ago = timezone.localdate(now - timedelta(days=3))
    day = next(day for day in summary.days if day.day == three_days_ago)
    assert (day.ok, day.failed) == (40, 1)


def test_no_successful_download_means_no_lag(alice):
    channel = SalesChannelFactory(account=alice.account, name="Shop")
    run(channel, SyncState.FAILED, timezone.now() - timedelta(hours=2))
    summary = summary_for(channel)
    assert summary.lag is None
    assert "no successful order download" in summary.lag_text


def test_the_page_draws_a_bar_per_day_with_orders_and_names_the_numbers(alice, client):
    channel = SalesChannelFactory(account=alice.account, name="Shop")
    now = timezone.now()
    for number, days_ago in (("1", 0), ("2", 0), ("3", 0), ("4", 5)):
        make_order(channel, number, placed_at=now - timedelta(days=days_ago, minutes=1))
    run(channel, SyncState.SUCCEEDED, now - timedelta(minutes=3))
    run(channel, SyncState.FAILED, now - timedelta(minutes=2))
    page = client.get(reverse("dashboard")).content.decode()
    orders_svg = re.search(r'<svg class="chart chart-orders".*?</svg>', page, re.S).group(0)
    bars = re.findall(r'<rect class="bar"[^>]*data-count="(\d+)"', orders_svg)
    assert sorted(int(count) for count in bars) == [1, 3]
    assert "3 orders</title>" in orders_svg
    assert 'aria-label="Orders per day on Shop, last 30 days: 4 in all, at most 3 in a day"' in orders_svg
    assert '<strong data-figure="orders">4</strong>' in page
    assert '<strong data-figure="runs-ok">1</strong>' in page
    assert '<strong data-figure="runs-failed">1</strong>' in page
    assert re.search(r'data-figure="lag">\d+ min<', page)
    health_svg = re.search(r'<svg class="chart chart-health".*?</svg>', page, re.S).group(0)
    assert 'class="bar bar-ok"' in health_svg
    assert 'class="bar bar-failed"' in health_svg
    assert "style=" not in page
    assert "<script>" not in page


def test_another_accounts_orders_and_runs_never_show(alice, bob, client):
    mine = SalesChannelFactory(account=alice.account, name="Mine")
    theirs = SalesChannelFactory(account=bob.account, name="Theirs")
    make_order(mine, "1", placed_at=timezone.now())
    for number in range(5):
        make_order(theirs, f"b{number}", placed_at=timezone.now())
    run(theirs, SyncState.RUNNING, timezone.now(), fetched=77)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Theirs" not in page
    assert '<strong data-figure="orders">1</strong>' in page
    assert "77" not in page
    assert client.get(reverse("channels:progress", args=[theirs.pk])).status_code == 404
    assert "Theirs" not in client.get(reverse("dashboard_progress")).content.decode()


def _fill(account, start: int, count: int) -> None:
    now = timezone.now()
    for index in range(start, start + count):
        channel = SalesChannelFactory(account=account, name=f"Shop {index:02}")
        make_order(channel, f"{index}-1", placed_at=now - timedelta(days=index % 7))
        run(channel, SyncState.SUCCEEDED, now - timedelta(hours=index + 1))
        run(channel, SyncState.FAILED, now - timedelta(hours=index + 2), job=SyncJob.STOCK)
    run(channel, SyncState.RUNNING, now, fetched=3)


def test_the_page_costs_the_same_queries_for_2_and_20_channels(alice, client):
    _fill(alice.account, 0, 2)
    client.get(reverse("dashboard"))  # session and caches warm
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse("dashboard")).status_code == 200
    _fill(alice.account, 2, 18)
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("dashboard"))
    assert page.content.decode().count('class="chart chart-orders"') == 20
    assert len(large) == len(small), [query["sql"][:120] for query in large.captured_queries]


def test_the_old_channel_list_paging_links_still_land_on_the_list(alice, client):
    response = client.get("/?after=Shop")
    assert response.status_code == 302
    assert response["Location"] == reverse("channels:list") + "?after=Shop"
    assert reverse("channels:list") == "/channels/"


def test_the_progress_panel_polls_while_a_run_is_running_and_stops_after(alice, client):
    channel = SalesChannelFactory(account=alice.account, name="Shop")
    running = run(channel, SyncState.RUNNING, timezone.now(), fetched=250, created=240)
    url = reverse("channels:progress", args=[channel.pk])
    panel = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in panel
    assert '<span data-count="fetched">250</span>' in panel
    assert '<span data-count="created">240</span>' in panel
    SyncRun.objects.filter(pk=running.pk).update(
        state=SyncState.SUCCEEDED, finished_at=timezone.now(), fetched=1000, created=990
    )
    panel = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in panel
    assert '<span data-count="fetched">1000</span>' in panel
    assert 'data-announce="Finished: Orders succeeded."' in panel


def test_sync_now_makes_the_channel_page_wait_for_the_runs(alice, client):
    channel = SalesChannelFactory(account=alice.account, name="Shop")
    page = client.get(reverse("channels:detail", args=[channel.pk]) + "?progress=wait").content.decode()
    assert (
        f'hx-get="{reverse("channels:progress", args=[channel.pk])}?wait={progress.WAIT_POLLS - 1}"' in page
    )
    quiet = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    assert 'id="progress"' in quiet
    assert "every 2s" not in quiet
    last = client.get(reverse("channels:progress", args=[channel.pk]) + "?wait=1").content.decode()
    assert 'hx-trigger="every 2s"' in last
    assert "wait=" not in last
    over = client.get(reverse("channels:progress", args=[channel.pk]) + "?wait=x").content.decode()
    assert "hx-trigger" not in over
