"""Endpoints that stores call (no login, no CSRF token: the store is not a browser session).

``POST /callbacks/threedcart/``: 3DCart posts ``{"PublicKey", "TokenKey", "Action", "SecureURL",
"TimeStamp"}`` when a merchant authorises or removes Storelink's app. It must get a 200 quickly or
the merchant sees "Server not Responding". Anything without our public key gets 403.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels.services import CallbackRefused, apply_threedcart_callback

log = logging.getLogger("storelink.callbacks")

MAX_CALLBACK_BYTES = 16 * 1024


@csrf_exempt
@require_POST
def threedcart_callback(request: HttpRequest) -> JsonResponse:
    if len(request.body) > MAX_CALLBACK_BYTES:
        return JsonResponse({"message": "Callback body too large."}, status=413)
    form_types = ("application/x-www-form-urlencoded", "multipart/form-data")
    body = request.POST if request.content_type in form_types else request.body
    try:
        changed = apply_threedcart_callback(body)
    except CallbackRefused as exc:
        log.warning("threedcart.callback.refused client=%s reason=%s", request.META.get("REMOTE_ADDR"), exc)
        return JsonResponse({"message": "Callback refused."}, status=403)
    return JsonResponse({"ok": True, "channels": len(changed)})
