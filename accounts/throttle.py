"""Login throttling: cache counters of failed logins per (e-mail, client) and per client alone.

* (e-mail, client address): a few failures block that e-mail from that client only, so nobody can
  lock a seller out by hammering their address from somewhere else;
* client address alone: a larger budget, so one client cannot spray passwords across many e-mail
  addresses (each of which would stay under its own limit).

The client address is ``REMOTE_ADDR``, or, only when ``TRUSTED_PROXY_COUNT`` says how many reverse
proxies stand in front of Storelink, the address the outermost of them added to X-Forwarded-For.
Without that setting the header is ignored: any client can write it. Counters live in the cache
(Redis in production) and expire after the window; a successful login resets the (e-mail, client)
counter only, so logging in to one's own account does not refill a sprayer's budget.

The same counters limit sign-up and password-reset e-mails per client and per recipient.
"""

from __future__ import annotations

import hashlib
import ipaddress
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


class Block(StrEnum):
    """Why a login is refused without looking at the password."""

    ACCOUNT = "account"  # this e-mail from this client failed too often
    CLIENT = "client"  # this client failed too often, whatever the e-mail


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest | None) -> str:
    """The client's IP address, from X-Forwarded-For only behind configured trusted proxies.

    Each trusted proxy appends the address it received the request from, so with N proxies the
    client is the N-th entry from the right; entries further left were written by the client.
    """
    if request is None:
        return "-"
    remote = str(request.META.get("REMOTE_ADDR") or "-")
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    candidate = hops[-proxies] if len(hops) >= proxies else hops[0]
    return _valid_ip(candidate) or remote


def _digest(material: str) -> str:
    return hashlib.sha256(material.encode()).hexdigest()


def _account_key(email: str, request: HttpRequest | None) -> str:
    return "login-fail:" + _digest(f"{(email or '').strip().lower()}|{client_address(request)}")


def _client_key(request: HttpRequest | None) -> str:
    return "login-fail-client:" + _digest(client_address(request))


def login_block(request: HttpRequest | None, email: str) -> Block | None:
    """Why this login must be refused before the password is checked, or None."""
    if int(cache.get(_client_key(request), 0)) >= settings.LOGIN_THROTTLE_CLIENT_ATTEMPTS:
        return Block.CLIENT
    if int(cache.get(_account_key(email, request), 0)) >= settings.LOGIN_THROTTLE_ATTEMPTS:
        return Block.ACCOUNT
    return None


def is_login_blocked(request: HttpRequest | None, email: str) -> bool:
    """True when this e-mail from this client, or this client at all, has failed too often."""
    return login_block(request, email) is not None


def _count(key: str) -> None:
    window = settings.LOGIN_THROTTLE_WINDOW
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window)


def record_login_failure(request: HttpRequest | None, email: str) -> None:
    _count(_account_key(email, request))
    _count(_client_key(request))


def reset_login_failures(request: HttpRequest | None, email: str) -> None:
    cache.delete(_account_key(email, request))


def allow_account_email(request: HttpRequest | None, email: str) -> bool:
    """Count one sign-up or password-reset e-mail; False once this client or this address had enough.

    The pages answer the same either way (they must not tell whether an address has an account),
    so a refused e-mail is simply not sent: nobody can use Storelink to flood an inbox, from one
    client or from many.
    """
    client_key = "account-mail-client:" + _digest(client_address(request))
    address_key = "account-mail-to:" + _digest((email or "").strip().lower())
    client_count, address_count = int(cache.get(client_key, 0)), int(cache.get(address_key, 0))
    if (
        client_count >= settings.ACCOUNT_EMAIL_CLIENT_LIMIT
        or address_count >= settings.ACCOUNT_EMAIL_ADDRESS_LIMIT
    ):
        return False
    _count(client_key)
    _count(address_key)
    return True
