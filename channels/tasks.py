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
