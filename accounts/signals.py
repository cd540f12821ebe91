"""Count failed logins and reset the count on success (see :mod:`accounts.throttle`)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.throttle import client_address, record_login_failure, reset_login_failures

log = logging.getLogger("storelink.accounts")


@receiver(user_login_failed)
def _count_failure(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    email = str(credentials.get("username") or credentials.get("email") or "")
    record_login_failure(request, email)
    log.info("auth.login_failed client=%s", client_address(request))


@receiver(user_logged_in)
def _reset_failures(sender: Any, request: Any, user: Any, **_: Any) -> None:
    reset_login_failures(request, user.email)
