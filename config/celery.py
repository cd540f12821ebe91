"""The Celery app: settings from Django (``CELERY_*``), tasks found in each app's ``tasks.py``."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("storelink")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _refuse_insecure_production(**_: Any) -> None:
    """Workers decrypt store credentials: they must not start on the public development key."""
    from config.startup import refuse_insecure_production

    refuse_insecure_production()
