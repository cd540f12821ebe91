"""Celery tasks for orders: thin wrappers that take a channel id and run the job through
:func:`channels.sync.run_job_task` (lease, SyncRun, error handling, retries with back-off)."""

from __future__ import annotations

from celery import shared_task

from channels import sync
from channels.models import SyncJob
from orders import services


@shared_task(
    name="orders.tasks.download_orders", bind=True, max_retries=sync.MAX_TASK_RETRIES, ignore_result=True
)
def download_orders(self, channel_id: str) -> str | None:
    """Download new and changed orders of one channel since its checkpoint."""
    run = sync.run_job_task(self, channel_id, SyncJob.ORDERS, services.download_orders)
    return str(run.pk) if run else None


@shared_task(
    name="orders.tasks.confirm_shipments", bind=True, max_retries=sync.MAX_TASK_RETRIES, ignore_result=True
)
def confirm_shipments(self, channel_id: str) -> str | None:
    """Confirm the channel's pending shipments on the store."""
    run = sync.run_job_task(self, channel_id, SyncJob.SHIPMENTS, services.confirm_pending_shipments)
    return str(run.pk) if run else None
