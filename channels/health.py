"""A channel's health in one word for the seller: connected, degraded, failing, waiting, removed.

``connection_state`` turns to ``error`` only after several failures *in a row*; a store that fails
every third run never gets there, yet a seller watching a green "Connected" would miss that a third
of the order downloads or stock pushes did not happen. So a connected channel whose latest run
failed, or that had :data:`DEGRADED_AFTER_FAILURES` failed runs within :data:`DEGRADED_WINDOW`,
is shown as degraded, with how many runs failed and when it last succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.timesince import timesince

if TYPE_CHECKING:
    from channels.models import SalesChannel

#: How far back failed runs count towards "degraded".
DEGRADED_WINDOW = timedelta(hours=3)
#: Failed runs within the window that make a connected channel degraded.
DEGRADED_AFTER_FAILURES = 2
#: The annotation :func:`with_recent_failures` adds (read by :func:`health_of`).
RECENT_FAILURES = "recent_failed_runs"


@dataclass(frozen=True)
class Health:
    """What the badge says: ``key`` picks its colour (CSS ``state-<key>``), ``label`` its word,
    ``detail`` a short line under it ('' when there is nothing to add)."""

    key: str
    label: str
    detail: str = ""

    @property
    def degraded(self) -> bool:
        return self.key == "degraded"


def with_recent_failures(queryset: QuerySet[SalesChannel]) -> QuerySet[SalesChannel]:
    """Channels with their failed runs of the last :data:`DEGRADED_WINDOW` counted in the same
    query, so a list of channels costs no query per row. A correlated count per channel: it reads
    only the window's runs through the (account, channel, created_at) index, never the history."""
    from channels.models import SyncRun, SyncState

    since = timezone.now() - DEGRADED_WINDOW
    failed = (
        SyncRun.objects.filter(
            account_id=OuterRef("account_id"),
            channel_id=OuterRef("pk"),
            created_at__gte=since,
            state=SyncState.FAILED,
        )
        .order_by()
        .values("channel_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    return queryset.annotate(**{RECENT_FAILURES: Coalesce(Subquery(failed), 0)})


def recent_failures(channel: SalesChannel) -> int:
    """Failed runs of the last :data:`DEGRADED_WINDOW`: the annotation when there is one."""
    counted = getattr(channel, RECENT_FAILURES, None)
    if counted is not None:
        return int(counted)
    from channels.models import SyncRun, SyncState

    since = timezone.now() - DEGRADED_WINDOW
    failed = SyncRun.objects.filter(
        account_id=channel.account_id, channel_id=channel.pk, state=SyncState.FAILED, created_at__gte=since
    )
    return failed.count()


def _window_words() -> str:
    hours = int(DEGRADED_WINDOW.total_seconds() // 3600)
    return "the last hour" if hours == 1 else f"the last {hours} hours"


def health_of(channel: SalesChannel) -> Health:
    """The channel's badge. A removed channel never reads "Connected", whatever its stored state."""
    from channels.models import ConnectionState

    if channel.removed_at is not None:
        return Health("removed", "Removed")
    state = channel.connection_state
    if state != ConnectionState.OK:
        label = str(ConnectionState(state).label) if state in ConnectionState.values else str(state)
        return Health(str(state), label)
    failures = recent_failures(channel)
    if channel.failed_runs or failures >= DEGRADED_AFTER_FAILURES:
        failures = max(failures, channel.failed_runs)
        runs = "run" if failures == 1 else "runs"
        detail = f"{failures} failed {runs} in {_window_words()}"
        if channel.failed_runs:
            detail += ", including the latest"
        if channel.last_success_at is not None:
            detail += f"; last success {timesince(channel.last_success_at)} ago"
        return Health("degraded", "Degraded", detail)
    return Health("ok", str(ConnectionState.OK.label))


def health_label(channel: Any) -> str:
    """The badge's word alone (the admin's list column)."""
    return health_of(channel).label
