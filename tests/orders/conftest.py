from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_store_hosts(settings):
    """Sandbox stores live on 127.0.0.1; the deployment switch that allows that is on in tests."""
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_BROKER_URL = "memory://"
