"""Celery tasks for stock and prices: take a channel id, run the job through the sync engine.

The names are fixed (the dispatcher sends them by name). Everything else — the lease, the SyncRun,
the connector, what an error means, retries with back-off — belongs to
:func:`channels.sync.run_job_task`; the work itself to :mod:`inventory.push`.

One thing is added here, for freshness: a product change that arrives while the channel's push is
already running finds the lease taken. The engine then leaves the job due for the dispatcher's next
tick (up to 30 s away); instead, the task tries again a second later, and a run that finishes
looks whether a request came in meanwhile and, if so, runs once more. A seller's change therefore
reaches the store within seconds even when changes come in bursts.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from channels.models import ChannelSchedule, JobLease, SyncJob
from channels.sync import DUE_FIELDS, MAX_TASK_RETRIES, Work, run_job_task
from inventory.push import sync_prices, sync_stock

log = logging.getLogger("storelink.inventory")

#: How often a task whose channel is busy tries again before leaving it to the dispatcher.
BUSY_RETRIES = 10
BUSY_RETRY_SECONDS = 1.0
#: Runs one task may chain for requests that arrived while it was running.
FOLLOW_UPS = 3


def _lease_busy(channel_id: str, job: str) -> bool:
    return (
        JobLease.objects.filter(channel_id=channel_id, job=job, expires_at__gt=timezone.now())
        .exclude(holder="")
        .exists()
    )


def _claim_request(channel_id: str, job: str) -> bool:
    """Take a request left as a due time while we ran (conditional UPDATE: one taker only)."""
    field = DUE_FIELDS[job]
    return bool(
        ChannelSchedule.objects.filter(pk=channel_id, **{f"{field}__lte": timezone.now()}).update(
            **{field: None}
        )
    )


def run_push(task: Any, channel_id: str, job: str, work: Work) -> None:
    """Run the job; retry shortly while another run holds the channel; chain a follow-up run for
    requests that arrived during this one.

    A busy channel is not an error. The engine has already left the job due, so the run in
    progress (its follow-up) or the dispatcher runs it after the holder: the short retries are only
    for freshness. They name their own limit, because ``max_retries=None`` means the task's default
    (6), not "unlimited", and the seventh busy retry would end as a ``MaxRetriesExceededError``
    traceback. Once they are spent the task simply ends.
    """
    for _ in range(FOLLOW_UPS + 1):
        run = run_job_task(task, channel_id, job, work)
        if run is None:
            if not _lease_busy(channel_id, job):
                return
            if (task.request.retries or 0) < BUSY_RETRIES:
                raise task.retry(countdown=BUSY_RETRY_SECONDS, max_retries=BUSY_RETRIES)
            log.info("inventory.push.left_due channel=%s job=%s reason=lease_busy", channel_id, job)
            return
        if not _claim_request(channel_id, job):
            return


@shared_task(name="inventory.tasks.push_stock", bind=True, ignore_result=True, max_retries=MAX_TASK_RETRIES)
def push_stock(self: Any, channel_id: str) -> None:
    """Push available quantities that changed (re-reading listings first when they are stale)."""
    run_push(self, channel_id, SyncJob.STOCK, sync_stock)


@shared_task(name="inventory.tasks.push_prices", bind=True, ignore_result=True, max_retries=MAX_TASK_RETRIES)
def push_prices(self: Any, channel_id: str) -> None:
    """Push channel prices that changed (re-reading listings first when they are stale)."""
    run_push(self, channel_id, SyncJob.PRICES, sync_prices)
