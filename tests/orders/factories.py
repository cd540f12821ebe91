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


def make_order(channel: SalesChannel, number: str = "1001", *, lines: int = 2, **fields: Any) -> Any:
    """An order row (and lines) written directly, for UI and API tests that need no store."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from orders.models import Order, OrderLine

    values: dict[str, Any] = {
        "account_id": channel.account_id,
        "channel": channel,
        "external_id": number,
        "number": f"#{number}",
        "placed_at": timezone.now() - timedelta(days=1),
        "status_code": "2",
        "status_name": "Processing",
        "currency": "EUR",
        "subtotal": Decimal("20.00") * lines,
        "shipping": Decimal("5.00"),
        "tax": Decimal("0.00"),
        "discount": Decimal("0.00"),
        "total": Decimal("20.00") * lines + Decimal("5.00"),
        "customer_name": "Carla Customer",
        "customer_email": "carla@example.com",
        "raw": {"order_id": number, "secret_note": "raw payload"},
        "content_hash": "x",
        **fields,
    }
    order = Order.objects.create(**values)
    for index in range(lines):
        OrderLine.objects.create(
            account_id=channel.account_id,
            order=order,
            position=index,
            external_line_id=f"{number}-{index}",
            sku=f"SKU-{index}",
            name=f"Item {index}",
            quantity=2,
            unit_price=Decimal("10.00"),
            tax=Decimal("0.00"),
            line_total=Decimal("20.00"),
        )
    return order
