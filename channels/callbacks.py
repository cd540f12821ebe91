"""Endpoints that stores call (no login, no CSRF token: the store is not a browser session).

``POST /callbacks/threedcart/<secret>/``: 3DCart posts ``{"PublicKey", "TokenKey", "Action",
"SecureURL", "TimeStamp"}`` when a merchant authorises or removes Storelink's app. Each 3DCart
channel has its own address (shown only to its account); :mod:`channels.threedcart_handoff`
decides what a post there may change, and the answer's status says what happened: 200 done, 400
unreadable, 403 not for Storelink's app or stale, 404 no such address, 409 not applicable to the
channel now (already used, not waiting, a REMOVE while 3DCart still accepts the token, a replay),
422 the token or store does not belong to the channel, 503 3DCart could not be asked.

``POST /callbacks/threedcart/`` (the address without a secret) changes nothing and says so.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels.threedcart_handoff import receive_callback

log = logging.getLogger("storelink.callbacks")

MAX_CALLBACK_BYTES = 16 * 1024


@csrf_exempt
@require_POST
def threedcart_callback(request: HttpRequest) -> JsonResponse:
    """The shared address: it cannot tell which channel a post is for, so it changes nothing."""
    log.warning("threedcart.callback.no_address client=%s", request.META.get("REMOTE_ADDR"))
    return JsonResponse(
        {
            "message": "This address changes nothing: every 3DCart channel in Storelink has its own "
            "callback address, shown on the channel's page."
        },
        status=404,
    )


@csrf_exempt
@require_POST
def threedcart_channel_callback(request: HttpRequest, secret: str) -> JsonResponse:
    if len(request.body) > MAX_CALLBACK_BYTES:
        return JsonResponse({"message": "Callback body too large."}, status=413)
    form_types = ("application/x-www-form-urlencoded", "multipart/form-data")
    body = request.POST if request.content_type in form_types else request.body
    outcome = receive_callback(secret, body, client=str(request.META.get("REMOTE_ADDR", "")))
    reply: dict[str, str] = {"message": outcome.message, "code": outcome.code}
    if outcome.applied and outcome.code == "authorised" and outcome.channel is not None:
        # 3DCart opens PostBackURL for the merchant: the channel's page (behind Storelink's login).
        reply["PostBackURL"] = request.build_absolute_uri(
            reverse("channels:detail", args=[outcome.channel.pk])
        )
    return JsonResponse(reply, status=outcome.status)
