"""System checks for deployment settings the channel code relies on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from channels.fields import current_cipher


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    try:
        current_cipher()
    except Exception as exc:
        problems.append(Error(str(exc), id="storelink.E001"))
    if settings.FIELD_ENCRYPTION_KEYS_ARE_DEV_DEFAULT:
        problems.append(
            Error(
                "FIELD_ENCRYPTION_KEYS is the public development key; store credentials are not protected.",
                hint="Set FIELD_ENCRYPTION_KEYS to a key from Fernet.generate_key().",
                id="storelink.E002",
            )
        )
    if settings.ALLOW_PRIVATE_STORE_HOSTS:
        problems.append(
            Warning(
                "ALLOW_PRIVATE_STORE_HOSTS is on: sellers can point channels at internal addresses.",
                id="storelink.W001",
            )
        )
    return problems
