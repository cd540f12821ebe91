"""Orders downloaded from stores, their lines, and the shipments confirmed back.

An order is keyed by (account, channel, external id): the store's own id, which is also what
shipment confirmations use. ``content_hash`` fingerprints everything we show of the order, so a
re-sync compares one string per order and writes nothing when the store had nothing new.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from django.conf import settings as django_settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, ApiKey
from channels.models import SalesChannel
from connectors.base import currency_places, to_decimal

#: Amounts are kept with four decimals: a Kuwaiti dinar has three, and what a store sent must not
#: be rounded away when it is stored. Pages and the API show them in the currency's own decimals.
MONEY = {"max_digits": 16, "decimal_places": 4}


def money_text(amount: Decimal | None, currency: str) -> str:
    """An amount as text in its currency's decimals (``12.345`` KWD, ``1200`` JPY, ``45.00`` EUR)."""
    if amount is None:
        return ""
    return f"{to_decimal(amount, currency_places(currency)):f}"


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="orders")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="orders")
    external_id = models.CharField(max_length=64)
    number = models.CharField(max_length=64)
    placed_at = models.DateTimeField()
    store_updated_at = models.DateTimeField(null=True, blank=True)
    status_code = models.CharField(max_length=64)
    status_name = models.CharField(max_length=100, blank=True, default="")
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**MONEY)
    shipping = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    discount = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    prices_include_tax = models.BooleanField(default=False)
    customer_name = models.CharField(max_length=255, blank=True, default="")
    customer_email = models.CharField(max_length=255, blank=True, default="")
    billing_address = models.JSONField(default=dict, blank=True)
    shipping_address = models.JSONField(default=dict, blank=True)
    shipping_method = models.CharField(max_length=255, blank=True, default="")
    #: The store's payload as received (Decimals and datetimes, if a mapping left any, as strings).
    raw = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    total_mismatch = models.BooleanField(default=False)
    unknown_sku = models.BooleanField(default=False)
    held_unmapped_status = models.BooleanField(default=False)
    #: The store has finished this order (cancelled, refunded, shipped ...): the connector's verdict
    #: (``Order.closed``) or its platform's closed status codes, set by every download. A closed order
    #: reserves no stock and is never shipped.
    store_closed = models.BooleanField(default=False)
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    #: Set explicitly by the download (bulk updates do not run ``auto_now``); drives ``updated_since``.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-placed_at", "-id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["account", "channel", "external_id"], name="order_account_channel_external_unique"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["account", "-placed_at"], name="order_account_placed"),
            # The orders list filtered to one channel, newest first, from the first row it needs.
            models.Index(fields=["account", "channel", "-placed_at"], name="order_channel_placed"),
            models.Index(fields=["account", "updated_at", "id"], name="order_account_updated"),
            models.Index(fields=["account", "channel", "status_code"], name="order_account_status"),
        ]

    def __str__(self) -> str:
        return f"Order {self.number} ({self.channel_id})"

    @property
    def flags(self) -> list[str]:
        names = []
        if self.total_mismatch:
            names.append("total_mismatch")
        if self.unknown_sku:
            names.append("unknown_sku")
        if self.held_unmapped_status:
            names.append("held_unmapped_status")
        return names


class OrderLine(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="order_lines")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    external_line_id = models.CharField(max_length=64)
    sku = models.CharField(max_length=128, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    #: ``[[option name, value], ...]`` as the store sent them.
    options = models.JSONField(default=list, blank=True)
    quantity = models.IntegerField()
    unit_price = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)

    class Meta:
        ordering: ClassVar = ["order", "position"]
        indexes: ClassVar = [models.Index(fields=["account", "sku"], name="orderline_account_sku")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku or self.name}"


class ShipmentState(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"


class Shipment(models.Model):
    """What was shipped for an order, and whether the store has been told.

    ``lines`` is ``[{"external_line_id": ..., "quantity": n}, ...]``. A confirmation worker claims
    the row with a conditional UPDATE of ``claimed_until`` before calling the store, so two workers
    (or a retry racing a dispatcher) never confirm the same shipment at the same time.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="shipments")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="shipments")
    carrier = models.CharField(max_length=100, blank=True, default="")
    service = models.CharField(max_length=100, blank=True, default="")
    tracking_numbers = models.JSONField(default=list)
    lines = models.JSONField(default=list)
    is_partial = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ShipmentState.choices, default=ShipmentState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    store_reference = models.CharField(max_length=255, blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="shipments",
    )
    created_by_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="shipments"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="shipment_account_idempotency_unique",
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["channel", "state"], name="shipment_channel_state"),
            models.Index(fields=["account", "-created_at"], name="shipment_account_created"),
        ]

    def __str__(self) -> str:
        return f"Shipment of {self.order_id} ({self.state})"

    def item_labels(self) -> list[str]:
        """What this shipment holds as "2 × SKU-1 Mug" (the store's line ids mean nothing to people)."""
        names = {line.external_line_id: (line.sku, line.name) for line in self.order.lines.all()}
        labels = []
        for item in self.lines or []:
            sku, name = names.get(
                str(item.get("external_line_id")), ("", f"line {item.get('external_line_id')}")
            )
            labels.append(f"{item.get('quantity')} × {sku or '—'} {name}".strip())
        return labels

    @property
    def created_by_label(self) -> str:
        if self.created_by_id:
            return str(self.created_by)
        if self.created_by_api_key_id:
            return f"API key {self.created_by_api_key}"
        return "Storelink"
