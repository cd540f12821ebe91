"""The base of every REST API viewset: tenant scoping that subclasses cannot forget or override.

``get_queryset`` belongs to this class. A subclass names its rows with ``scoped_queryset`` and may
narrow them in ``refine_queryset`` (which receives an already account-filtered queryset); defining
``get_queryset`` in a subclass is a ``TypeError`` at import time. Another account's id is therefore
not found (404), never forbidden and never data.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions, viewsets
from rest_framework.pagination import CursorPagination

from accounts.tenancy import account_for


class AccountScopedViewSet(viewsets.GenericViewSet):
    scoped_queryset: ClassVar[QuerySet[Any]]
    #: Path from the model to its account (``"account"``, or ``"channel__account"`` ...).
    account_field: ClassVar[str] = "account"
    lookup_field = "pk"
    # Ids are UUIDs (with or without dashes): the schema says so, and any other path segment is
    # not routed here (a JSON 404 like every unknown /api/ path; ``/listings/push/`` stays an action).
    lookup_value_regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must not override get_queryset (tenant scoping lives in "
                "AccountScopedViewSet); narrow rows in refine_queryset instead."
            )

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular introspection, no request user
            return self.scoped_queryset.none()
        account = account_for(self.request)
        queryset = self.scoped_queryset.all().filter(**{self.account_field: account})
        return self.refine_queryset(queryset)

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow the account's rows (filters, select_related); must return a subset."""
        return queryset

    def get_object(self) -> Model:
        # Ids are UUIDs: anything else cannot exist, so answer 404 instead of a database error.
        value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        try:
            uuid.UUID(str(value))
        except ValueError:
            raise exceptions.NotFound() from None
        return super().get_object()


# RFC 3339 allows a leap second (":60"), which Python's datetime cannot hold.
_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}):60")


def datetime_param(params: Any, name: str) -> dt.datetime | None:
    """An ISO 8601 / RFC 3339 date-time query parameter, or a 400 that says what is wrong.

    Well-formed but impossible values (month 13, 30 February) are refused here rather than by the
    database; a ``+`` offset that arrived unescaped (decoded as a space) is read as ``+``; a time
    without offset is UTC.
    """
    raw = params.get(name)
    if raw is None:
        return None
    text = _LEAP_SECOND.sub(r"\1:59", raw.strip().replace(" ", "+"))
    try:
        value = parse_datetime(text)
    except ValueError:  # well formed but impossible, e.g. month 13
        value = None
    if value is None:
        raise exceptions.ValidationError(
            {name: ["Use an ISO 8601 date and time that exists, e.g. 2026-01-31T08:00:00Z."]}
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, which RFC 3339 allows (up to ±23:59).
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. year 1 at +18:00: before anything stored, or after it
        if value.year == 1:
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        return dt.datetime.max.replace(tzinfo=dt.UTC)


def bool_param(params: Any, name: str) -> bool:
    """A boolean query parameter as OpenAPI writes it (``true`` / ``false``); absent is false and
    anything else is a 400, so a typo does not silently mean "no filter"."""
    raw = params.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise exceptions.ValidationError({name: ["Use true or false."]})
    return value == "true"


def page_size_of(request: Any, param: str, default: int, maximum: int) -> int:
    """``page_size`` checked instead of silently replaced by the default (DRF's behaviour)."""
    raw = request.query_params.get(param)
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum or not raw.strip().isdigit():
        raise exceptions.ValidationError({param: [f"Use a whole number from 1 to {maximum}."]})
    return size


class StrictCursorPagination(CursorPagination):
    """Cursor pages whose ``page_size`` is checked (1 … ``max_page_size``) and documented so."""

    page_size_query_param = "page_size"

    def get_page_size(self, request: Any) -> int:
        return page_size_of(request, self.page_size_query_param, self.page_size, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
            elif parameter["name"] == self.cursor_query_param:
                parameter["schema"] = {"type": "string", "pattern": QUERY_TEXT["pattern"]}
        return parameters


#: A text filter as the schema documents it: no NUL, at most 255 characters (see :func:`text_param`).
QUERY_TEXT = {"type": "string", "maxLength": 255, "pattern": "^[^\\u0000]*$"}


def text_param(params: Any, name: str, choices: Any = None) -> str | None:
    """A text filter checked before it reaches SQL: PostgreSQL refuses NUL characters (a 500
    otherwise), and a filter with a fixed set of values answers 400 for anything else instead of
    an empty page the caller would take for "nothing there"."""
    value = params.get(name)
    if value is None or (not value and choices is None):
        return None
    if "\x00" in value or len(value) > 255:
        raise exceptions.ValidationError({name: ["Use at most 255 characters, without NUL."]})
    if choices is not None and value not in choices:
        raise exceptions.ValidationError({name: [f"Use one of: {', '.join(choices)}."]})
    return value


def uuid_value(value: Any, name: str) -> uuid.UUID:
    """An id from the query string, or a 400 naming the parameter (never a 500 from the database)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.ValidationError({name: ["Must be a UUID."]}) from None
