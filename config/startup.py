"""Refuse to serve production traffic on the embedded development secrets.

The settings module falls back to fixed development keys so that a fresh clone (``make run``) and the
test suite work without any environment. A real deployment runs with ``DEBUG`` off; there the
entry points (WSGI/ASGI, the Celery worker and beat, ``manage.py``) call
:func:`refuse_insecure_production` before doing anything, so a missing ``SECRET_KEY`` or
``FIELD_ENCRYPTION_KEYS`` stops the process instead of encrypting sellers' store keys with a key
that is published in this repository.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger("storelink.startup")


def insecure_defaults_in_use() -> list[str]:
    """Names of the secrets that fell back to the embedded development value."""
    missing = []
    if settings.SECRET_KEY_IS_DEV_DEFAULT:
        missing.append("SECRET_KEY")
    if settings.FIELD_ENCRYPTION_KEYS_ARE_DEV_DEFAULT:
        missing.append("FIELD_ENCRYPTION_KEYS")
    return missing


def refuse_insecure_production() -> None:
    """Raise in production when a secret is missing; warn loudly in development."""
    missing = insecure_defaults_in_use()
    if not missing:
        return
    if not settings.DEBUG:
        raise ImproperlyConfigured(
            f"{', '.join(missing)} must be set in the environment when DEBUG is off. "
            'Generate an encryption key with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        )
    log.warning(
        "startup.insecure_dev_keys: %s not set; using the PUBLIC development value. "
        "Never run like this with real store credentials.",
        ", ".join(missing),
    )
