"""Sales channels: one connected store of a seller, its audit trail and its sync runs.

The channel row carries its own health (enabled, connection state, last success, last error in
words) so the list page and the dispatcher read one table. Credentials are apart from settings:
``settings`` is safe to render anywhere; ``credentials`` is encrypted and never rendered.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, ApiKey
from channels.fields import EncryptedJSONField, UnreadableCredentials
from connectors.registry import platform_choices


class ConnectionState(models.TextChoices):
    OK = "ok", "Connected"
    PENDING = "pending", "Waiting for authorisation"
    NEEDS_REAUTH = "needs_reauth", "Needs reauthorising"
    ERROR = "error", "Error"


#: Scripts a store URL may end in that name the store's own front or admin page, not another store.
_STORE_SCRIPTS = ("/index.php", "/admin.php")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def store_key_for(store_url: str) -> str:
    """The store a URL reaches, as one comparable text: two channels with the same key would
    download the same orders twice.

    Host in lower case without a trailing dot, the scheme's default port dropped, repeated and
    trailing slashes and a trailing ``index.php`` / ``admin.php`` removed. The scheme itself is
    left out: ``http://`` and ``https://`` to one host are one store. The path keeps its case
    (stores may serve different shops under ``/Shop`` and ``/shop``).
    """
    text = (store_url or "").strip()
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return text.lower()
    if not host:
        return text.lower()
    netloc = host if port in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    for script in _STORE_SCRIPTS:
        if path.lower().endswith(script):
            path = path[: -len(script)].rstrip("/")
    return netloc + path + (f"?{parts.query}" if parts.query else "")


class SalesChannelQuerySet(models.QuerySet["SalesChannel"]):
    def live(self) -> SalesChannelQuerySet:
        """Channels that have not been removed (removed ones stay for order history)."""
        return self.filter(removed_at__isnull=True)

    def for_account(self, account: Account) -> SalesChannelQuerySet:
        return self.filter(account=account)

    def for_listing(self) -> SalesChannelQuerySet:
        """Without the credentials column: a page that lists channels shows names and states,
        and reading the column would decrypt every row's secrets for nothing."""
        return self.defer("credentials")

    def syncable(self) -> SalesChannelQuerySet:
        """What background jobs may touch: live, enabled, and with working credentials."""
        return self.live().filter(
            enabled=True, connection_state__in=[ConnectionState.OK, ConnectionState.ERROR]
        )


class SalesChannel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="channels")
    platform = models.CharField(max_length=32, choices=platform_choices)
    name = models.CharField(max_length=100)
    store_url = models.CharField(max_length=500)
    #: :func:`store_key_for` of ``store_url``, kept by :meth:`save`: one live channel per store
    #: and account (unique index), so two concurrent "add" requests cannot both connect it.
    store_key = models.CharField(max_length=500, blank=True, default="", editable=False)
    enabled = models.BooleanField(default=True)
    connection_state = models.CharField(
        max_length=16, choices=ConnectionState.choices, default=ConnectionState.PENDING
    )
    last_error = models.TextField(blank=True, default="")
    #: The job whose failure wrote ``last_error`` ('' when a connection test or the store's
    #: credentials did): a later success of that job clears it, another job's success does not.
    last_error_job = models.CharField(max_length=16, blank=True, default="")
    #: Background runs that failed in a row (any job; a success of any job resets it), and when
    #: the first of them failed: enough of them put the channel in ``error`` with the message.
    failed_runs = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    credentials = EncryptedJSONField()
    settings = models.JSONField(default=dict, blank=True)
    store_facts = models.JSONField(default=dict, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SalesChannelQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["name"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["account", "name"],
                condition=Q(removed_at__isnull=True),
                name="channel_name_unique_live",
                violation_error_message="You already have a channel with this name.",
            ),
            models.UniqueConstraint(
                fields=["account", "store_key"],
                condition=Q(removed_at__isnull=True) & ~Q(store_key=""),
                name="channel_store_unique_live",
                violation_error_message="This store is already connected in your account.",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["account", "platform"], name="channel_account_platform"),
            models.Index(fields=["platform", "connection_state"], name="channel_platform_state"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Keep ``store_key`` in step with ``store_url`` on every write path (services, admin,
        callbacks), including saves limited by ``update_fields``."""
        self.store_key = store_key_for(self.store_url)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "store_url" in update_fields and "store_key" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "store_key"]
        super().save(*args, **kwargs)

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    @property
    def health(self) -> Any:
        """The badge the seller and the admin see (:func:`channels.health.health_of`): a connected
        channel with recent failed runs reads "Degraded", a removed one "Removed"."""
        cached = self.__dict__.get("_health")
        if cached is None:
            from channels.health import health_of

            cached = self.__dict__["_health"] = health_of(self)
        return cached

    @property
    def has_credentials(self) -> bool:
        """Whether any secret is stored, without exposing it (admin shows "•••• set")."""
        return any(bool(value) for value in (self.credentials or {}).values())

    @property
    def last_error_job_label(self) -> str:
        """The job that failed, in words ('' when the error is not one job's)."""
        return str(SyncJob(self.last_error_job).label) if self.last_error_job in SyncJob.values else ""

    @property
    def credentials_unreadable(self) -> bool:
        """Whether the stored credentials could not be decrypted with any configured key."""
        return isinstance(self.credentials, UnreadableCredentials)


class ChannelEvent(models.Model):
    """Audit trail: who changed a channel, when, and what (never a secret in ``detail``)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="channel_events")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="channel_events",
    )
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="channel_events"
    )
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["account", "channel", "-created_at"], name="event_channel_time")
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.channel_id} at {self.created_at:%Y-%m-%d %H:%M}"


class SyncJob(models.TextChoices):
    ORDERS = "orders", "Orders"
    SHIPMENTS = "shipments", "Shipments"
    STOCK = "stock", "Stock"
    PRICES = "prices", "Prices"
    TEST = "test", "Connection test"


class SyncState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    """One execution of one job on one channel; the seller sees these on the channel page."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sync_runs")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="sync_runs")
    job = models.CharField(max_length=16, choices=SyncJob.choices)
    state = models.CharField(max_length=16, choices=SyncState.choices, default=SyncState.QUEUED)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    attempt = models.PositiveSmallIntegerField(default=1)
    #: How many successful runs that changed nothing this row stands for: such a run following one
    #: like it moves this counter and ``last_checked_at`` instead of adding a row.
    checks = models.PositiveIntegerField(default=1)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        indexes: ClassVar = [
            models.Index(fields=["account", "channel", "-created_at"], name="syncrun_channel_time"),
            models.Index(fields=["state", "created_at"], name="syncrun_state_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_job_display()} on {self.channel_id}: {self.state}"

    @property
    def changed_nothing(self) -> bool:
        """A background job that succeeded without creating, updating or failing anything."""
        return (
            self.job != SyncJob.TEST
            and self.state == SyncState.SUCCEEDED
            and not (self.created or self.updated or self.failed)
        )


# --------------------------------------------------------------------------------------------------
# Scheduling (sync engine): when each job is due, and who is running it right now
# --------------------------------------------------------------------------------------------------


class ChannelSchedule(models.Model):
    """When each job of a channel is next due, and where order downloads left off.

    A ``None`` due time means "nothing to do" (no pending shipment, no product change). The
    dispatcher locks due rows (``SKIP LOCKED``) before moving their due times on, and an eager send
    claims with a conditional UPDATE, so no two of them enqueue the same job.
    """

    channel = models.OneToOneField(
        SalesChannel, primary_key=True, on_delete=models.CASCADE, related_name="schedule"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="channel_schedules")
    orders_due_at = models.DateTimeField(null=True, blank=True)
    shipments_due_at = models.DateTimeField(null=True, blank=True)
    stock_due_at = models.DateTimeField(null=True, blank=True)
    prices_due_at = models.DateTimeField(null=True, blank=True)
    #: Opaque connector checkpoint, saved in the same transaction as the page it follows.
    orders_checkpoint = models.TextField(null=True, blank=True)
    #: When an order poll last found new or changed orders: polling is quick while this is recent
    #: and backs off as the store stays quiet.
    orders_active_at = models.DateTimeField(null=True, blank=True)
    #: When the last full order download finished; one runs at least every order interval of the
    #: channel, even when the store's quick "anything new?" answer keeps saying no.
    orders_downloaded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The dispatcher finds due work through these, so a tick reads the due rows only; most
        # event due times are "nothing to do", which the partial indexes leave out.
        indexes: ClassVar = [
            models.Index(
                fields=["orders_due_at"], name="schedule_orders_due", condition=Q(orders_due_at__isnull=False)
            ),
            models.Index(
                fields=["shipments_due_at"],
                name="schedule_shipments_due",
                condition=Q(shipments_due_at__isnull=False),
            ),
            models.Index(
                fields=["stock_due_at"], name="schedule_stock_due", condition=Q(stock_due_at__isnull=False)
            ),
            models.Index(
                fields=["prices_due_at"], name="schedule_prices_due", condition=Q(prices_due_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"Schedule of {self.channel_id}"


class JobLease(models.Model):
    """The lock that allows one running job per channel and kind, and survives worker crashes.

    A worker claims the lease by a conditional UPDATE ("free or expired → mine until T"); a
    SIGKILLed worker never releases it, so it simply expires and the next run takes over.
    ``holder`` is the id of the SyncRun that holds it ('' when free).
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="job_leases")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="job_leases")
    job = models.CharField(max_length=16, choices=SyncJob.choices)
    holder = models.CharField(max_length=64, blank=True, default="")
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["account", "channel", "job"], name="job_lease_unique")
        ]

    def __str__(self) -> str:
        return f"{self.job} lease on {self.channel_id} ({self.holder or 'free'})"


class CallbackAddress(models.Model):
    """A 3DCart channel's own callback address: ``/callbacks/threedcart/<secret>/``.

    3DCart's callback is not signed and the app's public key is no secret (every seller is shown
    it), so the address itself is what ties a callback to one channel of one account. The secret is
    looked up by its SHA-256 ``digest`` and kept encrypted (like credentials) only so the channel
    page can show it again. It hands over one token: ``authorised_at`` is set when an AUTHORIZE
    was accepted, after which the address only carries REMOVE notices. ``last_timestamp`` is the
    newest callback TimeStamp received here; an older or equal one is a replay.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="callback_addresses")
    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="callback_addresses")
    digest = models.CharField(max_length=64, unique=True)
    secret = EncryptedJSONField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    authorised_at = models.DateTimeField(null=True, blank=True)
    last_timestamp = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"3DCart callback address of {self.channel_id} ({'used' if self.authorised_at else 'open'})"
