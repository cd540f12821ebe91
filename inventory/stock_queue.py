"""What changed, and the jobs it asks for.

Every writer that moves what a listing may offer counts a change on the listings concerned
(:func:`mark_stock_changed`, the :class:`~inventory.models.StockChange` queue), so a stock job
reads only those listings. Product, listing and order changes then ask the sync engine for stock
and price jobs (:func:`request_inventory_jobs`, :func:`reservations_changed`): due times written in
the caller's transaction, jobs sent after it commits, so a worker never reads the master before the
change is visible (or after it was rolled back). Also whether a channel syncs stock or prices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection

from accounts.models import Account
from channels.models import SalesChannel, SyncJob
from channels.sync import request_jobs
from inventory.models import Listing, StockChange


def _channel_flag(channel: SalesChannel, name: str, default: bool) -> bool:
    return setting_flag(channel.settings or {}, name, default)


def setting_flag(settings: Mapping[str, Any], name: str, default: bool) -> bool:
    value = settings.get(name, default)
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def stock_sync_enabled(channel: SalesChannel) -> bool:
    return _channel_flag(channel, "stock_sync", True)


def price_sync_enabled(channel: SalesChannel) -> bool:
    return _channel_flag(channel, "price_sync", False)


def request_inventory_jobs(account: Account, *, stock: bool, prices: bool) -> None:
    """Ask for stock and/or price jobs on every channel of the account that syncs them.

    The requests are due times written in the caller's transaction (committed with the change,
    kept through a broker outage); the jobs are sent after commit so the worker reads the
    committed master. The job itself is cheap when nothing differs (it sends only changed
    listings), so asking too often costs little.
    """
    if not (stock or prices):
        return
    channels = list(
        SalesChannel.objects.syncable()
        .filter(account_id=getattr(account, "pk", account))
        .only("id", "account_id", "settings")
    )
    if stock:
        request_jobs([channel for channel in channels if stock_sync_enabled(channel)], SyncJob.STOCK)
    if prices:
        request_jobs([channel for channel in channels if price_sync_enabled(channel)], SyncJob.PRICES)


def reservations_changed(account: Account | Any, skus: Iterable[str] | None = None) -> None:
    """Orders arrived, changed status or were shipped: availability moved on every channel.

    For the orders and channels apps to call inside the transaction that changed the orders (a
    download page that created or changed orders, a recorded, failed or retried shipment, a
    removed channel, a new "shipped" status): the listings of ``skus`` (``None``: every SKU of the
    account) count a change with that transaction, and stock jobs go out after it commits. Only
    stock is affected; the jobs send just the listings whose quantity now differs.
    """
    account_id = getattr(account, "pk", account)
    listings = Listing.objects.filter(account_id=account_id, product__isnull=False)
    if skus is not None:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return
        listings = listings.filter(sku__in=wanted)
    mark_stock_changed(listings)
    request_inventory_jobs(Account(pk=account_id), stock=True, prices=False)


def mark_stock_changed(listings: Any) -> None:
    """Count a change on these listings' availability, in the caller's transaction.

    Every writer that moves what a listing may offer (on hand, reservations, buffer and cap,
    linking to a product, what the store said it holds) calls this, so the stock job looks at the
    listings that changed instead of all of them (:class:`StockChange`). One statement, an
    ``INSERT … SELECT … ON CONFLICT DO UPDATE`` in primary-key order: two order downloads of the
    same account that touch the same SKUs queue behind each other instead of deadlocking.
    """
    select, params = listings.order_by("pk").values("pk", "account_id", "channel_id").query.sql_with_params()
    table = connection.ops.quote_name(StockChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, listing_id, channel_id, changes) "  # noqa: S608 (names are ours)
            f"SELECT account_id, pk, channel_id, 1 FROM ({select}) AS changed WHERE true "
            f"ON CONFLICT (account_id, listing_id) DO UPDATE SET changes = {table}.changes + 1",
            params,
        )
