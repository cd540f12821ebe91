"""3DCart's token hand-off: what a callback may change, and how Storelink checks it first.

3DCart posts ``{"PublicKey", "TimeStamp", "TokenKey", "Action", "SecureURL"}`` when a merchant
authorises Storelink's app (AUTHORIZE) or removes it (REMOVE). Nothing in that body is secret or
signed: the public key is shown to every seller, a store URL is public, and a token can be stolen or
made up. So none of it decides which channel is touched. Instead:

- every waiting 3DCart channel has its own callback address (:class:`~channels.models.CallbackAddress`),
  an unguessable secret only its account is shown; a post anywhere else changes nothing;
- an address hands over one token, and only while its channel is waiting for one (``pending``);
- the callback's ``SecureURL`` goes through the same store-URL rules as the wizard and must name the
  channel's own store; a TimeStamp far from now, or not newer than the last one received at the
  address, is refused (stale or replayed);
- a token is stored only after a read-only call to 3DCart with it opened that store;
- a REMOVE is believed only when 3DCart itself now refuses the stored token; otherwise it is
  recorded and ignored (a forged REMOVE must not disconnect a working channel);
- every outcome is answered with an HTTP status that says what happened, and every callback that
  reached a channel's address, done or refused, is in that channel's audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from channels.models import CallbackAddress, ConnectionState, SalesChannel
from connectors.base import StoreFacts
from connectors.errors import AuthError, ConnectorError

log = logging.getLogger("storelink.callbacks")

PLATFORM = "threedcart"

REMOVED_REASON = (
    "Storelink's app was removed in your 3DCart admin (Modules > REST API), and 3DCart now refuses "
    "the stored token. Add the app again with Storelink's public key and click Authorize, or "
    "reauthorise this channel with a new token."
)


@dataclass(frozen=True)
class CallbackOutcome:
    """What the callback view answers: an HTTP status that says what happened, and why in words."""

    status: int
    message: str
    code: str
    channel: SalesChannel | None = None

    @property
    def applied(self) -> bool:
        return self.status == 200


# --------------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------------


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def open_callback_address(channel: SalesChannel) -> str:
    """The secret part of the channel's callback address that can still hand over a token.

    Made on first use (the channel page, the reauthorise page) and kept until a token arrives
    through it; after that a new one is made for the next hand-off. Only 3DCart channels have one.
    """
    if channel.platform != PLATFORM:
        raise ValueError("Only 3DCart channels have a callback address.")
    address = channel.callback_addresses.filter(authorised_at__isnull=True).order_by("-created_at").first()
    if address is not None:
        secret = str((address.secret or {}).get("secret", ""))
        if secret:
            return secret
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    CallbackAddress.objects.create(
        account_id=channel.account_id,
        channel=channel,
        digest=secret_digest(secret),
        secret={"secret": secret},
    )
    return secret


def callback_path(channel: SalesChannel) -> str:
    """``/callbacks/threedcart/<secret>/`` for this channel (the page makes it absolute)."""
    return reverse("threedcart-channel-callback", args=[open_callback_address(channel)])


# --------------------------------------------------------------------------------------------------
# The callback
# --------------------------------------------------------------------------------------------------


def receive_callback(
    secret: str,
    body: bytes | str | Mapping[str, Any],
    *,
    client: str = "",
    now: datetime | None = None,
) -> CallbackOutcome:
    """Act on a callback posted to ``/callbacks/threedcart/<secret>/``; never raises for bad input."""
    from connectors.threedcart import callback as wire

    address = _address_for(secret)
    if address is None:
        log.warning("threedcart.callback.unknown_address client=%s", client)
        return CallbackOutcome(
            404, "This is not a callback address of any Storelink channel.", "unknown_address"
        )
    channel = address.channel
    if channel.is_removed or channel.platform != PLATFORM:
        log.warning("threedcart.callback.removed_channel channel=%s client=%s", channel.pk, client)
        return CallbackOutcome(
            404, "This is not a callback address of any Storelink channel.", "unknown_address"
        )

    def refuse(status: int, code: str, message: str, action: str = "") -> CallbackOutcome:
        _audit(
            channel,
            "channel.threedcart_callback_refused",
            action=action,
            code=code,
            status=status,
            reason=message,
            client=client,
        )
        log.warning(
            "threedcart.callback.refused channel=%s action=%s code=%s status=%d client=%s",
            channel.pk,
            action,
            code,
            status,
            client,
        )
        return CallbackOutcome(status, message, code, channel)

    public_key = django_settings.THREEDCART_PUBLIC_KEY
    if not public_key:
        return refuse(
            503, "not_configured", "3DCart is not configured on this Storelink (no app public key)."
        )
    try:
        event = wire.parse_callback(body, public_key=public_key)
    except wire.CallbackKeyMismatch as exc:
        return refuse(403, exc.code, exc.message)
    except wire.CallbackError as exc:
        return refuse(400, exc.code, exc.message)
    moment = now or timezone.now()
    try:
        wire.check_fresh(event, now=moment)
    except wire.CallbackStale as exc:
        return refuse(403, exc.code, exc.message, event.action)
    # Claim the TimeStamp before anything slow happens: the same post sent twice (or raced) is a replay.
    with transaction.atomic():
        locked = CallbackAddress.objects.select_for_update().get(pk=address.pk)
        if locked.last_timestamp is not None and event.timestamp <= locked.last_timestamp:
            replay = True
        else:
            replay = False
            locked.last_timestamp = event.timestamp
            locked.save(update_fields=["last_timestamp"])
    if replay:
        return refuse(
            409,
            "replayed",
            "A callback with this TimeStamp (or a later one) was already received here.",
            event.action,
        )
    store_url, problem = _same_store(channel, event.store_url)
    if problem:
        return refuse(400 if store_url is None else 422, "bad_store_url", problem, event.action)
    assert store_url is not None
    if event.action == "AUTHORIZE":
        return _authorize(channel, address, event.token, store_url, refuse, client)
    return _remove(channel, refuse, client)


def _address_for(secret: str) -> CallbackAddress | None:
    if not secret or len(secret) > 200:
        return None
    return CallbackAddress.objects.select_related("channel").filter(digest=secret_digest(secret)).first()


def _same_store(channel: SalesChannel, callback_url: str) -> tuple[str | None, str]:
    """The callback's store URL after the wizard's rules, and a problem when it is not the channel's.

    ``(None, problem)``: the URL breaks the rules. ``(url, problem)``: a valid URL of another store
    (a different host or port, or a path where a store address has none).
    """
    from channels.services import clean_store_url

    try:
        cleaned = clean_store_url(callback_url)
    except ValidationError as exc:
        return None, "The callback's SecureURL is not an acceptable store address: " + " ".join(
            _messages(exc)
        )
    theirs, ours = urlsplit(cleaned), urlsplit(channel.store_url)
    if _origin(theirs) != _origin(ours) or theirs.path.strip("/") or theirs.query:
        return cleaned, (
            f"The callback is for the store {cleaned}, but this channel is for {channel.store_url}; "
            "nothing was changed."
        )
    return f"{theirs.scheme}://{theirs.netloc.lower()}", ""


def _origin(parts: Any) -> tuple[str, str, int]:
    host = (parts.hostname or "").lower().removeprefix("www.")
    return parts.scheme.lower(), host, parts.port or (443 if parts.scheme.lower() == "https" else 80)


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "message_dict"):
        return [m for messages in exc.message_dict.values() for m in messages]
    return list(exc.messages)


def _prove(channel: SalesChannel, store_url: str, token: str) -> StoreFacts:
    """A read-only 3DCart call with ``token`` for ``store_url``; raises the connector's errors."""
    from channels.services import build_connector_for

    connector = build_connector_for(PLATFORM, store_url, {"access_token": token}, channel.settings or {})
    try:
        return connector.test_connection()
    finally:
        connector.close()


def _authorize(
    channel: SalesChannel,
    address: CallbackAddress,
    token: str,
    store_url: str,
    refuse: Any,
    client: str,
) -> CallbackOutcome:
    if address.authorised_at is not None:
        return refuse(
            409, "address_used", "This callback address has already handed over a token.", "AUTHORIZE"
        )
    if channel.connection_state != ConnectionState.PENDING:
        return refuse(
            409,
            "not_pending",
            "This channel is not waiting for a token; reauthorise it in Storelink first.",
            "AUTHORIZE",
        )
    try:
        facts = _prove(channel, store_url, token)
    except AuthError:
        return refuse(
            422,
            "token_refused",
            f"3DCart does not accept this token for the store {store_url}; nothing was stored.",
            "AUTHORIZE",
        )
    except ConnectorError as exc:
        return refuse(
            503,
            "not_verified",
            f"Storelink could not check the token with 3DCart ({exc.code}); nothing was stored. "
            "Click Authorize again in a few minutes.",
            "AUTHORIZE",
        )
    from channels.services import store_facts_to_dict

    with transaction.atomic():
        fresh = SalesChannel.objects.select_for_update().get(pk=channel.pk)
        used = CallbackAddress.objects.select_for_update().get(pk=address.pk)
        if fresh.is_removed or fresh.connection_state != ConnectionState.PENDING or used.authorised_at:
            state_changed = True
        else:
            state_changed = False
            fresh.credentials = {**(fresh.credentials or {}), "access_token": token}
            fresh.store_url = store_url
            fresh.connection_state = ConnectionState.OK
            fresh.last_error = fresh.last_error_job = ""
            fresh.store_facts = store_facts_to_dict(facts)
            fresh.last_success_at = timezone.now()
            fresh.save(
                update_fields=[
                    "credentials",
                    "store_url",
                    "connection_state",
                    "last_error",
                    "last_error_job",
                    "store_facts",
                    "last_success_at",
                    "updated_at",
                ]
            )
            used.authorised_at = timezone.now()
            used.save(update_fields=["authorised_at"])
            _audit(fresh, "channel.threedcart_authorised", store_url=store_url, client=client)
    if state_changed:
        return refuse(409, "not_pending", "This channel stopped waiting for a token meanwhile.", "AUTHORIZE")
    log.info("threedcart.callback.authorised channel=%s", channel.pk)
    return CallbackOutcome(200, "The token opens the store; the channel is connected.", "authorised", fresh)


def _remove(channel: SalesChannel, refuse: Any, client: str) -> CallbackOutcome:
    token = str((channel.credentials or {}).get("access_token", "") or "")
    if channel.connection_state not in (ConnectionState.OK, ConnectionState.ERROR) or not token:
        return refuse(
            409, "not_connected", "This channel is not connected; there is nothing to remove.", "REMOVE"
        )
    try:
        _prove(channel, channel.store_url, token)
    except AuthError:
        pass  # 3DCart itself refuses the token now: the removal is real
    except ConnectorError as exc:
        return refuse(
            503,
            "not_verified",
            f"Storelink could not ask 3DCart whether the token still works ({exc.code}); the channel "
            "was left as it is.",
            "REMOVE",
        )
    else:
        return refuse(
            409,
            "token_still_valid",
            "3DCart still accepts the stored token, so the removal was not believed; the channel was "
            "left as it is.",
            "REMOVE",
        )
    with transaction.atomic():
        fresh = SalesChannel.objects.select_for_update().get(pk=channel.pk)
        if fresh.is_removed or fresh.credentials.get("access_token") != token:
            changed = False  # reauthorised with a new token meanwhile: that one was not checked
        else:
            changed = True
            fresh.credentials = {**(fresh.credentials or {}), "access_token": ""}
            fresh.connection_state = ConnectionState.NEEDS_REAUTH
            fresh.last_error, fresh.last_error_job = REMOVED_REASON, ""
            fresh.save(
                update_fields=[
                    "credentials",
                    "connection_state",
                    "last_error",
                    "last_error_job",
                    "updated_at",
                ]
            )
            _audit(fresh, "channel.threedcart_removed", reason=REMOVED_REASON, client=client)
    if not changed:
        return refuse(
            409, "token_changed", "The channel's token changed meanwhile; nothing was removed.", "REMOVE"
        )
    from channels import sync

    transaction.on_commit(lambda: sync.notify_needs_reauth(fresh.pk, REMOVED_REASON))
    log.warning("threedcart.callback.removed channel=%s", channel.pk)
    return CallbackOutcome(
        200, "3DCart refuses the token; the channel needs reauthorising.", "removed", fresh
    )


def _audit(channel: SalesChannel, event: str, **detail: Any) -> None:
    from channels.models import ChannelEvent

    ChannelEvent.objects.create(account_id=channel.account_id, channel=channel, action=event, detail=detail)
