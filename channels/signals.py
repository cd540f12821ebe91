"""A channel gets its schedule row when it is created, so the dispatcher never has to look for
channels without one (it reads due schedule rows only)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from channels.models import SalesChannel


@receiver(post_save, sender=SalesChannel, dispatch_uid="channels.schedule_on_create")
def create_schedule(sender: type[SalesChannel], instance: SalesChannel, created: bool, **_: Any) -> None:
    """Orders due at once: a new channel downloads its orders on the dispatcher's next tick."""
    if created:
        from channels.sync import ensure_schedules

        ensure_schedules([instance])
