"""The seller's product master and its listings on sales channels.

A :class:`Product` is what the seller owns: one row per SKU per account with the quantity on hand
and the net price. A :class:`Listing` is that SKU as one store sells it (a product or one variant
/ option value), matched by SKU, with what we last read from the store, what we last pushed
successfully, and the seller's per-listing overrides. Pushes compare the value computed now with
the last successful push, so only what changed is sent and a failed item is retried next run.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, ApiKey
from channels.models import SalesChannel

SKU_MAX_LENGTH = 128
PRICE_DIGITS = 14
#: Four places so a net price can round-trip to an exact gross price (8.4034 × 1.19 = 10.00).
PRICE_PLACES = 4


class Product(models.Model):
    """One SKU of the seller's master data.

    ``price`` is net of tax in the seller's own currency; ``None`` means "Storelink does not manage
    this price", so a stock-only feed can never push a price of 0 to a store by accident.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="products")
    sku = models.CharField("SKU", max_length=SKU_MAX_LENGTH)
    name = models.CharField(max_length=255, blank=True, default="")
    on_hand = models.IntegerField("on hand", default=0)
    price = models.DecimalField(
        max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, null=True, blank=True, help_text="Net of tax."
    )
    tax_rate = models.DecimalField(
        "tax rate (%)",
        max_digits=6,
        decimal_places=3,
        default=Decimal("0"),
        help_text="Added to the price for channels whose prices include tax.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["sku"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["account", "sku"], name="product_account_sku_unique"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="product_on_hand_not_negative"),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="product_price_not_negative"
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["account", "-updated_at"], name="product_account_updated")]

    def __str__(self) -> str:
        return f"{self.sku} · {self.name}" if self.name else self.sku


class ListingQuerySet(models.QuerySet["Listing"]):
    def present(self) -> ListingQuerySet:
        """Listings the store still has (removed ones keep the seller's overrides for later)."""
        return self.filter(removed_at__isnull=True)

    def unmatched(self) -> ListingQuerySet:
        """On the store, but no product in the master has this SKU."""
        return self.present().filter(product__isnull=True)


class Listing(models.Model):
    """A product or variant on one channel, matched to a :class:`Product` by SKU.

    ``store_quantity`` / ``store_price`` are what the store said when listings were last read (or
    what we then wrote successfully); ``last_pushed_*`` only change on a successful push, so an item
    the store refused keeps differing and is sent again on the next run. Stock and price keep their
    own push time and error: a refused price must not hide behind a stock push that worked.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="listings")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="listings")
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="listings"
    )
    sku = models.CharField("SKU", max_length=SKU_MAX_LENGTH)
    remote_id = models.CharField(max_length=64)
    remote_variant_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    store_enabled = models.BooleanField(default=True)
    store_quantity = models.IntegerField(null=True, blank=True)
    store_price = models.DecimalField(
        max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, null=True, blank=True
    )
    last_pushed_quantity = models.IntegerField(null=True, blank=True)
    last_pushed_price = models.DecimalField(
        max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, null=True, blank=True
    )
    last_pushed_at = models.DateTimeField("stock last pushed", null=True, blank=True)
    last_price_pushed_at = models.DateTimeField("price last pushed", null=True, blank=True)
    last_error = models.TextField("last stock error", blank=True, default="")
    last_price_error = models.TextField(blank=True, default="")
    # The seller's per-listing overrides.
    buffer = models.PositiveIntegerField(default=0, help_text="Units held back from this channel.")
    max_quantity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Never offer more than this many on this channel."
    )
    price_multiplier = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=Decimal("1"),
        help_text="Price rule: the channel price is price × multiplier + offset (markup, exchange rate).",
    )
    price_offset = models.DecimalField(
        max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, default=Decimal("0")
    )
    seen_at = models.DateTimeField(null=True, blank=True, help_text="When the store last listed it.")
    removed_at = models.DateTimeField(null=True, blank=True, help_text="The store no longer lists it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ListingQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["sku"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["account", "channel", "sku"], name="listing_account_channel_sku"),
            models.CheckConstraint(
                condition=Q(price_multiplier__gte=0), name="listing_price_multiplier_not_negative"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["account", "sku"], name="listing_account_sku"),
            models.Index(fields=["account", "product"], name="listing_account_product"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} on {self.channel_id}"


class StockChange(models.Model):
    """A listing whose availability moved since a stock job last looked at it: the job's work queue.

    Every writer that changes what a listing may offer (on hand, reservations, buffer and cap,
    linking, what the store holds) counts a change here in its own transaction; the stock job
    reads the channel's rows instead of comparing every listing, and deletes a row only if its
    count is still the one it read, so a change made while the job ran is never lost. A table of
    its own, not a listing column: settling then never rewrites the listing's indexes.
    """

    # The (account, listing) constraint serves lookups by account; no separate account index.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="+")
    changes = models.PositiveIntegerField(default=1)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["account", "listing"], name="stock_change_account_listing")
        ]

    def __str__(self) -> str:
        return f"{self.changes} change(s) on {self.listing_id}"


class InventoryEvent(models.Model):
    """Audit trail of product master changes: who changed stock or prices, when, how much."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inventory_events")
    actor = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inventory_events",
    )
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="inventory_events"
    )
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [models.Index(fields=["account", "-created_at"], name="inventory_event_time")]

    def __str__(self) -> str:
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M}"
