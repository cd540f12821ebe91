"""End to end: a stock and a price change on a Product reach the sandbox stores, through real
``celery -A config worker`` and ``celery -A config beat`` processes and the test database.

Nothing is called directly: the product change commits in this process, ``request_job`` puts the
push tasks on a private broker after commit, the worker re-reads the channel, reads the store's
listings (first run), matches them by SKU and pushes; the store is then checked from its side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from accounts.models import Role
from channels.models import ConnectionState, SalesChannel, SyncRun, SyncState
from connectors.sandbox import SandboxApp, SandboxServer, make_sandbox
from inventory.catalog import upsert_products
from inventory.models import Listing
from tests.e2e.conftest import CeleryProcesses, fast_beat_schedule
from tests.factories import MembershipFactory
from tests.inventory.stores import SANDBOX_CASES

# The same xdist group as every test that runs Celery processes (``make test`` uses ``--dist
# loadgroup``): they run one after another, so two never share a broker database.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
]

WAIT_SECONDS = 40


@pytest.fixture
def stores() -> Iterator[list[tuple[str, SandboxApp]]]:
    """One seeded sandbox store per platform in the tree, over loopback."""
    with ExitStack() as stack:
        running = []
        for case in SANDBOX_CASES:
            platform, options = case.values
            app = make_sandbox(platform, **options)
            app.seed(9, 0, 1, 3)
            stack.enter_context(SandboxServer(app))
            running.append((platform, app))
        yield running


def test_stock_and_price_changes_on_a_product_reach_every_store(
    stores: list[tuple[str, SandboxApp]], celery: CeleryProcesses, settings: Any
) -> None:
    # ``stores`` first: the processes are stopped before the stores they talk to go away.
    extra_env: dict[str, str] = {}
    for _platform, store in stores:
        options = store.connector_options()
        keys = options.get("app_keys") or {}
        if options.get("api_base"):
            extra_env["THREEDCART_API_BASE"] = options["api_base"]
        if keys:
            extra_env["THREEDCART_PUBLIC_KEY"] = keys.get("threedcart_public_key") or keys.get(
                "public_key", ""
            )
            extra_env["THREEDCART_PRIVATE_KEY"] = keys.get("threedcart_private_key") or keys.get(
                "private_key", ""
            )
    for name in ("THREEDCART_API_BASE", "THREEDCART_PUBLIC_KEY", "THREEDCART_PRIVATE_KEY"):
        if name in extra_env:  # this process reads the stores too (to pick SKUs)
            setattr(settings, name, extra_env[name])
    membership = MembershipFactory(
        user__email="alice@example.com", account__name="Alice's Shop", role=Role.OWNER
    )
    account = membership.account
    channels = {}
    for platform, store in stores:
        channels[platform] = SalesChannel.objects.create(
            account=account,
            platform=platform,
            name=f"{platform} shop",
            store_url=store.connector_store_url(),
            connection_state=ConnectionState.OK,
            credentials=store.connector_credentials(),
            settings={
                **store.connector_settings(),
                "stock_sync": True,
                "price_sync": True,
                "prices_include_tax": False,
            },
        )
    fast_beat_schedule(sweep_stale_runs=False)
    celery.env.update(extra_env)
    celery.start_worker()
    celery.start_beat()
    # Every store gets a product master entry for one of its SKUs (a variant where it has one).
    chosen: dict[str, str] = {}
    for platform, _store in stores:
        chosen[platform] = _store_skus(channels[platform])[-1]
    items = [{"sku": sku, "on_hand": 40, "price": "19.99"} for sku in chosen.values()]
    upsert_products(account, items, actor=membership.user)  # commits: jobs go out now

    def reached(quantity: int, price: Decimal) -> bool:
        return all(
            store.stock_of(chosen[platform]) == quantity and store.price_of(chosen[platform]) == price
            for platform, store in stores
        )

    celery.wait_for(
        lambda: reached(40, Decimal("19.99")),
        "the first stock and price to reach the stores",
        timeout=WAIT_SECONDS,
    )

    # The change under test: a warehouse corrects stock and the seller reprices.
    started = time.monotonic()
    upsert_products(
        account,
        [{"sku": sku, "on_hand": 17, "price": "24.50"} for sku in chosen.values()],
        actor=membership.user,
    )
    celery.wait_for(
        lambda: reached(17, Decimal("24.50")), "the change to reach the stores", timeout=WAIT_SECONDS
    )
    elapsed = time.monotonic() - started
    assert elapsed < WAIT_SECONDS

    def recorded(platform: str) -> bool:
        listing = Listing.objects.get(channel=channels[platform], sku=chosen[platform])
        return (listing.last_pushed_quantity, listing.last_pushed_price) == (17, Decimal("24.50"))

    for platform in chosen:
        # The job records what it pushed after the store took the write: a moment after we saw it.
        celery.wait_for(lambda platform=platform: recorded(platform), f"{platform}'s push to be recorded")
        listing = Listing.objects.get(channel=channels[platform], sku=chosen[platform])
        runs = SyncRun.objects.filter(channel=channels[platform], job__in=["stock", "prices"])
        assert runs.filter(state=SyncState.SUCCEEDED).exists()
        assert not runs.filter(state=SyncState.FAILED).exists(), list(runs.values_list("error", flat=True))
        # Only the changed SKU was written on the store, once per kind and change.
        writes = [w for w in dict(stores)[platform].writes() if w["kind"] in ("stock", "price")]
        assert {w["key"] for w in writes} <= {chosen[platform], *_remote_keys(listing)}, writes


def _store_skus(channel: SalesChannel) -> list[str]:
    from channels.services import connector_for

    connector = connector_for(channel)
    try:
        return sorted(listing.sku for listing in connector.list_listings() if listing.sku)
    finally:
        connector.close()


def _remote_keys(listing: Listing) -> set[str]:
    """Stores key their write log by SKU or by their own ids; either identifies this listing."""
    return {listing.remote_id, listing.remote_variant_id, f"{listing.remote_id}:{listing.remote_variant_id}"}
