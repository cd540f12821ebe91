"""Account time zones: which names are accepted, and the zone a name stands for.

Times are stored in UTC; pages show them in the account's zone (activated per request by
:class:`accounts.middleware.AccountTimeZoneMiddleware`), and dates typed into filters mean days in
that zone. The REST API answers in UTC whatever the account's zone.
"""

from __future__ import annotations

import zoneinfo
from datetime import tzinfo
from functools import lru_cache

from django.core.exceptions import ValidationError

DEFAULT_TIME_ZONE = "UTC"
#: Names the zone database carries for compatibility only; nobody picks them from a list.
_LEGACY_NAMES = {"Factory", "localtime", "posixrules"}


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone name this machine's zone database knows, sorted; what a seller may choose."""
    return tuple(sorted(zoneinfo.available_timezones() - _LEGACY_NAMES))


def is_time_zone(name: object) -> bool:
    return isinstance(name, str) and name in _known()


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(time_zone_names())


def validate_time_zone(name: object) -> None:
    """Model and form validator: an IANA name such as ``Europe/Berlin``, nothing else."""
    if not is_time_zone(name):
        raise ValidationError(
            "Choose a time zone from the list, e.g. Europe/Berlin or America/New_York.", code="time_zone"
        )


def browser_time_zone(name: object) -> str:
    """The zone a browser reported, or UTC when it reported nothing usable (an old browser, a
    tampered form): sign-up never fails over a field the seller did not fill in."""
    return name if isinstance(name, str) and is_time_zone(name) else DEFAULT_TIME_ZONE


def zone(name: object) -> tzinfo:
    """The zone for a stored name; UTC for a name the zone database no longer knows."""
    return zoneinfo.ZoneInfo(name if isinstance(name, str) and is_time_zone(name) else DEFAULT_TIME_ZONE)
