"""End to end: a sale on store A changes what store B offers, with the default polling.

Real ``celery -A config worker`` and ``celery -A config beat`` processes, the dispatcher on its
default 10-second tick and order polling at its default pace (no setting shortened). Two sandbox
X-Cart stores sell the same SKU from one product master; an order placed on A must be found by A's
quick "anything new?" poll (long before the 5-minute full download would run) and move B's stock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.db import connection

from accounts.models import Role
from channels.models import ChannelSchedule, ConnectionState, SalesChannel
from connectors.sandbox import SandboxApp, SandboxServer, make_sandbox
from inventory.catalog import upsert_products
from orders.models import Order
from tests.e2e.conftest import CeleryProcesses
from tests.factories import MembershipFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
]

ON_HAND = 20
#: The defaults poll a quiet store every 60 s on a 10 s tick: a sale shows within ~75 s; the wait
#: is generous for a busy CI machine and still well inside the 5 minutes of a full download.
SALE_WAIT_SECONDS = 150


def default_beat_schedule() -> None:
    """The dispatcher's beat row as the migrations create it (the transactional test database was
    flushed): every 10 seconds, expiring after 9."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="Storelink: dispatch due sync jobs",
        defaults={
            "task": "channels.tasks.dispatch_due_jobs",
            "interval": interval,
            "expire_seconds": 9,
            "enabled": True,
        },
    )


@pytest.fixture
def stores() -> Iterator[list[SandboxApp]]:
    """Two X-Cart stores seeded alike (the same SKUs), over loopback."""
    with ExitStack() as stack:
        apps = []
        for _ in range(2):
            app = make_sandbox("xcart", flavour="addon")
            app.seed(6, 0, 1, 3)
            stack.enter_context(SandboxServer(app))
            apps.append(app)
        yield apps


def test_a_sale_on_one_store_reaches_the_other_with_default_polling(
    stores: list[SandboxApp], celery: CeleryProcesses
) -> None:
    store_a, store_b = stores
    membership = MembershipFactory(
        user__email="alice@example.com", account__name="Alice's Shop", role=Role.OWNER
    )
    account = membership.account
    channels = [
        SalesChannel.objects.create(
            account=account,
            platform="xcart",
            name=name,
            store_url=app.connector_store_url(),
            connection_state=ConnectionState.OK,
            credentials=app.connector_credentials(),
            settings={**app.connector_settings(), "stock_sync": True, "price_sync": False},
        )
        for name, app in (("Store A", store_a), ("Store B", store_b))
    ]
    sku = "XC-0001"  # a product without variants on both stores
    default_beat_schedule()
    celery.start_worker()
    celery.start_beat()
    upsert_products(account, [{"sku": sku, "on_hand": ON_HAND}], actor=membership.user)
    celery.wait_for(
        lambda: store_a.stock_of(sku) == ON_HAND and store_b.stock_of(sku) == ON_HAND,
        "the product master to reach both stores",
    )
    celery.wait_for(
        lambda: (
            ChannelSchedule.objects.filter(channel__in=channels, orders_downloaded_at__isnull=False).count()
            == 2
        ),
        "the first order download of both stores",
    )
    first_download = ChannelSchedule.objects.get(pk=channels[0].pk).orders_downloaded_at
    probes = store_a.probe_count

    order_id = store_a.add_order(lines=[(sku, 2)])
    celery.wait_for(
        lambda: store_b.stock_of(sku) == ON_HAND - 2,
        "the sale on store A to reach store B",
        timeout=SALE_WAIT_SECONDS,
    )
    assert Order.objects.filter(channel=channels[0], external_id=order_id).exists()
    schedule: Any = ChannelSchedule.objects.get(pk=channels[0].pk)
    # Found by a poll that asked first: A's next full download was minutes away.
    assert store_a.probe_count > probes
    assert schedule.orders_downloaded_at > first_download
    assert schedule.orders_active_at is not None
