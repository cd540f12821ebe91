"""The closed map from platform key to connector class (three platforms need a dict, not plugins)."""

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

PLATFORM_CHOICES: list[tuple[str, str]] = [(key, cls.label) for key, cls in CONNECTORS.items()]


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
