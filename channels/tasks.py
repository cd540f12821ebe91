"""Celery tasks for channels: thin wrappers that take ids, re-read the row, call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from channels import services
from channels.models import SalesChannel
from connectors.errors import ConnectorError

log = logging.getLogger("storelink.channels")


@shared_task(name="channels.check_connection", ignore_result=True)
def check_connection(channel_id: str) -> None:
    """Test a channel's stored credentials in the background (after a 3DCart token arrives ...)."""
    channel = SalesChannel.objects.live().filter(pk=channel_id).select_related("account").first()
    if channel is None:
        return
    try:
        services.check_channel_connection(channel, actor=None)
    except ConnectorError as exc:
        # The outcome is on the channel row and its SyncRun; the task itself has nothing to retry.
        log.info("channel.check_connection.failed channel=%s code=%s", channel_id, exc.code)


# --------------------------------------------------------------------------------------------------
# Sync engine beat entries (schedules are django-celery-beat rows, see migration 0003)
# --------------------------------------------------------------------------------------------------


@shared_task(name="channels.tasks.dispatch_due_jobs", ignore_result=True)
def dispatch_due_jobs() -> int:
    """Beat tick (every 10 s): enqueue the jobs that are due on every enabled, healthy channel."""
    from channels import sync

    return len(sync.dispatch_due_jobs())


@shared_task(name="channels.tasks.sweep_stale_runs", ignore_result=True)
def sweep_stale_runs() -> int:
    """Fail runs whose worker died and make their jobs due again; re-arm stuck shipments."""
    from channels import sync

    return sync.sweep_stale_runs()


@shared_task(name="channels.tasks.reconcile_inventory", ignore_result=True)
def reconcile_inventory() -> int:
    """Hourly: a full stock and price push on every channel that has them switched on."""
    from channels import sync

    return sync.reconcile_inventory()


@shared_task(name="channels.tasks.prune_sync_runs", ignore_result=True)
def prune_sync_runs() -> int:
    """Daily: drop runs older than ``SYNC_RUN_RETENTION_DAYS`` (each job's newest stays)."""
    from channels import sync

    return sync.prune_sync_runs()
