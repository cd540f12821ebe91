"""The AUTHORIZE / REMOVE callback 3DCart posts to Storelink's app callback URL.

When a seller clicks *Authorize* (or removes Storelink) in Modules → REST API, 3DCart POSTs::

    {"PublicKey": "...", "TimeStamp": "03-01-2025 09:15:00", "TokenKey": "...",
     "Action": "AUTHORIZE", "SecureURL": "https://demo-store.3dcartstores.com"}

and shows the seller "Server not Responding" unless the answer is HTTP 200. That body is the only
place 3DCart hands over the store's ``SecureURL`` together with its token, and the only notice of a
removal. Nothing in it is signed, and ``PublicKey`` is no secret (every seller who connects a store is
shown it): :func:`parse_callback` checks it only to drop posts meant for another app. What a callback
may change is decided by the address it was posted to and by asking 3DCart itself (the Django side).
This module is pure: it reads and checks the body, and :func:`check_fresh` refuses stale ones.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from connectors.base import ConnectorOptions
from connectors.threedcart.client import PUBLIC_KEY_NAME
from connectors.threedcart.mapping import local_to_utc

ACTIONS = ("AUTHORIZE", "REMOVE")
#: The docs say the callback's TimeStamp is Eastern time.
CALLBACK_ZONE = ZoneInfo("America/New_York")
_TIMESTAMP_FORMATS = ("%m-%d-%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m-%d-%Y %H:%M", "%Y-%m-%dT%H:%M:%S")


class CallbackError(ValueError):
    """The callback cannot be trusted or read; ``code`` says why (answer 4xx, store nothing)."""

    code = "callback"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CallbackNotConfigured(CallbackError):
    """The operator has not configured Storelink's 3DCart app public key."""

    code = "not_configured"


class CallbackKeyMismatch(CallbackError):
    """``PublicKey`` is not Storelink's: the post is for another app, or forged."""

    code = "bad_public_key"


class CallbackStale(CallbackError):
    """``TimeStamp`` is too far from now: an old post replayed, or a clock badly off."""

    code = "stale"


class CallbackUnknownAction(CallbackError):
    code = "unknown_action"


class CallbackMissingField(CallbackError):
    code = "missing_field"


class CallbackBadField(CallbackError):
    code = "bad_field"


@dataclass(frozen=True)
class CallbackEvent:
    """A verified callback. ``token`` is empty only for REMOVE posts that omit it."""

    action: str
    store_url: str
    token: str
    timestamp: datetime

    @property
    def secure_url(self) -> str:
        """The same as ``store_url``: what 3DCart calls it and what the ``SecureURL`` header takes."""
        return self.store_url

    @property
    def authorised(self) -> bool:
        return self.action == "AUTHORIZE"

    @property
    def store_key(self) -> str:
        """The store URL reduced to a host for matching a channel (``www.`` and scheme dropped)."""
        return store_key(self.store_url)

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return (
            f"CallbackEvent(action={self.action!r}, store_url={self.store_url!r}, token='***', "
            f"timestamp={self.timestamp.isoformat()!r})"
        )


def normalise_store_url(value: str) -> str:
    """``SecureURL`` as Storelink stores it: scheme (https when absent) and lower-case host, no
    trailing slash or query. The value 3DCart sends is what its API accepts in the ``SecureURL``
    header, so nothing else is changed."""
    text = str(value or "").strip()
    if not text:
        raise CallbackMissingField("The callback has no SecureURL.")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CallbackBadField(f"The callback's SecureURL {value!r} is not a web address.")
    if parts.username or parts.password or any(ch.isspace() for ch in text):
        raise CallbackBadField(f"The callback's SecureURL {value!r} is not a plain store address.")
    host = parts.hostname.lower()
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{host}{port}{path}"


def store_key(url: str) -> str:
    """A store URL's host without ``www.``, for matching what a seller typed to what 3DCart sent."""
    text = url if "://" in url else f"https://{url}"
    return (urlsplit(text.strip()).hostname or "").lower().removeprefix("www.")


def parse_callback(
    payload: Mapping[str, Any] | bytes | str,
    *,
    options: ConnectorOptions | None = None,
    public_key: str | None = None,
) -> CallbackEvent:
    """Validate a callback body (a dict from a form or JSON; list values as in a QueryDict are fine).

    A raw body (bytes or text) is accepted too: JSON when it looks like JSON, else form-encoded.
    The expected public key comes from ``public_key`` or from
    ``options.app_keys["threedcart_public_key"]``. Member names are matched case-insensitively.
    Raises a :class:`CallbackError` subclass; never returns an unverified event.
    """
    if isinstance(payload, (bytes, str)):
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        looks_json = text.lstrip("\ufeff \r\n\t").startswith(("{", "["))
        content_type = "application/json" if looks_json else "application/x-www-form-urlencoded"
        return parse_callback_body(text, content_type, options=options, public_key=public_key)
    expected = (
        public_key if public_key is not None else (options.app_keys.get(PUBLIC_KEY_NAME) if options else "")
    )
    expected = str(expected or "")
    if not expected:
        raise CallbackNotConfigured("Storelink's 3DCart app public key is not configured.")
    values = {str(key).lower(): _single(value) for key, value in payload.items()}
    sent_key = values.get("publickey", "")
    if not sent_key:
        raise CallbackMissingField("The callback has no PublicKey.")
    if not hmac.compare_digest(sent_key.encode(), expected.encode()):
        raise CallbackKeyMismatch("The callback's PublicKey is not Storelink's app key.")
    action = values.get("action", "").strip().upper()
    if not action:
        raise CallbackMissingField("The callback has no Action.")
    if action not in ACTIONS:
        raise CallbackUnknownAction(f"Unknown callback Action {action!r} (expected AUTHORIZE or REMOVE).")
    store_url = normalise_store_url(values.get("secureurl", ""))
    token = values.get("tokenkey", "").strip()
    if action == "AUTHORIZE" and not token:
        raise CallbackMissingField("The AUTHORIZE callback has no TokenKey.")
    if any(ch.isspace() for ch in token) or len(token) > 256:
        raise CallbackBadField("The callback's TokenKey is not a token.")
    return CallbackEvent(action=action, store_url=store_url, token=token, timestamp=_timestamp(values))


def parse_callback_body(
    body: bytes | str,
    content_type: str = "application/json",
    *,
    options: ConnectorOptions | None = None,
    public_key: str | None = None,
) -> CallbackEvent:
    """:func:`parse_callback` for a raw request body (JSON, or form-encoded)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "application/x-www-form-urlencoded" in content_type.lower():
        payload: Any = parse_qs(text, keep_blank_values=True)
    else:
        try:
            payload = json.loads(text.lstrip("\ufeff") or "{}")
        except ValueError:
            raise CallbackBadField("The callback body is not JSON.") from None
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, Mapping):
        raise CallbackBadField("The callback body is not a JSON object.")
    return parse_callback(payload, options=options, public_key=public_key)


#: How far a callback's TimeStamp may be from Storelink's clock (either way) to be believed fresh.
MAX_CLOCK_SKEW = timedelta(minutes=10)


def check_fresh(event: CallbackEvent, *, now: datetime, max_skew: timedelta = MAX_CLOCK_SKEW) -> None:
    """Refuse a callback whose TimeStamp is more than ``max_skew`` from ``now`` (an aware datetime)."""
    drift = abs(event.timestamp - now)
    if drift > max_skew:
        minutes = int(drift.total_seconds() // 60)
        raise CallbackStale(
            f"The callback's TimeStamp is {minutes} minutes away from the current time (at most "
            f"{int(max_skew.total_seconds() // 60)} are accepted); it is refused as stale or replayed."
        )


def callback_reply(postback_url: str = "") -> dict[str, str]:
    """The JSON to answer with (HTTP 200); 3DCart opens ``PostBackURL`` for the seller if given."""
    return {"PostBackURL": postback_url} if postback_url else {}


def _single(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def _timestamp(values: Mapping[str, str]) -> datetime:
    text = values.get("timestamp", "").strip()
    if not text:
        raise CallbackMissingField("The callback has no TimeStamp.")
    for pattern in _TIMESTAMP_FORMATS:
        try:
            local = datetime.strptime(text, pattern)  # noqa: DTZ007 - Eastern time by 3DCart's docs
        except ValueError:
            continue
        return local_to_utc(local, CALLBACK_ZONE).astimezone(UTC)
    raise CallbackBadField(f"The callback's TimeStamp {text!r} is not a date.")
