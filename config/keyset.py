"""Keyset ("seek") pagination for the seller's list pages.

A page is found by the sort key of the row it starts after (or before), not by its position:
``OFFSET 75000`` makes the database walk and throw away 75,000 rows, a keyset condition lets it
start at the right place in the index, so the last page costs what the first one does. Pages carry
no total either: an exact count reads every matching row on every request.

The order is ``(key, id)`` with ``id`` breaking ties, both descending or both ascending. Cursors
are opaque to the seller (URL-safe base64 of the two values); a cursor that does not decode is
treated as no cursor (the first page), never as an error page.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Model, Q, QuerySet


@dataclass(frozen=True)
class KeysetPage:
    """One page of rows and the cursors of its neighbours (``None``: there is none)."""

    rows: list[Any]
    next_cursor: str | None
    previous_cursor: str | None
    #: Whether this is the first page (no cursor was followed): "Newest" links are then pointless.
    is_first: bool

    @property
    def has_other_pages(self) -> bool:
        return self.next_cursor is not None or self.previous_cursor is not None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(key_value: Any, row_id: Any) -> str:
    text = json.dumps([_plain(key_value), _plain(row_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, parse_key: Callable[[Any], Any], parse_id: Callable[[Any], Any]
) -> tuple[Any, Any] | None:
    """The cursor's (key, id), or ``None`` for a missing or malformed cursor."""
    if not cursor or len(cursor) > 400:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key_value, row_id = json.loads(raw.decode())
        return parse_key(key_value), parse_id(row_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None


def parse_datetime_key(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("a cursor's time carries its zone")
    return parsed


def parse_uuid_key(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


def keyset_page(
    queryset: QuerySet[Any],
    *,
    key: str,
    descending: bool,
    size: int,
    after: str | None = None,
    before: str | None = None,
    parse_key: Callable[[Any], Any] = parse_datetime_key,
    parse_id: Callable[[Any], Any] = parse_uuid_key,
) -> KeysetPage:
    """The page of ``queryset`` in ``(key, id)`` order after ``after`` (or before ``before``).

    One query per page: ``size + 1`` rows are read to learn whether another page follows. The
    condition is written as ``key <= k AND (key < k OR id < i)`` (or its mirror) so the database
    can use an index on ``key`` as a range and check the tie-break on the few equal rows.
    """
    after_key = decode_cursor(after, parse_key, parse_id)
    before_key = None if after_key else decode_cursor(before, parse_key, parse_id)
    forward = ("-" if descending else "") + key, ("-" if descending else "") + "id"
    backward = tuple(name[1:] if name.startswith("-") else "-" + name for name in forward)

    def beyond(cursor: tuple[Any, Any], towards_end: bool) -> Q:
        value, row_id = cursor
        smaller = descending == towards_end  # walking towards smaller keys
        op, strict = ("lte", "lt") if smaller else ("gte", "gt")
        tie_broken = Q(**{f"{key}__{strict}": value}) | Q(**{f"id__{strict}": row_id})
        return Q(**{f"{key}__{op}": value}) & tie_broken

    if before_key is not None:
        rows = list(queryset.filter(beyond(before_key, towards_end=False)).order_by(*backward)[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        if not rows:  # nothing newer than the cursor: show the first page instead of an empty one
            return keyset_page(queryset, key=key, descending=descending, size=size)
        return KeysetPage(
            rows=rows,
            next_cursor=_cursor_of(rows[-1], key),
            previous_cursor=_cursor_of(rows[0], key) if more_before else None,
            is_first=not more_before,
        )
    filtered = queryset.filter(beyond(after_key, towards_end=True)) if after_key else queryset
    rows = list(filtered.order_by(*forward)[: size + 1])
    more_after = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_cursor=_cursor_of(rows[-1], key) if more_after and rows else None,
        previous_cursor=_cursor_of(rows[0], key) if after_key and rows else None,
        is_first=after_key is None,
    )


def _cursor_of(row: Model, key: str) -> str:
    return encode_cursor(getattr(row, key), row.pk)
