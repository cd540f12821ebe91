"""Show a signed-in seller's pages in their account's time zone."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.tenancy import current_membership
from accounts.zones import zone
from config.middleware import API_PREFIX, DATABASE_DOWN, database_unavailable


class AccountTimeZoneMiddleware:
    """Activate the account's zone for the request, so templates render times in it and date
    filters read typed dates as days in it.

    Not under ``/api/``: the API answers in UTC (ISO 8601 with ``Z``/``+00:00``) for every
    caller, and DRF would otherwise render datetimes in the active zone for a browser session.
    Must come after the authentication middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        membership = None
        try:
            if not request.path.startswith(API_PREFIX) and request.user.is_authenticated:
                membership = current_membership(request)
        except DATABASE_DOWN:
            # Reading the session and the account is the first query of a page: during a database
            # outage it answers the same 503 page the views would, not Django's 500.
            return database_unavailable(request)
        if membership is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zone(membership.account.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
