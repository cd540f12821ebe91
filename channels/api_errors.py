"""The API's error shape: always JSON with a ``message``, field errors under ``errors``.

Connector errors carry a message written for the seller; they are mapped to 4xx (the request or the
credentials are wrong) or 502 (the store misbehaved), never to a 500 with a traceback.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from connectors.errors import AuthError, ConnectorError, PermanentError, RateLimited

FIELDS_INVALID = "Some fields are not valid; see errors."


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees as plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _connector_response(exc: ConnectorError) -> Response:
    body: dict[str, Any] = {"message": exc.message, "code": f"store_{exc.code}"}
    headers: dict[str, str] = {}
    if isinstance(exc, AuthError | PermanentError):
        # The request (credentials, URL, this item) is what is wrong: the caller must change it.
        code = status.HTTP_400_BAD_REQUEST
    else:
        # Rate limits, timeouts, 5xx and replies we cannot read: the store failed, not the caller.
        code = status.HTTP_502_BAD_GATEWAY
        if isinstance(exc, RateLimited):
            body["retry_after"] = exc.retry_after
            headers["Retry-After"] = str(int(exc.retry_after))
    return Response(body, status=code, headers=headers)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ConnectorError):
        return _connector_response(exc)
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        # Django's own caps on form bodies (the JSON body cap is checked by ApiGuardMiddleware first).
        return Response(
            {"message": "The request body is too large.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            errors = {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
            first = next(iter(errors.values()), [FIELDS_INVALID])
            message = first[0] if len(errors) == 1 and len(first) == 1 else FIELDS_INVALID
            # A conflict with the account's or the store's state (``ChannelConflict``) is a 409.
            code = getattr(exc, "http_status", status.HTTP_400_BAD_REQUEST)
            kind = "conflict" if code == status.HTTP_409_CONFLICT else "invalid"
            return Response({"message": message, "code": kind, "errors": errors}, status=code)
        return Response({"message": " ".join(exc.messages), "code": "invalid"}, status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django's 500 handling and logging see it
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors if isinstance(errors, list) else [errors]}
        response.data = {"message": FIELDS_INVALID, "code": "invalid", "errors": errors}
    elif isinstance(exc, exceptions.APIException):
        detail = _flatten(exc.detail)
        message = detail if isinstance(detail, str) else FIELDS_INVALID
        response.data = {
            "message": message,
            "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "error",
        }
    return response
