"""Request guards that no view can forget, and JSON errors for every answer under ``/api/``.

- A body larger than the endpoint accepts is refused with a JSON 413 before anything reads it.
  The limit is ``DATA_UPLOAD_MAX_MEMORY_SIZE`` unless the view method declares its own with
  :func:`max_body_bytes` (the bulk product upsert takes megabytes). DRF reads JSON bodies straight
  from the WSGI stream, so without this check Django's own cap would not apply to the API at all.
- A NUL character in a query parameter is refused with a 400 (PostgreSQL cannot compare text with
  NUL in it, so every filter would fail with a database error).
- Under ``/api/`` an error answer that is not JSON (Django's HTML 400/403/404/500 pages, which
  appear when something fails outside DRF's exception handling) is replaced by the API's error
  shape: ``{"message": ..., "code": ...}`` with the same status.
- While the database is unreachable every request gets a 503 with ``Retry-After`` (JSON under
  ``/api/``, a plain page elsewhere) instead of a 500: the client should come back, not report a
  bug, and an API client can tell "not applied, retry" from "failed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

log = logging.getLogger("storelink.api")

API_PREFIX = "/api/"
#: Headers of the original error answer that still mean something on the JSON one.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")
MESSAGES = {
    400: "The request is malformed.",
    401: "Authentication is required.",
    403: "You are not allowed to do this.",
    404: "Not found.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    415: "Unsupported content type; send application/json.",
    429: "Too many requests; retry later.",
    500: "Something went wrong on our side; it has been logged.",
}

F = TypeVar("F", bound=Callable[..., Any])

#: Errors that mean "the database cannot be reached right now" (connection refused or dropped,
#: server shutting down), not a bug in the query.
DATABASE_DOWN = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_SECONDS = 10
DATABASE_DOWN_MESSAGE = "Storelink's database is briefly unavailable; nothing was changed. Retry shortly."
DATABASE_DOWN_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Storelink is briefly unavailable'
    "</title></head><body><h1>Storelink is briefly unavailable</h1><p>We cannot reach our database "
    "right now. Nothing was changed; please try again in a few seconds.</p></body></html>"
)


def max_body_bytes(limit: int) -> Callable[[F], F]:
    """Declare a larger (or smaller) body limit for one view method or viewset action."""

    def mark(func: F) -> F:
        func.max_body_bytes = limit  # type: ignore[attr-defined]
        return func

    return mark


def body_limit(view_func: Any, method: str) -> int:
    """The body limit of the view that will handle ``method``; DRF viewsets map methods to actions."""
    limit = getattr(view_func, "max_body_bytes", None)
    cls = getattr(view_func, "cls", None)
    actions = getattr(view_func, "actions", None) or {}
    name = actions.get(method.lower()) or method.lower()
    handler = getattr(cls, name, None) if cls is not None else None
    limit = getattr(handler, "max_body_bytes", limit)
    return int(limit if limit is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def api_error(status: int, message: str | None = None, code: str | None = None, **extra: Any) -> JsonResponse:
    """The API's error answer."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    body = {"message": message or MESSAGES.get(status, f"{phrase}."), "code": code or _code(phrase), **extra}
    return JsonResponse(body, status=status)


def _code(phrase: str) -> str:
    return phrase.lower().replace(" ", "_").replace("-", "_")


def too_large(length: int, limit: int) -> JsonResponse:
    return api_error(
        413,
        f"The request body is {length} bytes; this endpoint accepts at most {limit} bytes.",
        "too_large",
        max_bytes=limit,
    )


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """The answer while the database is down: 503 + Retry-After; rendered without the database
    (no template context processors, no session)."""
    if request.path_info.startswith(API_PREFIX):
        response: HttpResponse = api_error(503, DATABASE_DOWN_MESSAGE, "database_unavailable")
    else:
        response = HttpResponse(DATABASE_DOWN_PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _is_json(response: HttpResponse) -> bool:
    return "json" in (response.get("Content-Type") or "")


class ApiGuardMiddleware:
    """See the module docstring; goes first in ``MIDDLEWARE`` so it sees every answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        is_api = request.path_info.startswith(API_PREFIX)
        refused = self._refuse_query(request, is_api)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if is_api and response.status_code >= 400 and not _is_json(response):
            response = self._as_json(response)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not request.path_info.startswith(API_PREFIX):
            return None
        length, limit = content_length(request), body_limit(view_func, request.method or "GET")
        if length > limit:
            log.info("api.body_too_large", extra={"path": request.path_info, "bytes": length, "limit": limit})
            return too_large(length, limit)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_DOWN):
            log.warning("db.unavailable path=%s error=%s", request.path_info, str(exception).strip()[:200])
            return database_unavailable(request)
        return None

    @staticmethod
    def _refuse_query(request: HttpRequest, is_api: bool) -> HttpResponse | None:
        bad = sorted({key for key, values in request.GET.lists() for v in [key, *values] if "\x00" in v})
        if not bad:
            return None
        names = [key.replace("\x00", "\\u0000") for key in bad]
        message = f"Query parameter {', '.join(names)} contains a NUL character."
        if is_api:
            return api_error(
                400, message, "invalid", errors={name: ["Contains a NUL character."] for name in names}
            )
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")

    @staticmethod
    def _as_json(response: HttpResponse) -> HttpResponse:
        converted = api_error(response.status_code)
        for header in KEPT_HEADERS:
            if header in response:
                converted[header] = response[header]
        return converted
