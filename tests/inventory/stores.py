"""Sandbox stores over loopback and channels pointed at them, for inventory tests and the e2e test.

Each platform's sandbox is a real HTTP server on 127.0.0.1 (port 0); the channel row is built
directly with the sandbox's own credentials and settings, so everything from
``channels.services.connector_for`` down (URL guard, HTTP layer, wire mapping) is the real thing.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import Account
from channels.models import ConnectionState, SalesChannel
from connectors.sandbox import SandboxApp, SandboxServer, make_sandbox


def _sandbox_exists(platform: str) -> bool:
    return importlib.util.find_spec(f"connectors.sandbox.{platform}") is not None


#: Every platform whose sandbox store is in the tree (all three once they have landed).
SANDBOX_CASES = [
    pytest.param(platform, options, id=case_id)
    for platform, options, case_id in (
        ("xcart", {"flavour": "addon"}, "xcart"),
        ("opencart", {}, "opencart"),
        ("threedcart", {}, "threedcart"),
    )
    if _sandbox_exists(platform)
]


@dataclass
class Store:
    """A running sandbox store and the channel that points at it."""

    app: SandboxApp
    server: SandboxServer
    channel: SalesChannel

    def store_listings(self) -> list[Any]:
        """What the store lists, read through the channel's own connector."""
        from channels.services import connector_for

        connector = connector_for(self.channel)
        try:
            return [listing for listing in connector.list_listings() if listing.sku]
        finally:
            connector.close()

    def store_skus(self) -> list[str]:
        return [listing.sku for listing in self.store_listings()]

    def written(self, kind: str) -> list[dict[str, Any]]:
        return [write for write in self.app.writes() if write["kind"] == kind]


def start_store(
    account: Account,
    platform: str,
    options: dict[str, Any],
    settings: Any,
    *,
    products: int = 12,
    name: str = "",
    **channel_settings: Any,
) -> Store:
    app = make_sandbox(platform, **options)
    app.seed(products, 0, 1, 7)
    server = SandboxServer(app).start()
    extra = app.connector_options()
    if extra.get("api_base"):
        settings.THREEDCART_API_BASE = extra["api_base"]
    keys = extra.get("app_keys") or {}
    if keys:
        settings.THREEDCART_PUBLIC_KEY = keys.get("threedcart_public_key") or keys.get("public_key", "")
        settings.THREEDCART_PRIVATE_KEY = keys.get("threedcart_private_key") or keys.get("private_key", "")
    channel = SalesChannel.objects.create(
        account=account,
        platform=platform,
        name=name or f"{platform} store {server.port}",
        store_url=app.connector_store_url(),
        connection_state=ConnectionState.OK,
        credentials=app.connector_credentials(),
        settings={**app.connector_settings(), "stock_sync": True, "price_sync": True, **channel_settings},
    )
    return Store(app=app, server=server, channel=channel)
