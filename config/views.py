"""Operational endpoints that belong to no app."""

from __future__ import annotations

import logging
import sys

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

log = logging.getLogger("storelink.health")


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        log.exception("health.database_failed")
        return False
    return True


def _broker_ok() -> bool:
    """One short connection to the Celery broker: jobs are queued there, so a web process that
    cannot reach it is degraded even though pages still render."""
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=2)
    except Exception:
        log.warning("health.broker_failed", exc_info=True)
        return False
    return True


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The database and the broker, each checked for real, for load balancers and ``docker compose``.

    503 when either is down, so an orchestrator restarts or drains this instance.
    """
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    body: dict[str, str] = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    healthy = all(checks.values())
    body["status"] = "ok" if healthy else "error"
    return JsonResponse(body, status=200 if healthy else 503)


@csrf_exempt  # it changes nothing: an API client's POST to a wrong URL gets a 404, not a CSRF page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Unknown URLs under /api/ answer JSON like the rest of the API, not the HTML 404 page."""
    return JsonResponse({"message": "Not found.", "code": "not_found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler, except that a database that cannot be reached is a 503.

    Views' database errors are answered by :class:`config.middleware.ApiGuardMiddleware`; this
    catches those raised outside a view (session and authentication middleware), which Django
    hands straight to the 500 handler.
    """
    from config.middleware import DATABASE_DOWN, database_unavailable

    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        return database_unavailable(request)
    return defaults.server_error(request)
