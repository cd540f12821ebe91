"""Login throttling: a cache counter of failed logins per e-mail address and client address.

Keyed on both so an attacker cannot lock a seller out from everywhere by hammering their address,
and one client cannot spray passwords across many addresses without each address counting. The
counter lives in the cache (Redis in production), expires after the window, and resets on success.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "-"
    return str(request.META.get("REMOTE_ADDR") or "-")


def _key(email: str, request: HttpRequest | None) -> str:
    material = f"{(email or '').strip().lower()}|{client_address(request)}"
    return "login-fail:" + hashlib.sha256(material.encode()).hexdigest()


def is_login_blocked(request: HttpRequest | None, email: str) -> bool:
    """True when this e-mail from this client has failed too often; the UI can say so."""
    return int(cache.get(_key(email, request), 0)) >= settings.LOGIN_THROTTLE_ATTEMPTS


def record_login_failure(request: HttpRequest | None, email: str) -> None:
    key = _key(email, request)
    window = settings.LOGIN_THROTTLE_WINDOW
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window)


def reset_login_failures(request: HttpRequest | None, email: str) -> None:
    cache.delete(_key(email, request))
