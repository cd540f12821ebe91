"""Celery tasks for orders: thin wrappers that take a channel id and run the job through
:func:`channels.sync.run_job_task` (lease, SyncRun, error handling, retries with back-off)."""

from __future__ import annotations

from celery import shared_task

from channels import sync
from channels.models import SyncJob
from orders import download, shipments

#: The order job's work: the store's quick check first, then the download when it says so.
_poll = sync.poll_orders(download.download_orders)


@shared_task(
    name="orders.tasks.download_orders", bind=True, max_retries=sync.MAX_TASK_RETRIES, ignore_result=True
)
def download_orders(self, channel_id: str) -> str | None:
    """Poll one channel's store for orders: a quick "anything new?" first, the download if so."""
    run = sync.run_job_task(self, channel_id, SyncJob.ORDERS, _poll)
    return str(run.pk) if run else None


@shared_task(
    name="orders.tasks.confirm_shipments", bind=True, max_retries=sync.MAX_TASK_RETRIES, ignore_result=True
)
def confirm_shipments(self, channel_id: str) -> str | None:
    """Confirm the channel's pending shipments on the store."""
    run = sync.run_job_task(self, channel_id, SyncJob.SHIPMENTS, shipments.confirm_pending_shipments)
    return str(run.pk) if run else None
