"""The dashboard home: per channel, orders per day and sync health over the last 30 days, and the
work running now with its counts.

The page costs the same few queries whatever the account's size: the channels, one aggregate of
orders per channel per day, one aggregate of sync runs per channel per day, and the running runs.
Days are the account's calendar days (the active time zone), so "today" starts at the seller's
midnight, not at UTC's.

Sync runs that succeeded without changing anything are folded into one row that counts them
(``checks``), so the "ok" figures add up ``checks`` rather than counting rows; a folded row is
counted on the day it started. Finished runs older than the retention window are pruned, which is
why the window is no longer than it.

Charts are SVG written here on the server (no script, no inline style: the CSP allows neither),
each with a ``<title>`` per bar for the mouse and an ``aria-label`` plus a visually hidden table
with the numbers for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from channels.models import SalesChannel, SyncJob, SyncRun, SyncState
from channels.progress import progress_context, wait_param
from orders.models import Order

#: Days shown in the charts, today included.
DASHBOARD_DAYS = 30
#: Channels shown on the dashboard (the channel list pages through the rest).
DASHBOARD_CHANNELS = 50

CHART_HEIGHT = 48
BAR_WIDTH = 8
BAR_GAP = 2
COLOUR_ORDERS = "#1a5fd0"
COLOUR_OK = "#176b40"
COLOUR_FAILED = "#b42828"
COLOUR_AXIS = "#dde2ea"


@dataclass
class Day:
    """One calendar day of one channel: orders placed, runs that succeeded and failed."""

    day: date
    orders: int = 0
    ok: int = 0
    failed: int = 0


@dataclass
class ChannelSummary:
    """What the dashboard shows of one channel."""

    channel: SalesChannel
    days: list[Day]
    #: When the newest successful order download finished (or last checked the store).
    orders_synced_at: datetime | None = None
    now: datetime = field(default_factory=timezone.now)

    @property
    def orders_total(self) -> int:
        return sum(day.orders for day in self.days)

    @property
    def runs_ok(self) -> int:
        return sum(day.ok for day in self.days)

    @property
    def runs_failed(self) -> int:
        return sum(day.failed for day in self.days)

    @property
    def failure_share(self) -> int:
        """Failed runs as a whole percentage of all runs in the window (0 when there were none)."""
        total = self.runs_ok + self.runs_failed
        return round(100 * self.runs_failed / total) if total else 0

    @property
    def lag(self) -> timedelta | None:
        """How old the channel's orders may be: the time since the last successful download."""
        return None if self.orders_synced_at is None else max(self.now - self.orders_synced_at, timedelta(0))

    @property
    def lag_text(self) -> str:
        lag = self.lag
        if lag is None:
            return "no successful order download in 30 days"
        return duration_text(lag)

    @property
    def orders_chart(self) -> SafeString:
        return orders_chart(self.channel.name, self.days)

    @property
    def health_chart(self) -> SafeString:
        return health_chart(self.channel.name, self.days)

    @property
    def order_days(self) -> list[Day]:
        """Days with orders, for the text alternative (the others had none)."""
        return [day for day in self.days if day.orders]

    @property
    def run_days(self) -> list[Day]:
        return [day for day in self.days if day.ok or day.failed]


def duration_text(delta: timedelta) -> str:
    """A short, rounded duration: "40 s", "12 min", "3 h 5 min", "2 days"."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def window_days(now: datetime) -> list[date]:
    """The window's calendar days in the active time zone, oldest first, today last."""
    today = timezone.localdate(now)
    return [today - timedelta(days=offset) for offset in range(DASHBOARD_DAYS - 1, -1, -1)]


def window_start(now: datetime) -> datetime:
    """Midnight (active time zone) of the window's first day."""
    first = window_days(now)[0]
    return timezone.make_aware(datetime.combine(first, datetime.min.time()), timezone.get_current_timezone())


def summarise(channels: Sequence[SalesChannel], now: datetime | None = None) -> list[ChannelSummary]:
    """The dashboard figures of ``channels`` (all of one account) in two aggregate queries."""
    now = now or timezone.now()
    if not channels:
        return []
    account_id = channels[0].account_id
    ids = [channel.pk for channel in channels]
    start = window_start(now)
    zone = timezone.get_current_timezone()
    days = window_days(now)
    grid: dict[Any, dict[date, Day]] = {pk: {day: Day(day) for day in days} for pk in ids}

    orders = (
        Order.objects.filter(account_id=account_id, channel_id__in=ids, placed_at__gte=start)
        .annotate(day=TruncDate("placed_at", tzinfo=zone))
        .values("channel_id", "day")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in orders:
        cell = grid[row["channel_id"]].get(row["day"])
        if cell is not None:
            cell.orders = row["count"]

    background = ~Q(job=SyncJob.TEST)
    succeeded = Q(state=SyncState.SUCCEEDED)
    runs = (
        SyncRun.objects.filter(account_id=account_id, channel_id__in=ids, created_at__gte=start)
        .filter(background)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("channel_id", "day")
        .annotate(
            ok=Coalesce(Sum("checks", filter=succeeded), 0),
            failed=Count("id", filter=Q(state=SyncState.FAILED)),
            orders_synced_at=Max(
                Coalesce("last_checked_at", "finished_at"), filter=succeeded & Q(job=SyncJob.ORDERS)
            ),
        )
        .order_by()
    )
    synced: dict[Any, datetime] = {}
    for counted in runs:
        cell = grid[counted["channel_id"]].get(counted["day"])
        if cell is not None:
            cell.ok, cell.failed = counted["ok"], counted["failed"]
        at = counted["orders_synced_at"]
        if at is not None and (counted["channel_id"] not in synced or at > synced[counted["channel_id"]]):
            synced[counted["channel_id"]] = at
    return [
        ChannelSummary(
            channel=channel,
            days=list(grid[channel.pk].values()),
            orders_synced_at=synced.get(channel.pk),
            now=now,
        )
        for channel in channels
    ]


# --------------------------------------------------------------------------------------------------
# SVG charts
# --------------------------------------------------------------------------------------------------


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _svg(label: str, css_class: str, body: SafeString, count: int) -> SafeString:
    width = count * (BAR_WIDTH + BAR_GAP) - BAR_GAP
    return format_html(
        '<svg class="chart {}" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
        'focusable="false"><line x1="0" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"></line>{}</svg>',
        css_class,
        label,
        width,
        CHART_HEIGHT,
        width,
        CHART_HEIGHT,
        CHART_HEIGHT - 0.5,
        width,
        CHART_HEIGHT - 0.5,
        COLOUR_AXIS,
        body,
    )


def _height(value: int, top: int) -> int:
    """A bar's height: proportional, but never thinner than 2 px when there is something."""
    if not value or not top:
        return 0
    return max(2, round(value * (CHART_HEIGHT - 2) / top))


def orders_chart(name: str, days: Sequence[Day]) -> SafeString:
    """Bars of orders per day; a day without orders has no bar (its place stays on the axis)."""
    top = max((day.orders for day in days), default=0)
    total = sum(day.orders for day in days)
    bars = []
    for index, day in enumerate(days):
        height = _height(day.orders, top)
        if not height:
            continue
        noun = "order" if day.orders == 1 else "orders"
        bars.append(
            (
                index * (BAR_WIDTH + BAR_GAP),
                CHART_HEIGHT - 1 - height,
                BAR_WIDTH,
                height,
                COLOUR_ORDERS,
                day.day.isoformat(),
                day.orders,
                f"{_day_label(day.day)}: {day.orders} {noun}",
            )
        )
    body = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}" data-day="{}" data-count="{}">'
        "<title>{}</title></rect>",
        bars,
    )
    label = f"Orders per day on {name}, last {len(days)} days: {total} in all"
    if top:
        label += f", at most {top} in a day"
    return _svg(label, "chart-orders", body, len(days))


def health_chart(name: str, days: Sequence[Day]) -> SafeString:
    """Stacked bars of sync runs per day: succeeded (green, below) and failed (red, on top)."""
    top = max((day.ok + day.failed for day in days), default=0)
    ok_total = sum(day.ok for day in days)
    failed_total = sum(day.failed for day in days)
    parts = []
    for index, day in enumerate(days):
        x = index * (BAR_WIDTH + BAR_GAP)
        ok_height = _height(day.ok, top)
        failed_height = _height(day.failed, top)
        title = f"{_day_label(day.day)}: {day.ok} ok, {day.failed} failed"
        bottom = CHART_HEIGHT - 1
        if ok_height:
            parts.append(
                (x, bottom - ok_height, ok_height, COLOUR_OK, "ok", day.day.isoformat(), day.ok, title)
            )
        if failed_height:
            parts.append(
                (
                    x,
                    bottom - ok_height - failed_height,
                    failed_height,
                    COLOUR_FAILED,
                    "failed",
                    day.day.isoformat(),
                    day.failed,
                    title,
                )
            )
    body = format_html_join(
        "",
        '<rect class="bar bar-{4}" x="{0}" y="{1}" width="' + str(BAR_WIDTH) + '" height="{2}" fill="{3}" '
        'data-day="{5}" data-count="{6}"><title>{7}</title></rect>',
        parts,
    )
    label = f"Sync runs per day on {name}, last {len(days)} days: {ok_total} ok, {failed_total} failed"
    return _svg(label, "chart-health", body, len(days))


# --------------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------------


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The signed-in home page. The channel list lived here before: its paging links still work."""
    from channels.health import with_recent_failures
    from channels.views import channels_for_request, page_context

    if "after" in request.GET or "before" in request.GET:
        return HttpResponseRedirect(f"{reverse('channels:list')}?{request.GET.urlencode()}")
    listed = list(
        with_recent_failures(channels_for_request(request).defer("credentials"))[: DASHBOARD_CHANNELS + 1]
    )
    more = len(listed) > DASHBOARD_CHANNELS
    listed = listed[:DASHBOARD_CHANNELS]
    context = page_context(
        request,
        nav="dashboard",
        summaries=summarise(listed),
        more_channels=more,
        days=DASHBOARD_DAYS,
    )
    account = context["account"]
    context.update(progress_context(request, account.pk))
    return render(request, "channels/dashboard.html", context)


@login_required
@require_GET
def dashboard_progress(request: HttpRequest) -> HttpResponse:
    """The dashboard's progress panel alone, for its HTMX poll."""
    from accounts.tenancy import account_for

    context = progress_context(request, account_for(request).pk, wait=wait_param(request))
    return render(request, "channels/_progress.html", context)
