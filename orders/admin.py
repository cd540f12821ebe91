"""Django admin for orders and shipments: scoped to the staff user's accounts like every other
admin page (:class:`~accounts.admin.AccountScopedAdmin`), filtered by account, platform and state,
raw payloads read-only, and the operator actions "retry failed shipments" and "sync now"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import AccountScopedAdmin
from channels import sync
from orders.models import Order, OrderLine, Shipment, ShipmentState
from orders.shipments import retry_shipment


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("external_line_id", "sku", "name", "options", "quantity", "unit_price", "tax", "line_total")
    readonly_fields = fields


@admin.display(description="Items")
def shipment_items(shipment: Shipment) -> str:
    return "; ".join(shipment.item_labels())


class ShipmentInline(admin.TabularInline):
    model = Shipment
    extra = 0
    can_delete = False
    fields = ("state", "carrier", "tracking_numbers", "items", "attempts", "last_error", "confirmed_at")
    readonly_fields = fields

    @admin.display(description="Items")
    def items(self, shipment: Shipment) -> str:
        return shipment_items(shipment)


@admin.register(Order)
class OrderAdmin(AccountScopedAdmin):
    list_display = (
        "number",
        "channel",
        "account",
        "placed_at",
        "status_name",
        "total",
        "currency",
        "flag_list",
    )
    # Superusers also get an account filter (AccountScopedAdmin); the channel filter lists only
    # channels of rows this staff user may see, never another account's channel names.
    list_filter = (
        "channel__platform",
        ("channel", admin.RelatedOnlyFieldListFilter),
        "status_code",
        "total_mismatch",
        "unknown_sku",
        "held_unmapped_status",
    )
    search_fields = ("number", "external_id", "customer_email", "customer_name")
    date_hierarchy = "placed_at"
    list_select_related = ("channel", "account")
    inlines = (OrderLineInline, ShipmentInline)
    actions = ("sync_channels_now",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Orders mirror the store: editing them here would be overwritten by the next download.
        return [field.name for field in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """No "delete selected orders": orders mirror the stores (the next download brings them
        back, without the shipments recorded here), and a wrong tick would lose a day's orders."""
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Flags")
    def flag_list(self, obj: Order) -> str:
        return ", ".join(obj.flags)

    @admin.action(description="Sync the selected orders' channels now")
    def sync_channels_now(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        channels = {
            order.channel for order in queryset.select_related("channel") if not order.channel.is_removed
        }
        for channel in channels:
            sync.sync_now(channel)
        messages.success(request, f"Sync started on {len(channels)} channel(s).")


@admin.register(Shipment)
class ShipmentAdmin(AccountScopedAdmin):
    list_display = (
        "order",
        "channel",
        "account",
        "state",
        "attempts",
        "carrier",
        "created_at",
        "confirmed_at",
    )
    list_filter = ("state", "channel__platform", ("channel", admin.RelatedOnlyFieldListFilter))
    search_fields = ("order__number", "idempotency_key", "tracking_numbers")
    list_select_related = ("order", "channel", "account")
    # ``state`` changes only through the confirmation job and the retry action: a hand-set
    # "confirmed" would hide a shipment the store never heard of.
    readonly_fields = (
        "account",
        "order",
        "channel",
        "state",
        "items",
        "lines",
        "is_partial",
        "attempts",
        "last_error",
        "next_attempt_at",
        "claimed_until",
        "idempotency_key",
        "store_reference",
        "confirmed_at",
        "created_by",
        "created_by_api_key",
        "created_at",
        "updated_at",
    )
    actions = ("retry_failed",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Items")
    def items(self, shipment: Shipment) -> str:
        return shipment_items(shipment)

    @admin.action(description="Retry the selected failed shipments")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        retried = 0
        for shipment in queryset.filter(state=ShipmentState.FAILED).select_related(
            "account", "channel", "order"
        ):
            try:
                retry_shipment(shipment, actor=request.user)
            except (PermissionDenied, ValidationError) as exc:
                messages.error(request, f"Shipment of order {shipment.order.number}: {exc}")
            else:
                retried += 1
        messages.success(request, f"{retried} shipment(s) queued again.")


# The sync engine's bookkeeping lives in the channels app; shown here, read-only, for operators.
@admin.register(sync.ChannelSchedule)
class ChannelScheduleAdmin(AccountScopedAdmin):
    list_display = (
        "channel",
        "account",
        "orders_due_at",
        "shipments_due_at",
        "stock_due_at",
        "prices_due_at",
    )
    list_filter = ("channel__platform",)
    readonly_fields = ("channel", "account", "orders_checkpoint", "updated_at")


@admin.register(sync.JobLease)
class JobLeaseAdmin(AccountScopedAdmin):
    list_display = ("channel", "job", "holder", "acquired_at", "expires_at")
    list_filter = ("job", "channel__platform")
    readonly_fields = ("account", "channel", "job", "holder", "acquired_at", "expires_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
