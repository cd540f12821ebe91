"""The map from platform key to connector class: the one place a platform is made known.

A platform is its package under ``connectors/`` plus one entry here; everything the rest of the
product shows or does for it is declared on the connector class (see ``docs/adding-a-platform.md``).
:func:`register` adds one at run time (the suite's example platform uses it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connectors.base import Connector, ConnectorOptions
from connectors.opencart.connector import OpenCartConnector
from connectors.threedcart.connector import ThreeDCartConnector
from connectors.xcart.connector import XCartConnector

CONNECTORS: dict[str, type[Connector]] = {
    "opencart": OpenCartConnector,
    "xcart": XCartConnector,
    "threedcart": ThreeDCartConnector,
}


def register(cls: type[Connector]) -> type[Connector]:
    """Make ``cls`` a platform (usable as a class decorator); its ``platform`` key must be new."""
    if cls.platform in CONNECTORS and CONNECTORS[cls.platform] is not cls:
        raise ValueError(f"platform {cls.platform!r} is already registered")
    CONNECTORS[cls.platform] = cls
    return cls


def unregister(platform: str) -> None:
    CONNECTORS.pop(platform, None)


def platform_choices() -> list[tuple[str, str]]:
    """``(key, label)`` of every registered platform, read at each call (model and form choices)."""
    return [(key, cls.label) for key, cls in CONNECTORS.items()]


def connector_class(platform: str) -> type[Connector]:
    try:
        return CONNECTORS[platform]
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}") from None


def build_connector(
    platform: str,
    store_url: str,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    http: httpx.Client | None = None,
    options: ConnectorOptions | None = None,
) -> Connector:
    return connector_class(platform)(store_url, credentials, settings, http=http, options=options)
