"""Listings: what each store lists, matched to the product master by SKU.

:func:`refresh_listings` reads a channel's products and variants and matches them by SKU, keeping
the seller's per-listing overrides (buffer, max quantity, price rule) across re-reads. Also the
overrides themselves, the seller's "push now", starting the master from a store's listings, and
when a channel's listings are due to be re-read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from accounts.models import Role
from accounts.tenancy import Actor, require_actor_role
from channels.models import SalesChannel, SyncJob
from channels.sync import request_job
from connectors.base import Connector
from connectors.base import Listing as StoreListing
from inventory.catalog import (
    MAX_BULK_ITEMS,
    MAX_PRICE,
    PRICE_QUANTUM,
    ProductValidationError,
    UpsertResult,
    audit,
    clean_decimal,
    clean_quantity,
    upsert_products,
)
from inventory.models import SKU_MAX_LENGTH, Listing, Product
from inventory.stock_queue import mark_stock_changed, price_sync_enabled, stock_sync_enabled

log = logging.getLogger("storelink.inventory")


DEFAULT_RECONCILE_MINUTES = 45


@dataclass
class RefreshResult:
    read: int = 0
    created: int = 0
    updated: int = 0
    removed: int = 0
    matched: int = 0
    unmatched: int = 0
    without_sku: int = 0
    duplicate_skus: list[str] = field(default_factory=list)


def refresh_listings(channel: SalesChannel, connector: Connector | None = None) -> RefreshResult:
    """Read every product and variant of the store and match them to products by SKU.

    Store rows keep the seller's overrides (buffer, max quantity, price rule) across refreshes:
    only what the store owns is overwritten. A row the store no longer lists is marked removed
    rather than deleted, so its overrides come back if the SKU does. Items without a SKU cannot be
    matched and are counted; a SKU the store lists twice keeps its first occurrence and is reported.
    """
    own_connector = connector is None
    if connector is None:
        from channels.services import connector_for

        connector = connector_for(channel)
    try:
        store_listings = connector.list_listings()
    finally:
        if own_connector:
            connector.close()
    return save_listings(channel, store_listings)


def save_listings(channel: SalesChannel, store_listings: Sequence[StoreListing]) -> RefreshResult:
    """Persist what ``list_listings`` returned (split out so reconcile and tests share it)."""
    result = RefreshResult(read=len(store_listings))
    unique: dict[str, StoreListing] = {}
    duplicates: set[str] = set()
    for item in store_listings:
        sku = (item.sku or "").strip()
        if not sku or len(sku) > SKU_MAX_LENGTH:
            result.without_sku += 1
            continue
        if sku in unique:
            duplicates.add(sku)
            continue
        unique[sku] = item
    result.duplicate_skus = sorted(duplicates)
    now = timezone.now()
    with transaction.atomic():
        products = dict(
            Product.objects.filter(account_id=channel.account_id, sku__in=list(unique)).values_list(
                "sku", "id"
            )
        )
        known = {
            sku: (product_id, store_quantity, removed_at)
            for sku, product_id, store_quantity, removed_at in Listing.objects.filter(
                channel=channel, sku__in=list(unique)
            ).values_list("sku", "product_id", "store_quantity", "removed_at")
        }
        # What the store holds is the stock job's baseline: a matched listing that is new, or
        # whose quantity, product or presence changed, counts a change.
        moved = [
            sku
            for sku in unique
            if products.get(sku) is not None
            and (
                sku not in known
                or known[sku][0] != products[sku]
                or known[sku][1] != unique[sku].quantity
                or known[sku][2] is not None
            )
        ]
        rows = [
            Listing(
                account_id=channel.account_id,
                channel=channel,
                product_id=products.get(sku),
                sku=sku,
                remote_id=str(item.remote_id),
                remote_variant_id=str(item.remote_variant_id or ""),
                name=(item.name or "")[:255],
                store_enabled=item.enabled,
                store_quantity=item.quantity,
                store_price=Decimal(item.price).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
                seen_at=now,
                removed_at=None,
                created_at=now,
            )
            for sku, item in unique.items()
        ]
        if rows:
            Listing.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["account", "channel", "sku"],
                update_fields=[
                    "product",
                    "remote_id",
                    "remote_variant_id",
                    "name",
                    "store_enabled",
                    "store_quantity",
                    "store_price",
                    "seen_at",
                    "removed_at",
                    "updated_at",
                ],
            )
        if moved:
            mark_stock_changed(Listing.objects.filter(channel=channel, sku__in=moved))
        result.removed = (
            Listing.objects.filter(channel=channel, removed_at__isnull=True)
            .filter(Q(seen_at__lt=now) | Q(seen_at__isnull=True))
            .update(removed_at=now)
        )
    result.created = len(unique) - len(known)
    result.updated = len(known)
    result.matched = sum(1 for sku in unique if sku in products)
    result.unmatched = len(unique) - result.matched
    log.info(
        "inventory.listings.refreshed channel=%s read=%d created=%d removed=%d unmatched=%d",
        channel.pk,
        result.read,
        result.created,
        result.removed,
        result.unmatched,
    )
    return result


def update_listing_overrides(listing: Listing, *, actor: Actor, **values: Any) -> Listing:
    """Change a listing's buffer, max quantity or price rule; pushes follow on commit.

    Accepts ``buffer``, ``max_quantity`` (``None`` = no cap), ``price_multiplier``, ``price_offset``.
    """
    account = listing.account
    require_actor_role(actor, account, Role.MEMBER, doing="change listings")
    allowed = {"buffer", "max_quantity", "price_multiplier", "price_offset"}
    unknown = set(values) - allowed
    if unknown:
        raise ProductValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in ("buffer", "max_quantity"):
        if name in values:
            if name == "max_quantity" and values[name] in (None, ""):
                cleaned[name] = None
                continue
            try:
                cleaned[name] = clean_quantity(values[name])
            except ValueError as exc:
                errors[name] = [str(exc).replace("On hand", "The value")]
    if "price_multiplier" in values:
        try:
            cleaned["price_multiplier"] = clean_decimal(
                values["price_multiplier"], maximum=Decimal("1000"), label="The multiplier"
            )
        except ValueError as exc:
            errors["price_multiplier"] = [str(exc)]
    if "price_offset" in values:
        try:
            offset = Decimal(str(values["price_offset"]).strip())
            if not offset.is_finite() or abs(offset) > MAX_PRICE:
                raise InvalidOperation
            cleaned["price_offset"] = offset.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        except (InvalidOperation, ValueError):
            errors["price_offset"] = ["Enter an amount."]
    if errors:
        raise ProductValidationError(errors)
    with transaction.atomic():
        fresh = Listing.objects.select_for_update().select_related("channel").get(pk=listing.pk)
        changes = {name: value for name, value in cleaned.items() if getattr(fresh, name) != value}
        if not changes:
            return fresh
        for name, value in changes.items():
            setattr(fresh, name, value)
        fresh.save(update_fields=[*changes, "updated_at"])
        stock = bool({"buffer", "max_quantity"} & changes.keys())
        if stock:
            mark_stock_changed(Listing.objects.filter(pk=fresh.pk))
        audit(
            account,
            actor,
            "listing.overrides_changed",
            listing=str(fresh.pk),
            sku=fresh.sku,
            fields=sorted(changes),
        )
        channel = fresh.channel
        prices = bool({"price_multiplier", "price_offset"} & changes.keys())
        _request_for_channel(channel, stock=stock, prices=prices)
    return fresh


def _request_for_channel(channel: SalesChannel, *, stock: bool, prices: bool) -> list[str]:
    jobs: list[str] = []
    if not SalesChannel.objects.syncable().filter(pk=channel.pk).exists():
        return jobs
    if stock and stock_sync_enabled(channel):
        request_job(channel, SyncJob.STOCK)
        jobs.append(str(SyncJob.STOCK))
    if prices and price_sync_enabled(channel):
        request_job(channel, SyncJob.PRICES)
        jobs.append(str(SyncJob.PRICES))
    return jobs


def push_now(channel: SalesChannel, *, actor: Actor) -> list[str]:
    """The seller's "push now": re-read the channel's listings and push every difference.

    Marking the listings unseen makes the next stock / price job re-read the store first (the same
    path as the hourly reconcile), so items added on the store and failed items are included.
    Returns the jobs requested (none when the channel is paused or syncs neither).
    """
    require_actor_role(actor, channel.account, Role.MEMBER, doing="push stock and prices")
    with transaction.atomic():
        Listing.objects.filter(channel=channel).update(seen_at=None)
        audit(channel.account, actor, "channel.push_requested", channel=str(channel.pk))
        jobs = _request_for_channel(channel, stock=True, prices=True)
    return jobs


def create_products_from_listings(channel: SalesChannel, *, actor: Actor) -> UpsertResult:
    """Start the product master from a store: one product per unmatched listing of ``channel``,
    with the store's quantity and price (net, tax rate 0: the channel then receives exactly the
    price it has now). Onboarding in one click; SKUs already in the master are left alone.
    """
    rows = list(
        Listing.objects.unmatched()
        .filter(account_id=channel.account_id, channel=channel)
        .order_by("sku")
        .values_list("sku", "name", "store_quantity", "store_price")[:MAX_BULK_ITEMS]
    )
    items = [
        {
            "sku": sku,
            "name": name,
            "on_hand": max(0, quantity or 0),
            "price": store_price,
        }
        for sku, name, quantity, store_price in rows
    ]
    if not items:
        return UpsertResult()
    return upsert_products(channel.account, items, actor=actor)


def products_without_listing(channel: SalesChannel) -> Any:
    """Products of the account that this channel does not list (the other side of "unmatched")."""
    listed = Listing.objects.present().filter(channel=channel, product_id=OuterRef("pk"))
    return Product.objects.filter(account_id=channel.account_id).exclude(Exists(listed))


def listings_stale(channel: SalesChannel, *, now: datetime | None = None) -> bool:
    """Whether the channel's listings are due to be re-read: never read, or not since the
    reconcile interval (``INVENTORY_RECONCILE_MINUTES``, default 45, so the hourly reconcile
    always finds them stale and re-reads)."""
    minutes = int(getattr(django_settings, "INVENTORY_RECONCILE_MINUTES", DEFAULT_RECONCILE_MINUTES))
    last = Listing.objects.filter(channel=channel).aggregate(last=Max("seen_at"))["last"]
    return last is None or last < (now or timezone.now()) - timedelta(minutes=minutes)
