"""Admin for channels: scoped to the staff user's accounts, credentials never rendered.

``credentials`` is excluded from every form and shown only as "•••• set" / "not set". Changes go
through the services (enable/disable actions), so the audit trail records the staff user; "sync
now" goes through the sync engine's dispatcher like the seller's button.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import AccountScopedAdmin
from channels import services, sync
from channels.health import with_recent_failures
from channels.models import ChannelEvent, SalesChannel, SyncRun


class RemovedFilter(admin.SimpleListFilter):
    title = "removed"
    parameter_name = "removed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Live"), ("yes", "Removed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.filter(removed_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(removed_at__isnull=False)
        return queryset


@admin.register(SalesChannel)
class SalesChannelAdmin(AccountScopedAdmin):
    list_display = (
        "name",
        "account",
        "platform",
        "enabled",
        "status",
        "last_sync_at",
        "last_success_at",
        "removed_at",
    )
    list_filter = ("platform", "connection_state", "enabled", RemovedFilter)
    search_fields = ("name", "store_url", "account__name")
    # the stored connection state is shown as ``status``, which says "Removed" for a removed channel
    exclude = ("credentials", "connection_state")
    readonly_fields = (
        "id",
        "account",
        "platform",
        "store_url",
        "enabled",
        "status",
        "last_error",
        "last_error_job",
        "failed_runs",
        "failing_since",
        "credentials_status",
        "settings",
        "store_facts",
        "last_sync_at",
        "last_success_at",
        "removed_at",
        "created_at",
        "updated_at",
    )
    actions = ("enable_selected", "disable_selected", "sync_now_selected")

    @admin.display(description="Connection")
    def status(self, obj: SalesChannel) -> str:
        """What the seller's badge says: "Removed" for a removed channel (its stored state is the
        last one it had), "Degraded" for a connected one with recent failed runs."""
        health = obj.health
        return f"{health.label} ({health.detail})" if health.detail else health.label

    def get_queryset(self, request: HttpRequest) -> QuerySet[SalesChannel]:
        return with_recent_failures(super().get_queryset(request))

    @admin.display(description="Credentials")
    def credentials_status(self, obj: SalesChannel) -> str:
        if obj.credentials_unreadable:
            return "cannot be decrypted: no key in FIELD_ENCRYPTION_KEYS opens them"
        return "•••• set" if obj.has_credentials else "not set"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Channels are connected through the wizard or the API, which test the store first.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # removal is a soft delete with credential wiping: use the seller UI or API

    def save_model(self, request: HttpRequest, obj: SalesChannel, form: Any, change: bool) -> None:
        if change and "name" in form.changed_data:
            services.update_channel_settings(obj, actor=self._actor(request), name=obj.name)

    def _actor(self, request: HttpRequest) -> Any:
        return request.user

    def _apply(self, request: HttpRequest, queryset: QuerySet[SalesChannel], enable: bool) -> None:
        action = services.enable_channel if enable else services.disable_channel
        done = 0
        for channel in queryset.filter(removed_at__isnull=True).select_related("account"):
            try:
                action(channel, actor=self._actor(request))
                done += 1
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, f"{channel.name}: {exc}", messages.ERROR)
        verb = "Enabled" if enable else "Disabled"
        self.message_user(request, f"{verb} {done} channel(s).", messages.SUCCESS)

    @admin.action(description="Enable selected channels")
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[SalesChannel]) -> None:
        self._apply(request, queryset, enable=True)

    @admin.action(description="Disable selected channels")
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[SalesChannel]) -> None:
        self._apply(request, queryset, enable=False)

    @admin.action(description="Sync selected channels now")
    def sync_now_selected(self, request: HttpRequest, queryset: QuerySet[SalesChannel]) -> None:
        """The seller's "sync now" for operators; channels that cannot sync (disabled, removed,
        waiting for reauthorisation) are named instead of silently skipped by the worker."""
        syncable = queryset.filter(pk__in=SalesChannel.objects.syncable().values("pk"))
        started = 0
        for channel in syncable:
            sync.sync_now(channel)
            started += 1
        for channel in queryset.exclude(pk__in=syncable.values("pk")):
            self.message_user(
                request,
                f"{channel.name}: not synced (disabled, removed or needs reauthorising).",
                messages.WARNING,
            )
        self.message_user(request, f"Sync started on {started} channel(s).", messages.SUCCESS)


@admin.register(ChannelEvent)
class ChannelEventAdmin(AccountScopedAdmin):
    list_display = ("created_at", "account", "channel", "action", "actor", "actor_api_key")
    list_filter = ("action", "channel__platform")
    search_fields = ("action", "channel__name", "actor__email")
    readonly_fields = ("account", "channel", "actor", "actor_api_key", "action", "detail", "created_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(AccountScopedAdmin):
    list_display = (
        "created_at",
        "account",
        "channel",
        "job",
        "state",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "failed",
        "attempt",
    )
    list_filter = ("job", "state", "channel__platform")
    search_fields = ("channel__name", "error")
    readonly_fields = (
        "id",
        "account",
        "channel",
        "job",
        "state",
        "created_at",
        "started_at",
        "finished_at",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "failed",
        "error",
        "attempt",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
