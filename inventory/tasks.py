"""Celery tasks for stock and prices: take a channel id, run the job through the sync engine.

The names are fixed (the dispatcher sends them by name). Everything else — the lease, the SyncRun,
the connector, what an error means, retries with back-off — belongs to
:func:`channels.sync.run_job_task`; the work itself to :mod:`inventory.services`.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from channels.models import SyncJob
from channels.sync import MAX_TASK_RETRIES, run_job_task
from inventory import services


@shared_task(name="inventory.tasks.push_stock", bind=True, ignore_result=True, max_retries=MAX_TASK_RETRIES)
def push_stock(self: Any, channel_id: str) -> None:
    """Push available quantities that changed (re-reading listings first when they are stale)."""
    run_job_task(self, channel_id, SyncJob.STOCK, services.sync_stock)


@shared_task(name="inventory.tasks.push_prices", bind=True, ignore_result=True, max_retries=MAX_TASK_RETRIES)
def push_prices(self: Any, channel_id: str) -> None:
    """Push channel prices that changed (re-reading listings first when they are stale)."""
    run_job_task(self, channel_id, SyncJob.PRICES, services.sync_prices)
