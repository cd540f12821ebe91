"""Tenancy: who a user is, which seller company (Account) they act for, and with which role.

Everything a seller owns hangs off :class:`Account`; rows in other apps carry ``account_id`` and
every unique constraint starts with it, so tenants can later be distributed by account.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.zones import DEFAULT_TIME_ZONE, validate_time_zone


class UserManager(BaseUserManager["User"]):
    """Users are identified by e-mail, stored lower-cased so look-ups are case-insensitive."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username or "")


class User(AbstractUser):
    """A person who logs in. Which account they act for is decided by :mod:`accounts.tenancy`."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every path (sign-up, admin form, shell) stores the address the same way, so log-in and
        # the case-insensitive unique constraint never disagree.
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)


class Account(models.Model):
    """A seller company: the tenant. Opaque UUIDs so ids in URLs cannot be enumerated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    #: What the product master's prices are. Each store's price field has its own basis (declared by
    #: its connector); a push converts with the product's tax rate only where the two differ.
    prices_include_tax = models.BooleanField(
        "product prices include tax",
        default=False,
        help_text="Yes if the prices in your product master include tax (gross); no if they are net.",
    )
    #: The IANA zone every page shows times in, and in which typed dates (filters) are days. Taken
    #: from the browser at sign-up; the seller can change it on the account settings page.
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text="Times are shown in this zone, and dates you type in filters are days in it.",
    )

    class Meta:
        ordering: ClassVar = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


#: Higher number, more rights; ``require_role(request, "admin")`` accepts admin and owner.
ROLE_RANK: dict[str, int] = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_account_user_unique")
        ]
        ordering: ClassVar = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} · {self.account} ({self.role})"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class ApiKey(models.Model):
    """A per-account key for machines (a warehouse, an ERP).

    Only a SHA-256 digest is stored: keys are 256-bit random strings, so a slow hash would add
    nothing but latency to every API call. ``prefix`` is the visible part shown in lists so sellers
    can tell keys apart, and is what look-ups use.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_api_keys"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
