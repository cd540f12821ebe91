"""Work queued or running now, with its counts so far, for the dashboard and the channel page.

A worker saves a run's counts after every page of work, so a first import of thousands of orders
or a full stock compare shows how far it got. The panel polls itself (HTMX, every 2 s) while a run
is queued or running, or for a while after "Sync now" asked for one, and stops by itself: the
fragment it gets back without a run to watch has no trigger.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from channels.models import SalesChannel, SyncJob, SyncRun, SyncState

#: How long a finished run stays in the progress panel, so the seller sees how it ended.
FINISHED_SHOWN_FOR = timedelta(seconds=90)
#: Polls a progress panel makes after "Sync now" while no run has started yet (2 s apart).
WAIT_POLLS = 30


def progress_runs(account_id: Any, channel_id: Any = None, now: datetime | None = None) -> list[SyncRun]:
    """Runs queued or running now, and those that finished in the last moments (one query)."""
    now = now or timezone.now()
    runs = SyncRun.objects.filter(account_id=account_id).filter(
        Q(state__in=[SyncState.QUEUED, SyncState.RUNNING]) | Q(finished_at__gte=now - FINISHED_SHOWN_FOR)
    )
    runs = runs.filter(channel__removed_at__isnull=True)
    if channel_id is not None:
        runs = runs.filter(channel_id=channel_id)
    return list(runs.exclude(job=SyncJob.TEST).select_related("channel").order_by("-created_at")[:20])


def progress_context(
    request: HttpRequest, account_id: Any, channel: SalesChannel | None = None, wait: int = 0
) -> dict[str, Any]:
    """What the progress panel needs; it polls while work is running or it was asked to wait."""
    runs = progress_runs(account_id, channel.pk if channel is not None else None)
    active = any(run.state in (SyncState.QUEUED, SyncState.RUNNING) for run in runs)
    wait = max(0, min(wait, WAIT_POLLS))
    if channel is not None:
        url = reverse("channels:progress", args=[channel.pk])
    else:
        url = reverse("dashboard_progress")
    polling = active or wait > 0
    next_wait = 0 if active else max(0, wait - 1)
    finished = ""
    if request.headers.get("HX-Request") == "true" and not active and runs and wait == 0:
        # the poll that follows the last running one: say how the work ended
        outcomes = [f"{run.get_job_display()} {run.get_state_display().lower()}" for run in runs]
        finished = "Finished: " + ", ".join(outcomes) + "."
    return {
        "finished_announcement": finished,
        "progress_runs": runs,
        "progress_active": active,
        "progress_polling": polling,
        "progress_url": f"{url}?wait={next_wait}" if next_wait else url,
        "progress_channel": channel,
    }


def wait_param(request: HttpRequest) -> int:
    """The poll's remaining waits (``?wait=``); anything unreadable is no wait."""
    try:
        return int(request.GET.get("wait", "0"))
    except ValueError:
        return 0


@login_required
@require_GET
def channel_progress(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """One channel's progress panel alone, for its HTMX poll (another account's channel is a 404)."""
    from channels.views import channel_for_request

    channel = channel_for_request(request, channel_id)
    context = progress_context(request, channel.account_id, channel, wait=wait_param(request))
    return render(request, "channels/_progress.html", context)
