"""Admin for tenancy. Staff who are not superusers see only the accounts they belong to."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Account, ApiKey, Membership, User
from accounts.services import revoke_api_key


def admin_account_ids(request: HttpRequest) -> list[Any] | None:
    """Accounts a staff user may see in the admin; ``None`` means all (superuser)."""
    if request.user.is_superuser:
        return None
    return list(Membership.objects.filter(user=request.user).values_list("account_id", flat=True))


class AccountScopedAdmin(admin.ModelAdmin):
    """Base for admin pages of tenant-owned rows: ``account_field`` names the path to the account."""

    account_field = "account"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        allowed = admin_account_ids(request)
        if allowed is None:
            return queryset
        return queryset.filter(**{f"{self.account_field}__in": allowed})

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser and self.account_field not in filters:
            filters.insert(0, self.account_field)
        return filters

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A staff user may only point rows at their own accounts (also what a crafted POST validates).
        allowed = admin_account_ids(request)
        if allowed is not None and db_field.related_model is Account:
            kwargs["queryset"] = Account.objects.filter(pk__in=allowed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        allowed = admin_account_ids(request)
        if allowed is None:
            return queryset
        return queryset.filter(memberships__account_id__in=allowed).distinct()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Only superusers hand out staff or superuser status and permissions.
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return ("is_staff", "is_superuser", "groups", "user_permissions", "last_login", "date_joined")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        allowed = admin_account_ids(request)
        return queryset if allowed is None else queryset.filter(account_id__in=allowed)


@admin.register(Account)
class AccountAdmin(AccountScopedAdmin):
    account_field = "pk"
    list_display = ("name", "created_at")
    search_fields = ("name",)
    readonly_fields = ("id", "created_at")
    inlines = (MembershipInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        allowed = admin_account_ids(request)
        return queryset if allowed is None else queryset.filter(pk__in=allowed)

    def get_list_filter(self, request: HttpRequest) -> Any:
        return ()


@admin.register(Membership)
class MembershipAdmin(AccountScopedAdmin):
    list_display = ("user", "account", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "account__name")
    autocomplete_fields = ("user", "account")


@admin.register(ApiKey)
class ApiKeyAdmin(AccountScopedAdmin):
    """Keys are created in the seller UI (the plaintext is shown there once); here they are revoked."""

    list_display = ("name", "account", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "account__name")
    fields = ("name", "account", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_selected",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True).select_related("account"):
            revoke_api_key(key, actor=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
