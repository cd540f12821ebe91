"""Admin for products and listings, scoped to the staff user's accounts.

Saving a product goes through :func:`inventory.catalog.save_product`, so an edit in the admin is
audited and pushed to the channels like one from the UI or the API. Store-owned listing fields are
read-only; the seller's overrides are editable.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import AccountScopedAdmin
from inventory import catalog, matching
from inventory.models import InventoryEvent, Listing, Product


class ListingInline(admin.TabularInline):
    model = Listing
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("channel", "sku", "store_quantity", "last_pushed_quantity", "last_pushed_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(AccountScopedAdmin):
    list_display = ("sku", "name", "account", "on_hand", "price", "tax_rate", "updated_at")
    search_fields = ("sku", "name")
    readonly_fields = ("id", "created_at", "updated_at")
    fields = ("id", "account", "sku", "name", "on_hand", "price", "tax_rate", "created_at", "updated_at")
    inlines = (ListingInline,)
    actions = ("push_selected",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "account") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        """Write through the service (validation, audit, channel jobs on commit)."""
        original = Product.objects.get(pk=obj.pk) if change else None
        saved = catalog.save_product(
            obj.account,
            actor=request.user,
            sku=obj.sku,
            product=original,
            name=obj.name,
            on_hand=obj.on_hand,
            price=obj.price,
            tax_rate=obj.tax_rate,
        )
        obj.pk = saved.pk
        obj.updated_at = saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        catalog.delete_product(obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        """ "Delete selected" goes through the service too (audit, orders' unknown-SKU flags)."""
        for product in queryset:
            catalog.delete_product(product, actor=request.user)

    @admin.action(description="Push stock and prices of the selected products' channels now")
    def push_selected(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        channels = {
            listing.channel
            for listing in Listing.objects.filter(product__in=queryset).select_related("channel")
        }
        _push_channels(self, request, channels)


def _push_channels(model_admin: admin.ModelAdmin, request: HttpRequest, channels: Any) -> None:
    pushed = 0
    for channel in channels:
        if channel.is_removed:
            continue
        try:
            if matching.push_now(channel, actor=request.user):
                pushed += 1
        except PermissionDenied as exc:
            model_admin.message_user(request, f"{channel.name}: {exc}", messages.ERROR)
    model_admin.message_user(request, f"Push requested on {pushed} channel(s).", messages.SUCCESS)


class UnmatchedFilter(admin.SimpleListFilter):
    title = "matched"
    parameter_name = "matched"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Matched to a product"), ("no", "Unmatched")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(product__isnull=False)
        if self.value() == "no":
            return queryset.filter(product__isnull=True)
        return queryset


class FailedFilter(admin.SimpleListFilter):
    title = "last push"
    parameter_name = "failed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.exclude(last_error="", last_price_error="")
        return queryset


@admin.register(Listing)
class ListingAdmin(AccountScopedAdmin):
    list_display = (
        "sku",
        "channel",
        "product",
        "store_quantity",
        "last_pushed_quantity",
        "last_pushed_at",
        "store_price",
        "last_pushed_price",
        "removed_at",
    )
    list_filter = ("channel__platform", UnmatchedFilter, FailedFilter)
    search_fields = ("sku", "name", "remote_id")
    list_select_related = ("channel", "product")
    readonly_fields = (
        "id",
        "account",
        "channel",
        "product",
        "sku",
        "remote_id",
        "remote_variant_id",
        "name",
        "store_enabled",
        "store_quantity",
        "store_price",
        "last_pushed_quantity",
        "last_pushed_at",
        "last_error",
        "last_pushed_price",
        "last_price_pushed_at",
        "last_price_error",
        "seen_at",
        "removed_at",
        "created_at",
        "updated_at",
    )
    actions = ("retry_failed",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # listings come from the stores

    def save_model(self, request: HttpRequest, obj: Listing, form: Any, change: bool) -> None:
        matching.update_listing_overrides(
            obj,
            actor=request.user,
            buffer=obj.buffer,
            max_quantity=obj.max_quantity,
            price_multiplier=obj.price_multiplier,
            price_offset=obj.price_offset,
        )

    @admin.action(description="Retry: re-read and push the selected listings' channels now")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        _push_channels(self, request, {listing.channel for listing in queryset.select_related("channel")})


@admin.register(InventoryEvent)
class InventoryEventAdmin(AccountScopedAdmin):
    list_display = ("created_at", "account", "action", "actor", "actor_api_key")
    list_filter = ("action",)
    readonly_fields = ("account", "actor", "actor_api_key", "action", "detail", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
