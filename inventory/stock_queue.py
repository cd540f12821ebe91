"""What changed, and the jobs it asks for.

Every writer that moves what a listing may offer counts a change on the listings concerned
(:func:`mark_stock_changed`, the :class:`~inventory.models.StockChange` queue), so a stock job
reads only those listings. Product, listing and order changes then ask the sync engine for jobs only
where something moved: a stock job on each channel whose listings were marked
(:func:`request_stock_jobs`, :func:`reservations_changed`), a price job on each channel listing a
product whose price changed (:func:`request_price_jobs`), one per channel per change; and on any
channel whose listings were never read, whose first job reads them. The requests
are due times written in the caller's transaction, the jobs sent after it commits, so a worker
never reads the master before the change is visible (or after it was rolled back). Also whether a
channel syncs stock or prices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q

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


def _channels_to_ask(account_id: Any, moved: Q | Exists) -> Any:
    """The account's syncable channels where ``moved`` holds, and those whose listings were never
    read: they may list anything, and their first job reads the store's listings and pushes."""
    unread = ~Exists(Listing.objects.filter(account_id=account_id, channel_id=OuterRef("pk")))
    return (
        SalesChannel.objects.syncable()
        .filter(account_id=account_id)
        .filter(moved | unread)
        .only("id", "account_id", "settings")
    )


def request_stock_jobs(account: Account | Any, channel_ids: Iterable[Any]) -> None:
    """Ask for a stock job on each of these channels that is syncable and syncs stock (and on
    the account's channels whose listings were never read).

    Callers pass the channels whose listings they marked (:func:`mark_stock_changed` returns
    them), so an edit of a SKU listed on 3 of 100 channels asks for 3 jobs, not 100. The requests
    are due times written in the caller's transaction (committed with the change, kept through a
    broker outage); the jobs are sent after commit so the worker reads the committed rows. One read
    of the channels and two statements for the due times, however many there are.
    """
    account_id = getattr(account, "pk", account)
    wanted = sorted({channel_id for channel_id in channel_ids if channel_id is not None}, key=str)
    channels = _channels_to_ask(account_id, Q(pk__in=wanted))
    request_jobs([channel for channel in channels if stock_sync_enabled(channel)], SyncJob.STOCK)


def request_price_jobs(account: Account | Any, skus: Iterable[str] | None = None) -> None:
    """Ask for a price job on each price-syncing channel that lists one of these SKUs' products
    (and on the account's channels whose listings were never read).

    ``skus``: the products whose price or tax rate changed (their channel prices moved);
    ``None``: something every price changed on (the account's tax basis), so every channel that
    syncs prices is asked. One read of the channels; due times and sending as for stock.
    """
    account_id = getattr(account, "pk", account)
    if skus is None:
        channels = (
            SalesChannel.objects.syncable().filter(account_id=account_id).only("id", "account_id", "settings")
        )
    else:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return
        listing = Listing.objects.present().filter(
            account_id=account_id, channel_id=OuterRef("pk"), sku__in=wanted, product__isnull=False
        )
        channels = _channels_to_ask(account_id, Exists(listing))
    request_jobs([channel for channel in channels if price_sync_enabled(channel)], SyncJob.PRICES)


def reservations_changed(account: Account | Any, skus: Iterable[str] | None = None) -> None:
    """Orders arrived, changed status or were shipped: availability of these SKUs moved.

    For the orders and channels apps to call inside the transaction that changed the orders (a
    download page that created or changed orders, a recorded, failed or retried shipment, a
    removed channel, a new "shipped" status): the listings of ``skus`` (``None``: every SKU of the
    account) count a change with that transaction, and stock jobs go out after it commits to the
    channels that list them, one per channel. Only stock is affected; the jobs send just the
    listings whose quantity now differs.
    """
    account_id = getattr(account, "pk", account)
    listings = Listing.objects.filter(account_id=account_id, product__isnull=False)
    if skus is not None:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return
        listings = listings.filter(sku__in=wanted)
    request_stock_jobs(account_id, mark_stock_changed(listings))


def on_reservations_moved(sender: Any, *, account_id: Any, skus: Iterable[str] | None, **kwargs: Any) -> None:
    """Receiver of :data:`channels.events.reservations_moved` (connected in ``InventoryConfig.ready``)."""
    reservations_changed(account_id, skus)


def mark_stock_changed(listings: Any) -> set[Any]:
    """Count a change on these listings' availability, in the caller's transaction; returns the
    ids of the channels whose listings were marked (for :func:`request_stock_jobs`).

    Every writer that moves what a listing may offer (on hand, reservations, buffer and cap,
    linking to a product, what the store said it holds) calls this, so the stock job looks at the
    listings that changed instead of all of them (:class:`StockChange`). One statement, an
    ``INSERT … SELECT … ON CONFLICT DO UPDATE`` in primary-key order: two order downloads of the
    same account that touch the same SKUs queue behind each other instead of deadlocking. On
    PostgreSQL the same statement answers the channels (a data-modifying CTE); elsewhere a second
    query reads them.
    """
    select, params = listings.order_by("pk").values("pk", "account_id", "channel_id").query.sql_with_params()
    table = connection.ops.quote_name(StockChange._meta.db_table)
    upsert = (
        f"INSERT INTO {table} (account_id, listing_id, channel_id, changes) "  # noqa: S608 (names are ours)
        f"SELECT account_id, pk, channel_id, 1 FROM ({select}) AS changed WHERE true "
        f"ON CONFLICT (account_id, listing_id) DO UPDATE SET changes = {table}.changes + 1"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH marked AS ({upsert} RETURNING channel_id) SELECT DISTINCT channel_id FROM marked",  # noqa: S608
                params,
            )
            field = StockChange._meta.get_field("channel")
            return {field.to_python(row[0]) for row in cursor.fetchall()}
        cursor.execute(upsert, params)
    return set(listings.order_by().values_list("channel_id", flat=True).distinct())
