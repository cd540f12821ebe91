"""The one place a sync job runs, and the scheduling that decides when it runs.

Every job (orders, shipments, stock, prices) goes through :func:`run_channel_job`: it re-reads the
channel, claims a lease (one running job per channel and kind, expiring so a SIGKILLed worker's job
is picked up again), records a :class:`~channels.models.SyncRun`, builds the connector, calls the
job's ``work(channel, connector, run)`` and turns the connector's typed errors into what the seller
and the operator need: ``AuthError`` pauses the channel and e-mails its admins; rate limits and
transient errors are re-raised for the Celery task to retry with back-off; permanent and protocol
errors fail the run with the error in words (and the store's raw reply, secrets masked).

Scheduling state lives in :class:`~channels.models.ChannelSchedule` (one row per channel): a due
time per job, ``None`` meaning nothing to do. A job request is such a due time, written in the
transaction of the change that needs the job, then sent at once after commit when the broker takes
it. The beat-driven dispatcher claims due rows in batches (locked with ``SKIP LOCKED``), so several
dispatchers can run and none enqueues a job another claimed; its cost follows what is due.
Tasks are sent by the names the apps register (:func:`register_job`), so this module imports
neither ``orders`` nor ``inventory``.

Why one module of this size: scheduling and running share the schedule row and its statements (an
event job's start claims the lease, records its SyncRun and takes its due time in one statement;
the heartbeat renews the lease and writes the job's checkpoint together), and order polling
(:func:`poll_orders`, :func:`orders_polled`, :func:`next_orders_due`) was still being reworked when
the apps were split. When it is split, the cut follows the sections below: scheduling (due times,
job requests, spread slots, polling intervals, the dispatcher), leases and running a job
(:func:`run_channel_job`, leases, heartbeat, retry countdowns, SyncRun bookkeeping), and
housekeeping (stale runs, resuming paused work, reconciling, pruning).
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import current_app
from django.apps import apps
from django.conf import settings as django_settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Case, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.sql import UpdateQuery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Membership, Role
from channels.models import (
    ChannelSchedule,
    ConnectionState,
    JobLease,
    SalesChannel,
    SyncJob,
    SyncRun,
    SyncState,
)
from config.db import execute_ctes
from config.logging import mask_secrets
from connectors.base import Connector
from connectors.errors import AuthError, ConnectorError, ProtocolError, RateLimited, TransientError
from connectors.http import before_store_request

log = logging.getLogger("storelink.sync")

#: Celery task name per job; every task takes ``channel_id: str``.
JOB_TASKS: dict[str, str] = {}


def register_job(job: str, task_name: str) -> None:
    """Name the Celery task that runs ``job`` on one channel (apps call this in ``AppConfig.ready``),
    so the engine schedules, leases and sends every job without naming any job's code."""
    if job not in DUE_FIELDS:
        raise ValueError(f"{job!r} has no due-time column in ChannelSchedule")
    JOB_TASKS[job] = task_name


#: The ChannelSchedule column holding each job's next due time.
DUE_FIELDS: dict[str, str] = {
    SyncJob.ORDERS: "orders_due_at",
    SyncJob.SHIPMENTS: "shipments_due_at",
    SyncJob.STOCK: "stock_due_at",
    SyncJob.PRICES: "prices_due_at",
}

#: Jobs that run because something happened (not on a clock): when their lease is busy, the
#: request is kept as a due time so the change is not lost behind the run already in progress.
EVENT_JOBS = frozenset({SyncJob.SHIPMENTS, SyncJob.STOCK, SyncJob.PRICES})

DEFAULT_ORDER_INTERVAL_MINUTES = 5
#: A job's lease is renewed while the job works (every page, and before store requests once a third
#: of it has passed), so it can be short: a killed worker blocks its channel's job this long at most.
DEFAULT_LEASE_SECONDS = 30
#: Retry back-off for transient store errors: base * 2**retries, capped, with jitter.
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 600.0
MAX_TASK_RETRIES = 6
#: Background runs failing in a row before the channel shows "error" (fewer may be a blip).
FAILING_AFTER_RUNS = 3

Work = Callable[[SalesChannel, Connector, SyncRun], Any]


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


def default_lease_seconds() -> int:
    """How long a claimed job may run without renewing its lease (``SYNC_LEASE_SECONDS``).

    Long jobs renew it per page (:func:`heartbeat`), so this only bounds how long a crashed
    worker's job stays blocked. Tests and the crash demo shorten it through the environment.
    """
    value = int(getattr(django_settings, "SYNC_LEASE_SECONDS", 0) or 0)
    return max(1, value) if value else DEFAULT_LEASE_SECONDS


def order_interval(channel: SalesChannel) -> timedelta:
    """How often the channel's orders are fully downloaded at the least (between the quick "anything
    new?" polls): its setting, default 5 minutes, never below 1."""
    raw = (channel.settings or {}).get("order_interval_minutes")
    try:
        minutes = int(raw) if raw not in (None, "") else DEFAULT_ORDER_INTERVAL_MINUTES
    except (TypeError, ValueError):
        minutes = DEFAULT_ORDER_INTERVAL_MINUTES
    return timedelta(minutes=max(1, minutes))


def retry_countdown(exc: BaseException, retries: int) -> float:
    """Seconds before retrying a job: the store's Retry-After if it gave one, else back-off."""
    if isinstance(exc, RateLimited):
        return max(1.0, exc.retry_after)
    # The exponent is capped first: a count of failures in a row can be in the thousands.
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * (2 ** min(max(0, retries), 20)))
    return delay * random.uniform(0.8, 1.2)


# --------------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------------


def ensure_schedules(channels: Iterable[SalesChannel], orders_due_at: datetime | None = None) -> None:
    """Create missing schedule rows (orders due at once); one query, safe under concurrency."""
    due = orders_due_at or timezone.now()
    rows = [
        ChannelSchedule(channel_id=channel.pk, account_id=channel.account_id, orders_due_at=due)
        for channel in channels
    ]
    if rows:
        ChannelSchedule.objects.bulk_create(rows, ignore_conflicts=True)


def schedule_for(channel: SalesChannel) -> ChannelSchedule:
    ensure_schedules([channel])
    return ChannelSchedule.objects.get(pk=channel.pk)


def mark_due(channel: SalesChannel, job: str, at: datetime | None = None) -> None:
    """Make ``job`` due at ``at`` (default now) unless it is already due earlier."""
    mark_due_many([channel], job, at)


def mark_due_many(channels: Iterable[SalesChannel], job: str, at: datetime | None = None) -> None:
    """:func:`mark_due` for several channels: one statement however many there are once their
    schedule rows exist (on PostgreSQL; two elsewhere), two more the first time."""
    field = DUE_FIELDS[job]
    when = at or timezone.now()
    channels = list(channels)
    if not channels:
        return
    if connection.vendor == "postgresql":
        # Mark the rows that exist and list which do, in one round trip (every order page asks
        # for stock jobs): only channels without a schedule row yet take the slower way below.
        ids = [channel.pk for channel in channels]
        due_now = Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gt": when})
        mark, mark_params = _update_sql(ChannelSchedule, Q(pk__in=ids) & due_now, {field: when})
        rows, row_params = (
            ChannelSchedule.objects.filter(pk__in=ids).values_list("pk").query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(f"WITH marked AS ({mark}) {rows}", [*mark_params, *row_params])
            existing = {str(pk) for (pk,) in cursor.fetchall()}
        channels = [channel for channel in channels if str(channel.pk) not in existing]
        if not channels:
            return
    ensure_schedules(channels)
    ChannelSchedule.objects.filter(pk__in=[channel.pk for channel in channels]).filter(
        Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gt": when})
    ).update(**{field: when})


#: One quick retry when publishing (a pooled connection the broker closed is reopened), and no
#: more: a broker that is down must not hold up the request that asked for the job, whose due
#: time is already committed for the dispatcher to relay.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def send_job(channel_id: Any, job: str) -> None:
    """Put the job's task on the broker now; raises when the broker cannot take it.

    Callers claim the job's due time first (:func:`_claim_now`, the dispatcher), so a job is
    sent by whoever claimed it and by nobody else.
    """
    current_app.send_task(JOB_TASKS[job], args=[str(channel_id)], retry_policy=PUBLISH_RETRY_POLICY)
    log.info("sync.job.enqueued channel=%s job=%s", channel_id, job)


def relay_jobs(claimed: list[tuple[str, str]], now: datetime | None = None) -> list[tuple[str, str]]:
    """Send claimed jobs; returns those the broker took.

    On the first broker error the job and every one after it are made due again (the dispatcher
    relays them on its next tick) and nothing more is tried: a broker that is down fails every
    send, and each try costs time. One log line, no traceback: an outage is not a bug.
    """
    sent: list[tuple[str, str]] = []
    for index, (channel_id, job) in enumerate(claimed):
        try:
            send_job(channel_id, job)
        except Exception as exc:
            rest = claimed[index:]
            log.warning(
                "sync.job.enqueue_deferred channel=%s job=%s deferred=%d error=%s",
                channel_id,
                job,
                len(rest),
                f"{exc.__class__.__name__}: {exc}"[:200],
            )
            _give_back(rest, now or timezone.now())
            break
        sent.append((channel_id, job))
    return sent


def _give_back(claims: list[tuple[str, str]], when: datetime) -> None:
    by_job: dict[str, list[str]] = {}
    for channel_id, job in claims:
        by_job.setdefault(job, []).append(channel_id)
    for job, channel_ids in by_job.items():
        field = DUE_FIELDS[job]
        ChannelSchedule.objects.filter(pk__in=channel_ids).filter(
            Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gt": when})
        ).update(**{field: when})


def _claim_now(channel_ids: list[Any], job: str, following: datetime | None) -> list[tuple[str, str]]:
    """Claim ``job`` on these channels if it is still due: the same conditional UPDATE the
    dispatcher uses, so a job is sent once whether the request or the dispatcher gets there first.
    Orders restart their clock at ``following``; event jobs go back to "nothing to do"."""
    field = DUE_FIELDS[job]
    now = timezone.now()
    table = connection.ops.quote_name(ChannelSchedule._meta.db_table)
    column = connection.ops.quote_name(field)
    pk = ChannelSchedule._meta.pk
    ids = [pk.get_db_prep_value(channel_id, connection) for channel_id in channel_ids]
    when = ChannelSchedule._meta.get_field(field)
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s "  # noqa: S608 (names are ours)
            f'WHERE "channel_id" IN ({placeholders}) AND {column} <= %s RETURNING "channel_id"',
            [
                when.get_db_prep_value(following, connection),
                *ids,
                when.get_db_prep_value(now, connection),
            ],
        )
        won = [pk.to_python(row[0]) for row in cursor.fetchall()]
    return [(str(channel_id), str(job)) for channel_id in won]


def _send_requested(requests: list[tuple[list[Any], datetime | None]], job: str) -> None:
    """After commit: claim and send at once (low latency). Never raises: the request's writes
    are committed and its due times stand, so anything that fails here only waits for the
    dispatcher's next tick."""
    try:
        claimed = [
            claim for channel_ids, following in requests for claim in _claim_now(channel_ids, job, following)
        ]
        relay_jobs(claimed)
    except Exception as exc:
        log.warning(
            "sync.job.enqueue_deferred job=%s error=%s", job, f"{exc.__class__.__name__}: {exc}"[:200]
        )


def request_job(channel: SalesChannel, job: str) -> None:
    """Ask for ``job`` on ``channel`` (sync now, a product change, a recorded shipment).

    The request is a due time written in the caller's transaction, so it is committed with the
    change that made it necessary and survives a broker outage; after commit the job is sent at
    once if the broker takes it, else the dispatcher relays it on its next tick. Never sent
    inside an open transaction: the worker must see the rows that made the job necessary.
    """
    request_jobs([channel], job)


def request_jobs(channels: Iterable[SalesChannel], job: str) -> None:
    """:func:`request_job` for several channels in a constant number of statements."""
    if job not in JOB_TASKS:
        raise ValueError(f"unknown job {job!r}")
    channels = list(channels)
    if not channels:
        return
    mark_due_many(channels, job)
    requests: list[tuple[list[Any], datetime | None]]
    if job == SyncJob.ORDERS:
        # The claim restarts the order clock, so the dispatcher does not download again at once.
        requests = [([channel.pk], next_orders_due(channel)) for channel in channels]
    else:
        requests = [([channel.pk for channel in channels], None)]
    transaction.on_commit(lambda: _send_requested(requests, job))


def spread_slot(channel_id: Any, period: timedelta, after: datetime) -> datetime:
    """The first time after ``after`` in the channel's own slot of a repeating ``period``.

    Each channel has a stable offset within the period, taken from its id (random UUIDs spread
    evenly), so periodic work on thousands of channels is spread over the period instead of all
    channels coming due in the same second, and stays spread however the runs drift.
    """
    seconds = max(1.0, period.total_seconds())
    offset = (uuid.UUID(str(channel_id)).int >> 64) % int(seconds * 1000) / 1000
    start = after.timestamp()
    slot = (math.floor((start - offset) / seconds) + 1) * seconds + offset
    return datetime.fromtimestamp(slot, tz=UTC)


def order_poll_interval(active_at: datetime | None, now: datetime | None = None) -> timedelta:
    """How long until the next order poll of a store whose last new or changed order was seen at
    ``active_at`` (``None``: never).

    ``ORDER_POLL_BUSY_SECONDS`` while the store had something within the last
    ``ORDER_POLL_BACKOFF_AFTER_SECONDS``; the interval doubles for every further such spell of
    quiet (then twice as long, and so on) up to ``ORDER_POLL_IDLE_SECONDS``. A busy shop is
    polled often, so its next sale reaches the other stores quickly; a quiet one costs a request
    or two a minute. The steps are whole doublings so each channel keeps a stable spread slot.
    """
    busy, idle, after = _poll_settings()
    if active_at is None:
        return timedelta(seconds=idle)
    quiet = max(0.0, ((now or timezone.now()) - active_at).total_seconds())
    seconds, spell = busy, after
    while quiet >= spell and seconds < idle:
        quiet -= spell
        seconds, spell = seconds * 2, spell * 2
    return timedelta(seconds=min(seconds, idle))


def _poll_settings() -> tuple[float, float, float]:
    busy = max(1.0, float(getattr(django_settings, "ORDER_POLL_BUSY_SECONDS", 15)))
    idle = max(busy, float(getattr(django_settings, "ORDER_POLL_IDLE_SECONDS", 60)))
    after = max(1.0, float(getattr(django_settings, "ORDER_POLL_BACKOFF_AFTER_SECONDS", 120)))
    return busy, idle, after


def next_orders_due(
    channel: SalesChannel | Any,
    now: datetime | None = None,
    *,
    manual: bool = True,
    active_at: datetime | None = None,
) -> datetime:
    """When the channel's next order poll is due after one starting ``now``: the next slot of its
    poll interval (:func:`order_poll_interval`), each channel in its own slot so thousands of
    channels do not poll in the same second. After a ``manual`` poll (a "sync now", which runs at
    once) the next one is at least half an interval away."""
    now = now or timezone.now()
    interval = order_poll_interval(active_at, now)
    channel_id = getattr(channel, "pk", channel)
    return spread_slot(channel_id, interval, now + interval / 2 if manual else now)


def orders_polled(channel_id: Any, *, downloaded: bool, found: bool, now: datetime | None = None) -> None:
    """Record an order poll's outcome on the schedule: one UPDATE.

    ``downloaded``: a full download ran (the next one is due an order interval later at the
    latest). ``found``: it created or changed orders, so the store is busy: its next poll moves to
    the busy interval's next slot (earlier only: a "sync now" already due stays due).
    """
    now = now or timezone.now()
    changes: dict[str, Any] = {}
    if downloaded:
        changes["orders_downloaded_at"] = now
    if found:
        changes["orders_active_at"] = now
        sooner = next_orders_due(channel_id, now, manual=False, active_at=now)
        changes["orders_due_at"] = Case(
            When(orders_due_at__isnull=False, orders_due_at__lt=sooner, then=F("orders_due_at")),
            default=Value(sooner),
        )
    if changes:
        ChannelSchedule.objects.filter(pk=channel_id).update(**changes)


def poll_orders(download: Work) -> Work:
    """The order job's work: ask the store whether anything is new, and ``download`` only then.

    A poll first asks the connector's cheap "anything new since this checkpoint?" question
    (:meth:`~connectors.base.Connector.orders_changed_since`: no order rows, one or two small
    requests), so the job can run every few seconds on a busy store without re-reading pages of
    orders each time. The full download runs when the store says yes or cannot tell, on the first
    download, and at least once per order interval of the channel whatever the store says (what a
    count or a cursor cannot see, such as a second change to an order already changed today, is
    found then). A download that creates or changes orders makes the store busy (polled more
    often); the stock jobs those orders need are requested by the download itself.
    """

    def work(channel: SalesChannel, connector: Connector, run: SyncRun) -> Any:
        row = (
            ChannelSchedule.objects.filter(pk=channel.pk)
            .values_list("orders_checkpoint", "orders_downloaded_at")
            .first()
        )
        checkpoint, downloaded_at = row if row else (None, None)
        now = timezone.now()
        if checkpoint and downloaded_at and now - downloaded_at < order_interval(channel):
            changed = connector.orders_changed_since(checkpoint)
            log.info("sync.orders.probe channel=%s changed=%s", channel.pk, changed)
            if changed is False:
                return None
        result = download(channel, connector, run)
        # The first download brings the store's backlog: that says nothing about how busy it is.
        found = bool(checkpoint) and bool(run.created or run.updated)
        orders_polled(channel.pk, downloaded=True, found=found)
        return result

    return work


#: Schedule rows one dispatcher statement claims; a tick claims batches until none is left.
DISPATCH_BATCH = 500
#: Batches per tick at most (the rest waits for the next tick, so one tick never runs forever).
DISPATCH_MAX_BATCHES = 40


def dispatch_due_jobs(now: datetime | None = None, *, batch: int = DISPATCH_BATCH) -> list[tuple[str, str]]:
    """Enqueue every job that is due on a syncable channel; returns what was enqueued.

    Costs what is due, not what exists: due times are indexed, and one statement claims a batch of
    due schedule rows (``SELECT … FOR UPDATE SKIP LOCKED``: a second dispatcher running at the same
    time skips the rows this one holds and claims others), a second writes their next due times,
    and the jobs are sent once that commits. Orders get their next slot from the channel's
    interval; event jobs go back to "nothing to do" (``None``) until something new happens (a
    failed confirmation sets its own retry time).
    """
    now = now or timezone.now()
    claimed: list[tuple[str, str]] = []
    for _ in range(DISPATCH_MAX_BATCHES):
        with transaction.atomic():
            rows = _lock_due(now, batch)
            won = _advance(rows, now)
        sent = relay_jobs(won, now) if won else []
        claimed += sent
        if len(rows) < batch or len(sent) < len(won):
            break  # nothing more is due, or the broker is down (what was claimed is due again)
    return claimed


def _lock_due(now: datetime, batch: int) -> list[ChannelSchedule]:
    due = Q()
    for field in DUE_FIELDS.values():
        due |= Q(**{f"{field}__lte": now})
    return list(
        ChannelSchedule.objects.filter(due)
        .filter(
            channel__removed_at__isnull=True,
            channel__enabled=True,
            channel__connection_state__in=[ConnectionState.OK, ConnectionState.ERROR],
        )
        .select_related("channel")
        .only("channel_id", "orders_active_at", *DUE_FIELDS.values(), "channel__id", "channel__settings")
        .select_for_update(skip_locked=True, of=("self",))[:batch]
    )


def _advance(rows: list[ChannelSchedule], now: datetime) -> list[tuple[str, str]]:
    """Give the locked rows their next due times (one statement) and return the jobs claimed."""
    claimed: list[tuple[str, str]] = []
    for schedule in rows:
        for job, field in DUE_FIELDS.items():
            due_at = getattr(schedule, field)
            if due_at is None or due_at > now:
                continue
            setattr(
                schedule,
                field,
                next_orders_due(schedule.channel_id, now, manual=False, active_at=schedule.orders_active_at)
                if job == SyncJob.ORDERS
                else None,
            )
            claimed.append((str(schedule.channel_id), str(job)))
    if not rows:
        return claimed
    fields = list(DUE_FIELDS.values())
    if connection.vendor != "postgresql":
        for schedule in rows:
            ChannelSchedule.objects.filter(pk=schedule.channel_id).update(
                **{field: getattr(schedule, field) for field in fields}
            )
        return claimed
    quote = connection.ops.quote_name
    table = quote(ChannelSchedule._meta.db_table)
    row = "(%s::uuid" + ", %s::timestamptz" * len(fields) + ")"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS s SET "  # noqa: S608 (names are ours)
            + ", ".join(f"{quote(field)} = v.{quote(field)}" for field in fields)
            + f" FROM (VALUES {', '.join([row] * len(rows))}) AS v(channel_id, "
            + ", ".join(quote(field) for field in fields)
            + ') WHERE s."channel_id" = v.channel_id',
            [
                value
                for schedule in rows
                for value in (schedule.channel_id, *(getattr(schedule, f) for f in fields))
            ],
        )
    return claimed


def sync_now(channel: SalesChannel, jobs: Iterable[str] | None = None) -> list[str]:
    """The seller's "sync now": orders and pending shipments (plus stock/prices if enabled) at once.

    The order schedule restarts from now (when the download is sent) so the dispatcher does not
    run the same download again a moment later.
    """
    settings = channel.settings or {}
    if jobs is None:
        jobs = [SyncJob.ORDERS, SyncJob.SHIPMENTS]
        if settings.get("stock_sync", True):
            jobs.append(SyncJob.STOCK)
        if settings.get("price_sync", False):
            jobs.append(SyncJob.PRICES)
    jobs = [str(job) for job in jobs]
    for job in jobs:
        request_job(channel, job)
    return jobs


# --------------------------------------------------------------------------------------------------
# Leases
# --------------------------------------------------------------------------------------------------


def _claim_statement(channel: SalesChannel, job: str, holder: str, seconds: int) -> tuple[str, list[Any]]:
    """PostgreSQL: the lease claimed in one statement that returns a row only when it is ours.

    ``INSERT … ON CONFLICT DO UPDATE … WHERE free or expired``: a new lease row is created held;
    an existing one is taken only if free or expired. The conflict path locks the row and
    re-checks the condition on its latest version, so two claimers cannot both win.
    """
    table = connection.ops.quote_name(JobLease._meta.db_table)
    now = timezone.now()
    sql = (
        f'INSERT INTO {table} ("account_id", "channel_id", "job", "holder", "acquired_at", "expires_at") '  # noqa: S608 (names are ours)
        "VALUES (%s, %s, %s, %s, %s, %s) "
        'ON CONFLICT ("account_id", "channel_id", "job") DO UPDATE SET "holder" = EXCLUDED."holder", '
        '"acquired_at" = EXCLUDED."acquired_at", "expires_at" = EXCLUDED."expires_at" '
        f'WHERE {table}."holder" = \'\' OR {table}."expires_at" <= %s RETURNING 1'
    )
    return sql, [channel.account_id, channel.pk, job, holder, now, now + timedelta(seconds=seconds), now]


def claim_lease(channel: SalesChannel, job: str, holder: str, seconds: int) -> bool:
    """Take the (channel, job) lease if it is free or expired; ``False`` when someone holds it."""
    if connection.vendor == "postgresql":
        sql, params = _claim_statement(channel, job, holder, seconds)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None
    now = timezone.now()
    JobLease.objects.bulk_create(
        [JobLease(account_id=channel.account_id, channel_id=channel.pk, job=job, expires_at=now)],
        ignore_conflicts=True,
    )
    taken = (
        JobLease.objects.filter(account_id=channel.account_id, channel_id=channel.pk, job=job)
        .filter(Q(holder="") | Q(expires_at__lte=now))
        .update(holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=seconds))
    )
    return bool(taken)


def extend_lease(run: SyncRun, seconds: int | None = None) -> bool:
    """Push the lease's expiry forward; ``False`` if this run no longer holds it (it expired and
    another worker took over: the caller should stop)."""
    seconds = seconds or getattr(run, "_lease_seconds", None) or default_lease_seconds()
    return bool(
        JobLease.objects.filter(channel_id=run.channel_id, job=run.job, holder=str(run.pk)).update(
            expires_at=timezone.now() + timedelta(seconds=seconds)
        )
    )


def _claim_and_start(channel: SalesChannel, job: str, run: SyncRun, seconds: int) -> bool:
    """Claim the lease and record the running SyncRun; ``False`` (and no run) when the lease is busy.

    On PostgreSQL both happen in one statement (the run is inserted from the claim's result, so
    it exists exactly when the claim succeeded): one round trip and one commit instead of three
    statements, which is most of what a small job costs besides its real work.

    An event job that starts also takes the requests made before it (its due time, if not later
    than now): it reads the rows those requests were about, so running again for them would do
    nothing. Requests made while it runs stay due and get their own run.
    """
    due_field = DUE_FIELDS[job] if job in EVENT_JOBS else None
    if connection.vendor != "postgresql":
        if not claim_lease(channel, job, str(run.pk), seconds):
            return False
        run.save(force_insert=True)
        if due_field:
            ChannelSchedule.objects.filter(pk=channel.pk, **{f"{due_field}__lte": timezone.now()}).update(
                **{due_field: None}
            )
        return True
    claim_sql, params = _claim_statement(channel, job, str(run.pk), seconds)
    requests = ""
    if due_field:
        schedules, due = (
            connection.ops.quote_name(ChannelSchedule._meta.db_table),
            connection.ops.quote_name(due_field),
        )
        requests = (
            f", taken AS (UPDATE {schedules} SET {due} = NULL WHERE "  # noqa: S608 (names are ours)
            f'"channel_id" = %s AND {due} <= %s AND EXISTS (SELECT 1 FROM claimed))'
        )
        params += [channel.pk, timezone.now()]
    fields = SyncRun._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields)
    params += [f.get_db_prep_save(f.pre_save(run, True), connection) for f in fields]
    table = connection.ops.quote_name(SyncRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH claimed AS ({claim_sql}){requests} "  # noqa: S608 (names are ours)
            f"INSERT INTO {table} ({columns}) SELECT {values} FROM claimed RETURNING 1",
            params,
        )
        started = cursor.fetchone() is not None
    if started:
        run._state.adding = False
        run._state.db = connection.alias
    return started


def commit_with_success(run: SyncRun | None, writes: list[tuple[str, list[Any]]]) -> bool:
    """Hand a job's last writes to the engine, to be committed by the statement that records the
    run's success: the run is shown succeeded exactly when they are saved, in one round trip.

    ``writes`` are PostgreSQL data-modifying CTEs, ``("name AS (UPDATE …)", params)``, that must
    not touch the run, its channel or its lease (one statement cannot change a row twice). Returns
    ``False`` (the caller writes them itself, now) without a run, off PostgreSQL, or when the run
    already holds writes (one hand-over per run, so CTE names never clash). Should the job fail
    after all, they are written before the failure is recorded.
    """
    if run is None or connection.vendor != "postgresql" or getattr(run, "_final_writes", None):
        return False
    run._final_writes = list(writes)  # type: ignore[attr-defined]
    return True


def _write_final_writes_now(run: SyncRun) -> None:
    writes: list[tuple[str, list[Any]]] = getattr(run, "_final_writes", [])
    run._final_writes = []  # type: ignore[attr-defined]
    execute_ctes(writes)


def _finish_succeeded(run: SyncRun, channel: SalesChannel, holder: str) -> None:
    """Record a successful run, the channel's last sync and health, and free the lease.

    Same effects as :func:`_finish` + the channel updates + :func:`release_lease`; on PostgreSQL
    in one statement (one round trip, one commit). The channel leaves the ``error`` state when it
    was in it: the store answered. Its ``last_error`` is cleared only when this job wrote it (or
    no job did, e.g. a failed connection test): a stock push that succeeds says nothing about an
    order download that keeps failing, so that error stays until a download succeeds. The
    failures themselves stay in the run history.
    """
    if connection.vendor != "postgresql":
        run.state = SyncState.SUCCEEDED
        folded = run.changed_nothing and _fold_into_previous(run)
        if not folded:
            _finish(run, SyncState.SUCCEEDED)
        now = timezone.now()
        SalesChannel.objects.filter(pk=channel.pk).update(
            last_sync_at=now, last_success_at=now, failed_runs=0, failing_since=None
        )
        SalesChannel.objects.filter(pk=channel.pk, last_error_job__in=["", run.job]).update(
            last_error="", last_error_job=""
        )
        SalesChannel.objects.filter(pk=channel.pk, connection_state=ConnectionState.ERROR).update(
            connection_state=ConnectionState.OK
        )
        release_lease(channel.pk, run.job, holder)
        return
    run.state = SyncState.SUCCEEDED
    run.finished_at = now = timezone.now()
    quote = connection.ops.quote_name
    runs, channels, leases = (quote(model._meta.db_table) for model in (SyncRun, SalesChannel, JobLease))
    writes: list[tuple[str, list[Any]]] = getattr(run, "_final_writes", [])
    run._final_writes = []  # type: ignore[attr-defined]
    fold_sql, fold_params, only_unfolded = "", [], ""
    if run.changed_nothing:
        # The previous run of this job, if it too succeeded without changing anything, takes this
        # one's check (counter, time, latest counts) and this run's row goes away.
        fold_sql = (
            f'previous AS (SELECT "id" FROM {runs} WHERE "account_id" = %s AND "channel_id" = %s '  # noqa: S608 (names are ours)
            'AND "job" = %s AND "id" <> %s ORDER BY "created_at" DESC LIMIT 1), '
            f'folded AS (UPDATE {runs} SET "checks" = "checks" + 1, "last_checked_at" = %s, '
            '"fetched" = %s, "unchanged" = %s WHERE "id" IN (SELECT "id" FROM previous) '
            'AND "state" = %s AND "created" = 0 AND "updated" = 0 AND "failed" = 0 RETURNING 1), '
            f'dropped AS (DELETE FROM {runs} WHERE "id" = %s AND EXISTS (SELECT 1 FROM folded) RETURNING 1), '
        )
        fold_params = [
            channel.account_id,
            channel.pk,
            run.job,
            run.pk,
            now,
            run.fetched,
            run.unchanged,
            SyncState.SUCCEEDED,
            run.pk,
        ]
        only_unfolded = " AND NOT EXISTS (SELECT 1 FROM folded)"
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH "  # noqa: S608 (names are ours)
            + "".join(f"{cte}, " for cte, _params in writes)
            + fold_sql
            + f"finished AS (UPDATE {runs} SET "  # noqa: S608 (names are ours)
            '"state" = %s, "finished_at" = %s, "error" = %s, "fetched" = %s, "created" = %s, '
            f'"updated" = %s, "unchanged" = %s, "failed" = %s WHERE "id" = %s{only_unfolded} RETURNING 1), '
            f'touched AS (UPDATE {channels} SET "last_sync_at" = %s, "last_success_at" = %s, '
            '"failed_runs" = 0, "failing_since" = NULL, '
            '"connection_state" = CASE WHEN "connection_state" = %s THEN %s ELSE "connection_state" END, '
            '"last_error" = CASE WHEN "last_error_job" IN (\'\', %s) THEN \'\' ELSE "last_error" END, '
            '"last_error_job" = CASE WHEN "last_error_job" IN (\'\', %s) THEN \'\' ELSE "last_error_job" END '
            'WHERE "id" = %s RETURNING 1) '
            f'UPDATE {leases} SET "holder" = \'\', "expires_at" = %s '
            'WHERE "channel_id" = %s AND "job" = %s AND "holder" = %s',
            [
                *(param for _cte, params in writes for param in params),
                *fold_params,
                run.state,
                now,
                run.error,
                run.fetched,
                run.created,
                run.updated,
                run.unchanged,
                run.failed,
                run.pk,
                now,
                now,
                ConnectionState.ERROR,
                ConnectionState.OK,
                run.job,
                run.job,
                channel.pk,
                now,
                channel.pk,
                run.job,
                holder,
            ],
        )


def _fold_into_previous(run: SyncRun) -> bool:
    """Without PostgreSQL: what the success statement does for a run that changed nothing."""
    previous = (
        SyncRun.objects.filter(account_id=run.account_id, channel_id=run.channel_id, job=run.job)
        .exclude(pk=run.pk)
        .order_by("-created_at")
        .first()
    )
    if previous is None or not previous.changed_nothing:
        return False
    _write_final_writes_now(run)
    SyncRun.objects.filter(pk=previous.pk).update(
        checks=F("checks") + 1, last_checked_at=timezone.now(), fetched=run.fetched, unchanged=run.unchanged
    )
    SyncRun.objects.filter(pk=run.pk).delete()
    return True


def release_lease(channel_id: Any, job: str, holder: str) -> None:
    JobLease.objects.filter(channel_id=channel_id, job=job, holder=holder).update(
        holder="", expires_at=timezone.now()
    )


class LeaseLost(Exception):
    """This run's lease expired and another worker may be running the job: stop writing."""


class _LeaseKeeper:
    """Renews the run's lease before a store request once a third of the lease has passed.

    Installed as :data:`connectors.http.before_store_request` while the job's work runs, so a job
    waiting on a slow store keeps its lease, and a job that lost it (paused past expiry, another
    worker took over) stops before its next request to the store instead of writing a stale batch.
    """

    def __init__(self, run: SyncRun, seconds: int) -> None:
        self.run = run
        self.every = max(1.0, seconds / 3)
        self.renewed = time.monotonic()

    def __call__(self) -> None:
        # a heartbeat renews the lease too: a job that beats per page never needs an extra renewal
        renewed = max(self.renewed, getattr(self.run, "_lease_renewed_at", 0.0))
        if time.monotonic() - renewed < self.every:
            return
        if not extend_lease(self.run):
            raise LeaseLost(f"lease on {self.run.job} for {self.run.channel_id} was lost")
        self.renewed = time.monotonic()


def heartbeat(run: SyncRun, *, also: Iterable[tuple[Any, Q, dict[str, Any]]] = ()) -> None:
    """Save the run's counts and renew its lease; call once per page of work.

    Raises :class:`LeaseLost` when another run has taken over (we were too slow or paused), so two
    workers never write the same channel's job at once. ``also``: more ``(model, where, values)``
    updates of the page (its checkpoint), sent in the same round trip on PostgreSQL.
    """
    also = list(also)
    counts = {
        "fetched": run.fetched,
        "created": run.created,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "failed": run.failed,
    }
    if connection.vendor != "postgresql":
        for model, where, values in also:
            model.objects.filter(where).update(**values)
        SyncRun.objects.filter(pk=run.pk).update(**counts)
        held = extend_lease(run)
    else:
        # One round trip per page instead of several: the counts (and the page's other updates)
        # ride along as data-modifying CTEs (PostgreSQL runs them whatever the main statement
        # does); the row count is the lease's.
        seconds = getattr(run, "_lease_seconds", None) or default_lease_seconds()
        writes = [_update_sql(model, where, values) for model, where, values in also]
        writes.append(_update_sql(SyncRun, Q(pk=run.pk), counts))
        renew, renew_params = _update_sql(
            JobLease,
            Q(channel_id=run.channel_id, job=run.job, holder=str(run.pk)),
            {"expires_at": timezone.now() + timedelta(seconds=seconds)},
        )
        ctes = ", ".join(f"write_{index} AS ({sql})" for index, (sql, _params) in enumerate(writes))
        params = [param for _sql, write_params in writes for param in write_params]
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {ctes} {renew}", [*params, *renew_params])
            held = cursor.rowcount > 0
    if not held:
        raise LeaseLost(f"lease on {run.job} for {run.channel_id} was lost")
    run._lease_renewed_at = time.monotonic()  # type: ignore[attr-defined]


def _update_sql(model: Any, where: Q, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The ``UPDATE`` Django would run for ``model.objects.filter(where).update(**values)``."""
    query = UpdateQuery(model)
    query.add_update_values(values)
    query.add_q(where)
    sql, params = query.get_compiler(connection=connection).as_sql()
    return sql, tuple(params)


# --------------------------------------------------------------------------------------------------
# Running a job
# --------------------------------------------------------------------------------------------------


def _error_text(exc: ConnectorError, secrets: Iterable[str]) -> str:
    """The error in words for the seller; the store's raw reply (masked) below it for support."""
    text = exc.message or exc.__class__.__name__
    if exc.raw:
        raw = exc.raw[:2000]
        for secret in secrets:
            if secret and len(secret) >= 4:
                raw = raw.replace(secret, "***")
        text += f"\n\nStore reply: {mask_secrets(raw)}"
    return text


def _finish(run: SyncRun, state: str, error: str = "") -> None:
    try:
        _write_final_writes_now(run)  # what the job handed over is saved even if it then failed
    except Exception:
        log.exception("sync.job.final_writes_failed run=%s", run.pk)
    run.state = state
    run.finished_at = timezone.now()
    if error:
        run.error = error[:10000]
    run.save(
        update_fields=[
            "state",
            "finished_at",
            "error",
            "fetched",
            "created",
            "updated",
            "unchanged",
            "failed",
        ]
    )


def run_channel_job(
    channel_id: Any,
    job: str,
    work: Work,
    *,
    lease_seconds: int | None = None,
    attempt: int = 1,
) -> SyncRun | None:
    """Run ``work`` for one channel and job under a lease, leaving a SyncRun either way.

    Returns ``None`` (and runs nothing) when the channel is not syncable (removed, disabled,
    needs reauthorising) or another worker holds the lease. Rate limits and transient errors are
    recorded and re-raised so the Celery task can retry; other connector errors are recorded and
    the failed run is returned.
    """
    found = list(SalesChannel.objects.syncable().filter(pk=channel_id)[:1])
    channel = found[0] if found else None
    if channel is None:
        log.info("sync.job.skipped channel=%s job=%s reason=not_syncable", channel_id, job)
        return None
    seconds = lease_seconds or default_lease_seconds()
    run_id = uuid.uuid4()
    run = SyncRun(
        id=run_id,
        account_id=channel.account_id,
        channel=channel,
        job=job,
        state=SyncState.RUNNING,
        started_at=timezone.now(),
        attempt=attempt,
    )
    if not _claim_and_start(channel, job, run, seconds):
        log.info("sync.job.skipped channel=%s job=%s reason=lease_busy", channel_id, job)
        if job in EVENT_JOBS:
            mark_due(channel, job)
        return None
    lease_released = False
    run._lease_seconds = seconds  # type: ignore[attr-defined]
    connector: Connector | None = None
    secrets: list[str] = []
    try:
        connector = _connector_for(channel)
        secrets = connector.secret_values(connector.credentials)
        keeper = before_store_request.set(_LeaseKeeper(run, seconds))
        try:
            work(channel, connector, run)
        finally:
            before_store_request.reset(keeper)
    except AuthError as exc:
        _finish(run, SyncState.FAILED, _error_text(exc, secrets))
        pause_for_reauth(channel, exc.message)
        log.warning("sync.job.auth_failed channel=%s job=%s", channel.pk, job)
        return run
    except (RateLimited, TransientError) as exc:
        _finish(run, SyncState.FAILED, _error_text(exc, secrets))
        _record_failure(channel, job, exc.message)
        log.info("sync.job.transient channel=%s job=%s code=%s", channel.pk, job, exc.code)
        raise
    except ConnectorError as exc:
        _finish(run, SyncState.FAILED, _error_text(exc, secrets))
        _record_failure(channel, job, exc.message)
        if job in EVENT_JOBS and isinstance(exc, ProtocolError):
            _due_again_after_back_off(channel, job, exc)
        log.warning("sync.job.failed channel=%s job=%s code=%s", channel.pk, job, exc.code)
        return run
    except LeaseLost:
        _finish(run, SyncState.FAILED, "Stopped: this run took too long and another run took over.")
        log.warning("sync.job.lease_lost channel=%s job=%s run=%s", channel.pk, job, run.pk)
        return run
    except Exception:
        _finish(run, SyncState.FAILED, "Storelink hit an internal error; the team has been notified.")
        log.exception("sync.job.crashed channel=%s job=%s run=%s", channel.pk, job, run.pk)
        raise
    else:
        _finish_succeeded(run, channel, str(run_id))
        lease_released = True
        log.info(
            "sync.job.succeeded channel=%s job=%s fetched=%d created=%d updated=%d failed=%d",
            channel.pk,
            job,
            run.fetched,
            run.created,
            run.updated,
            run.failed,
        )
        return run
    finally:
        if connector is not None:
            connector.close()
        if not lease_released:
            release_lease(channel.pk, job, str(run_id))


def _due_again_after_back_off(channel: SalesChannel, job: str, exc: ConnectorError) -> None:
    """An event job whose store reply could not be read comes due again after a back-off.

    Nothing else would run it again: it ran because of a change, and the next change may be hours
    away. The reply (an HTML error page, a cut-off body) says nothing about whether a write landed,
    and a push or confirmation is safe to repeat. The back-off grows with the channel's failed runs
    in a row, so a store that keeps answering nonsense is asked at most every few minutes.
    """
    delay = retry_countdown(exc, channel.failed_runs or 0)
    mark_due(channel, job, timezone.now() + timedelta(seconds=delay))


def _record_failure(channel: SalesChannel, job: str, message: str) -> None:
    """Write a failed run's error on the channel and count it; one conditional UPDATE.

    After :data:`FAILING_AFTER_RUNS` failures in a row the channel goes from ``ok`` to ``error``
    with the message, so the list and the channel page say "failing since …" while the store is
    down or the add-on missing, instead of "connected" until someone tests the connection. It stays
    syncable: the next run that reaches the store turns it back to ``ok``.
    """
    now = timezone.now()
    SalesChannel.objects.filter(pk=channel.pk).update(
        last_sync_at=now,
        last_error=message,
        last_error_job=job,
        failed_runs=F("failed_runs") + 1,
        failing_since=Coalesce(F("failing_since"), Value(now)),
        connection_state=Case(
            When(
                connection_state=ConnectionState.OK,
                failed_runs__gte=FAILING_AFTER_RUNS - 1,
                then=Value(ConnectionState.ERROR),
            ),
            default=F("connection_state"),
        ),
    )


def _connector_for(channel: SalesChannel) -> Connector:
    # Imported here so tests can patch ``channels.services.connector_for`` in one place.
    from channels import services

    return services.connector_for(channel)


def run_job_task(task: Any, channel_id: str, job: str, work: Work) -> SyncRun | None:
    """Body of every job's Celery task: run the job, retry rate limits and transient errors.

    ``task`` is the bound Celery task. Retries honour the store's Retry-After; after the last
    retry the job is simply due again at its next scheduled time (orders) or left for the sweep.
    """
    attempt = task.request.retries + 1
    try:
        return run_channel_job(channel_id, job, work, attempt=attempt)
    except (RateLimited, TransientError) as exc:
        if task.request.retries >= (task.max_retries if task.max_retries is not None else MAX_TASK_RETRIES):
            log.warning("sync.job.gave_up channel=%s job=%s", channel_id, job)
            return None
        raise task.retry(exc=exc, countdown=retry_countdown(exc, task.request.retries)) from None


# --------------------------------------------------------------------------------------------------
# Credential health
# --------------------------------------------------------------------------------------------------


def pause_for_reauth(channel: SalesChannel, reason: str) -> None:
    """Mark the channel ``needs_reauth`` (jobs pause: it is no longer syncable) and, the first
    time, e-mail the account's owners and admins with the reauthorise link."""
    from channels import services

    was = SalesChannel.objects.filter(pk=channel.pk).values_list("connection_state", flat=True).first()
    services.mark_needs_reauth(channel, reason)
    if was != ConnectionState.NEEDS_REAUTH:
        channel_id = channel.pk
        transaction.on_commit(lambda: notify_needs_reauth(channel_id, reason))


def notify_needs_reauth(channel_id: Any, reason: str) -> int:
    """E-mail the owners and admins of the channel's account; returns how many were sent to."""
    channel = SalesChannel.objects.select_related("account").filter(pk=channel_id).first()
    if channel is None:
        return 0
    recipients = sorted(
        set(
            Membership.objects.filter(account_id=channel.account_id, role__in=[Role.OWNER, Role.ADMIN])
            .select_related("user")
            .values_list("user__email", flat=True)
        )
    )
    if not recipients:
        return 0
    try:
        path = reverse("channels:reauthorise", args=[channel.pk])
    except NoReverseMatch:
        path = f"/channels/{channel.pk}/reauthorise/"
    base = django_settings.SITE_URL
    body = (
        f"Storelink could not use the credentials of your channel “{channel.name}”.\n\n"
        f"The store said: {reason}\n\n"
        "Order downloads, shipment confirmations and stock and price updates for this channel are "
        "paused until you reauthorise it:\n\n"
        f"{base.rstrip('/')}{path}\n"
    )
    send_mail(
        subject=f"Storelink: reauthorise your channel “{channel.name}”",
        message=body,
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )
    log.info("sync.reauth_mail.sent channel=%s recipients=%d", channel.pk, len(recipients))
    return len(recipients)


# --------------------------------------------------------------------------------------------------
# Housekeeping
# --------------------------------------------------------------------------------------------------

#: A run still "queued" after this long will never start (its message was lost).
QUEUED_STALE_AFTER = timedelta(minutes=30)


def sweep_stale_runs(now: datetime | None = None) -> int:
    """Fail runs whose worker died, and make their job due again so it is picked up.

    A run is stale when it is still ``running`` but no live lease is held by it (the worker was
    killed and the lease expired), or ``queued`` for too long. Also re-arms the shipment job of
    channels with pending shipments that nobody is confirming (a lost message, a full retry
    budget), which is the "sweep" half of shipment scheduling.
    """
    now = now or timezone.now()
    held = JobLease.objects.filter(expires_at__gt=now).exclude(holder="").values_list("holder", flat=True)
    stale = list(
        SyncRun.objects.filter(state=SyncState.RUNNING)
        .exclude(id__in=[uuid.UUID(h) for h in held if _is_uuid(h)])
        .filter(started_at__lt=now - timedelta(seconds=5))
        .select_related("channel")
    )
    stale += list(
        SyncRun.objects.filter(
            state=SyncState.QUEUED, created_at__lt=now - QUEUED_STALE_AFTER
        ).select_related("channel")
    )
    swept = 0
    for run in stale:
        changed = SyncRun.objects.filter(pk=run.pk, state=run.state).update(
            state=SyncState.FAILED,
            finished_at=now,
            error="The worker running this job stopped before it finished; the job was scheduled again.",
        )
        if changed:
            swept += 1
            if run.job in DUE_FIELDS and not run.channel.is_removed:
                # Due (kept if the broker is down) and sent at once: waiting for the dispatcher's
                # next tick would add up to its interval to the time a killed worker blocks work.
                mark_due(run.channel, run.job, now)
                request_job(run.channel, run.job)
            log.warning("sync.run.swept run=%s channel=%s job=%s", run.pk, run.channel_id, run.job)
    _rearm_pending_shipments(now)
    return swept


def _rearm_pending_shipments(now: datetime) -> None:
    try:
        shipment_model = apps.get_model("orders", "Shipment")
    except LookupError:
        return
    stuck_before = now - timedelta(minutes=10)
    channel_ids = set(
        shipment_model.objects.filter(state="pending", updated_at__lt=stuck_before).values_list(
            "order__channel_id", flat=True
        )
    )
    if not channel_ids:
        return
    for channel in SalesChannel.objects.syncable().filter(pk__in=channel_ids):
        schedule = schedule_for(channel)
        if schedule.shipments_due_at is None:
            mark_due(channel, SyncJob.SHIPMENTS, now)


def resume_paused_work(channel: SalesChannel, now: datetime | None = None) -> list[str]:
    """Request at once what a paused channel left waiting: jobs that fell due meanwhile (the
    dispatcher skipped the channel) and the confirmation of its pending shipments.

    Called when the channel is reauthorised, so a shipment paused by the store refusing the key
    is confirmed within seconds instead of at the next sweep. Due times are left as they are: if
    the request is lost, the dispatcher still finds them.
    """
    now = now or timezone.now()
    schedule = schedule_for(channel)
    jobs = [
        job
        for job, field in DUE_FIELDS.items()
        if (due_at := getattr(schedule, field)) is not None and due_at <= now
    ]
    if SyncJob.SHIPMENTS not in jobs:
        try:
            shipment_model = apps.get_model("orders", "Shipment")
        except LookupError:
            shipment_model = None
        if (
            shipment_model is not None
            and shipment_model.objects.filter(channel_id=channel.pk, state="pending").exists()
        ):
            jobs.append(SyncJob.SHIPMENTS)
    for job in jobs:
        request_job(channel, job)
    if jobs:
        log.info("sync.channel.resumed channel=%s jobs=%s", channel.pk, ",".join(map(str, jobs)))
    return [str(job) for job in jobs]


#: The full stock/price reconcile's period: each channel's comes due in its own slot of it.
RECONCILE_PERIOD = timedelta(hours=1)


def reconcile_inventory(now: datetime | None = None) -> int:
    """The hourly full stock/price reconcile: make stock and price jobs due on every syncable
    channel that has them switched on; the dispatcher enqueues them when they come due.

    Each channel comes due in its own slot of the coming hour (:func:`spread_slot`), so the
    channels' stores are reconciled one after another over the hour, not all in the same second.
    A few statements in all, however many channels (and any channel still without a schedule row
    gets one here).
    """
    now = now or timezone.now()
    channels = list(SalesChannel.objects.syncable().only("id", "account_id", "settings"))
    ensure_schedules(channels, orders_due_at=now)
    wanted: dict[str, list[tuple[Any, datetime]]] = {SyncJob.STOCK: [], SyncJob.PRICES: []}
    for channel in channels:
        settings = channel.settings or {}
        slot = spread_slot(channel.pk, RECONCILE_PERIOD, now)
        if settings.get("stock_sync", True):
            wanted[SyncJob.STOCK].append((channel, slot))
        if settings.get("price_sync", False):
            wanted[SyncJob.PRICES].append((channel, slot))
    for job, due in wanted.items():
        _mark_due_at(job, due)
    return sum(len(due) for due in wanted.values())


def _mark_due_at(job: str, due: list[tuple[SalesChannel, datetime]], chunk: int = 1000) -> None:
    """Each channel's ``job`` due at its own time unless due earlier; one statement per chunk."""
    if connection.vendor != "postgresql":
        for channel, when in due:
            mark_due(channel, job, when)
        return
    quote = connection.ops.quote_name
    table, field = quote(ChannelSchedule._meta.db_table), quote(DUE_FIELDS[job])
    for start in range(0, len(due), chunk):
        part = due[start : start + chunk]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS s SET {field} = LEAST(s.{field}, v.due) "  # noqa: S608 (names are ours)
                f"FROM (VALUES {', '.join(['(%s::uuid, %s::timestamptz)'] * len(part))}) "
                "AS v(channel_id, due) "
                f'WHERE s."channel_id" = v.channel_id AND (s.{field} IS NULL OR s.{field} > v.due)',
                [value for channel, when in part for value in (channel.pk, when)],
            )


#: Rows deleted per statement when pruning, so one prune never holds a long lock.
PRUNE_BATCH = 2000


def sync_run_retention() -> timedelta:
    """How long finished runs stay in the history (``SYNC_RUN_RETENTION_DAYS``, at least 1)."""
    days = getattr(django_settings, "SYNC_RUN_RETENTION_DAYS", 30)
    return timedelta(days=max(1, int(days)))


def prune_sync_runs(now: datetime | None = None) -> int:
    """Delete finished runs last active before the retention window; returns how many.

    A folded row counts as active until its last check. The newest run of each channel and job is
    always kept, so the page of a channel whose job has not run for a long time still shows its
    last outcome. Runs still queued or running are the sweeper's business, never pruned here.
    """
    cutoff = (now or timezone.now()) - sync_run_retention()
    newest = (
        SyncRun.objects.filter(channel_id=OuterRef("channel_id"), job=OuterRef("job"))
        .order_by("-created_at")
        .values("pk")[:1]
    )
    old = (
        SyncRun.objects.filter(state__in=[SyncState.SUCCEEDED, SyncState.FAILED], created_at__lt=cutoff)
        .annotate(active_at=Coalesce("last_checked_at", "finished_at", "created_at"))
        .filter(active_at__lt=cutoff)
        .exclude(pk=Subquery(newest))
    )
    pruned = 0
    while True:
        batch = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            break
        pruned += SyncRun.objects.filter(pk__in=batch).delete()[0]
    if pruned:
        log.info("sync.runs.pruned count=%d before=%s", pruned, cutoff.isoformat())
    return pruned


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


__all__ = [
    "DUE_FIELDS",
    "JOB_TASKS",
    "LeaseLost",
    "claim_lease",
    "default_lease_seconds",
    "dispatch_due_jobs",
    "extend_lease",
    "heartbeat",
    "mark_due",
    "order_interval",
    "prune_sync_runs",
    "reconcile_inventory",
    "release_lease",
    "request_job",
    "resume_paused_work",
    "run_channel_job",
    "run_job_task",
    "sweep_stale_runs",
    "sync_now",
]
