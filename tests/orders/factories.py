"""Test helpers for the sync engine: tenants, sandbox stores over loopback, channels bound to them.

Every access test uses two tenants (alice and bob); channels are built from a real sandbox store's
own credentials and settings, and store facts come from a real ``test_connection`` so the status
rules see what the wizard would have saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from accounts.models import Account, User
from accounts.services import sign_up
from channels import services as channel_services
from channels.models import ConnectionState, SalesChannel
from connectors.sandbox import SandboxApp, SandboxServer, make_sandbox

PASSWORD = "correct-horse-battery-9"


def make_owner(email: str, shop: str) -> tuple[User, Account]:
    return sign_up(email=email, password=PASSWORD, account_name=shop)


@contextmanager
def sandbox_store(
    platform: str = "xcart",
    *,
    products: int = 12,
    orders: int = 30,
    days: int = 5,
    seed: int = 7,
    **options: Any,
) -> Iterator[tuple[SandboxApp, SandboxServer]]:
    app = make_sandbox(platform, **options)
    server = SandboxServer(app).start()
    try:
        if products or orders:
            app.seed(products, orders, days, seed)
        yield app, server
    finally:
        server.stop()


def channel_for_store(
    account: Account, app: SandboxApp, *, name: str = "Sandbox shop", **settings: Any
) -> SalesChannel:
    """A live, enabled channel on ``app`` with facts from a real connection test."""
    values = {**app.connector_settings(), "order_interval_minutes": 1, **settings}
    facts = channel_services.test_connection(
        app.platform, app.connector_store_url(), app.connector_credentials(), values
    )
    return SalesChannel.objects.create(
        account=account,
        platform=app.platform,
        name=name,
        store_url=app.connector_store_url(),
        enabled=True,
        connection_state=ConnectionState.OK,
        credentials=app.connector_credentials(),
        settings=values,
        store_facts=channel_services.store_facts_to_dict(facts),
    )
