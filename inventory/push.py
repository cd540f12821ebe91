"""The push engine: send a plan to the store in its batch sizes and record a result per item.

:func:`push_stock_for_channel` / :func:`push_prices_for_channel` send only listings whose value
differs from the store's, in the store's batch sizes, and record a result per item; a refused item
keeps differing and goes again next run. :func:`sync_stock` / :func:`sync_prices` are the jobs the
sync engine runs (re-reading the store's listings first when they are stale).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from channels.models import SalesChannel, SyncRun
from channels.sync import LeaseLost, commit_with_success, heartbeat
from config.db import execute_ctes
from connectors.base import Connector, PriceUpdate, PushResult, StockUpdate
from connectors.errors import PermanentError, ProtocolError
from inventory.matching import listings_stale, refresh_listings
from inventory.models import Listing, StockChange
from inventory.plans import PlannedPush, planned_prices, planned_stock
from inventory.stock_queue import price_sync_enabled, stock_sync_enabled

log = logging.getLogger("storelink.inventory")


@dataclass
class PushSummary:
    considered: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    size = max(1, int(size or 1))
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Columns:
    """Which listing columns a push kind records (stock and prices keep their own)."""

    pushed_value: str
    store_value: str
    pushed_at: str
    error: str
    sql_type: str
    #: whether a success settles the listing's queued stock changes (prices are planned in full)
    settles: bool = False


_STOCK_COLUMNS = _Columns(
    "last_pushed_quantity", "store_quantity", "last_pushed_at", "last_error", "integer", settles=True
)
_PRICE_COLUMNS = _Columns(
    "last_pushed_price", "store_price", "last_price_pushed_at", "last_price_error", "numeric"
)


def _send(
    plan: Sequence[PlannedPush],
    batch_size: int,
    push: Callable[[list[Any]], list[PushResult]],
    make_update: Callable[[PlannedPush], Any],
    columns: _Columns,
    summary: PushSummary,
    run: SyncRun | None,
) -> None:
    """Send ``plan`` batch by batch; record the results in bulk, at each heartbeat and at the end.

    Results are written together with the heartbeat (every couple of seconds: counts saved, lease
    renewed) and once when the push ends, so a push of a few batches costs one UPDATE instead of
    one per batch. A connector error that stops the whole push (auth, rate limit, timeout)
    propagates after the results gathered so far are recorded, so the retry sends only what is
    still different. A run that lost its lease writes nothing more (the new holder decides), and
    a worker killed outright loses at most a heartbeat's worth of records: those items were marked
    unknown before they went out (:func:`_forget_store_values`) and are sent again.
    ``PermanentError`` for a batch fails that batch's items and the push carries on.
    """
    succeeded: list[tuple[Any, Any, int]] = []
    failed: list[tuple[Any, Any]] = []
    if plan:
        _forget_store_values(columns, [item.listing_id for item in plan])
    try:
        for batch in _chunks(plan, batch_size):
            updates = [make_update(item) for item in batch]
            try:
                results = push(updates)
            except PermanentError as exc:
                results = [
                    PushResult(sku=u.sku, remote_id=u.remote_id, ok=False, error=exc.message) for u in updates
                ]
            if len(results) != len(updates):
                raise ProtocolError(
                    f"The store answered {len(results)} results for {len(updates)} updates.",
                    code="result_count",
                )
            for item, outcome in zip(batch, results, strict=True):
                if outcome.ok:
                    succeeded.append((item.listing_id, item.value, item.changes))
                    summary.ok += 1
                else:
                    error = (outcome.error or "The store refused this update.")[:2000]
                    failed.append((item.listing_id, error))
                    summary.failed += 1
                    if len(summary.errors) < 20:
                        summary.errors.append(f"{item.sku}: {error}")
            summary.sent += len(updates)
            if _heartbeat_due(run):
                with transaction.atomic():  # the results so far and the run's progress: one commit
                    _record_results(columns, succeeded, failed)
                    _record_progress(run, summary)
                succeeded.clear()
                failed.clear()
            else:
                _record_progress(run, summary)
    except LeaseLost:
        raise
    except BaseException:
        try:
            _flush_results(columns, succeeded, failed)
        except Exception:
            log.exception("inventory.push.record_failed")
        raise
    _flush_results(columns, succeeded, failed, run)


def _forget_store_values(columns: _Columns, listing_ids: list[Any]) -> None:
    """Before a push goes out, stop believing we know what the store holds for its listings.

    A write whose reply is lost (a timeout, a killed worker) may or may not have been applied. If
    the listings kept the value the store held before, a later plan whose value came back to it
    (a reservation released, then taken again) would find "no difference" and never correct the
    store. Committed before the request, so it holds even if this process dies; a recorded success
    sets the value again.
    """
    Listing.objects.filter(pk__in=listing_ids).update(
        **{columns.store_value: None, columns.pushed_value: None}
    )


def _flush_results(
    columns: _Columns,
    succeeded: list[tuple[Any, Any, int]],
    failed: list[tuple[Any, Any]],
    run: SyncRun | None = None,
) -> None:
    """Record results not yet saved. The last ones of a job that has a run are handed to the
    engine to commit with the run's success (one statement: a run shown succeeded has its results
    recorded); otherwise they are written now."""
    if not (succeeded or failed):
        return
    if connection.vendor == "postgresql":
        writes = _result_writes(columns, succeeded, failed)
        if not commit_with_success(run, writes):
            execute_ctes(writes)
        return
    with transaction.atomic():
        _record_results(columns, succeeded, failed)


def _result_writes(
    columns: _Columns, succeeded: list[tuple[Any, Any, int]], failed: list[tuple[Any, Any]]
) -> list[tuple[str, list[Any]]]:
    """PostgreSQL: the statements recording a push's results, as named data-modifying CTEs.

    A success also settles the listing's queued stock change, but only if its count is still the
    one the plan read: a change counted while the push was on the wire keeps it queued. A failure
    settles nothing, so the item goes again next run. Each part is one ``UPDATE … FROM unnest(…)``
    (a push of 100 items must not cost 100 statements, nor Django's 50-branch CASE per column);
    the values travel as array literals, which psycopg sends as one string rather than adapting
    hundreds of parameters, and the rows are found through the primary key.
    """
    now = timezone.now()
    table = Listing._meta.db_table
    writes: list[tuple[str, list[Any]]] = []
    if succeeded:
        ids = _array_literal(listing_id for listing_id, _value, _changes in succeeded)
        writes.append(
            (
                f"pushed AS (SELECT * FROM unnest(%s::uuid[], %s::{columns.sql_type}[], %s::int[]) "  # noqa: S608
                "AS v(id, value, changes))",
                [
                    ids,
                    _array_literal(value for _id, value, _changes in succeeded),
                    _array_literal(changes for _id, _value, changes in succeeded),
                ],
            )
        )
        if columns.settles:
            writes.append(
                (
                    f"settled AS (DELETE FROM {StockChange._meta.db_table} AS queued USING pushed "  # noqa: S608
                    "WHERE queued.listing_id = pushed.id AND queued.changes = pushed.changes)",
                    [],
                )
            )
        writes.append(
            (
                f'recorded AS (UPDATE "{table}" AS l SET "{columns.pushed_value}" = pushed.value, '  # noqa: S608
                f'"{columns.store_value}" = pushed.value, "{columns.pushed_at}" = %s, '
                f'"{columns.error}" = \'\', "updated_at" = %s '
                "FROM pushed WHERE l.id = pushed.id AND l.id = ANY(%s::uuid[]))",
                [now, now, ids],
            )
        )
    if failed:
        ids = _array_literal(listing_id for listing_id, _error in failed)
        writes.append(
            (
                f'refused AS (UPDATE "{table}" AS l SET "{columns.error}" = v.error '  # noqa: S608
                "FROM unnest(%s::uuid[], %s::text[]) AS v(id, error) "
                "WHERE l.id = v.id AND l.id = ANY(%s::uuid[]))",
                [ids, [error for _id, error in failed], ids],
            )
        )
    return writes


def _record_results(
    columns: _Columns, succeeded: list[tuple[Any, Any, int]], failed: list[tuple[Any, Any]]
) -> None:
    """Write a push's results now: one statement on PostgreSQL (:func:`_result_writes`),
    ``bulk_update`` elsewhere."""
    if connection.vendor == "postgresql":
        if succeeded or failed:
            execute_ctes(_result_writes(columns, succeeded, failed))
        return
    now = timezone.now()
    rows = []
    for listing_id, value, _changes in succeeded:
        rows.append(
            Listing(
                pk=listing_id,
                **{
                    columns.pushed_value: value,
                    columns.store_value: value,
                    columns.pushed_at: now,
                    columns.error: "",
                },
            )
        )
    if rows:
        Listing.objects.bulk_update(
            rows, [columns.pushed_value, columns.store_value, columns.pushed_at, columns.error]
        )
        if columns.settles:
            _settle([(listing_id, changes) for listing_id, _value, changes in succeeded])
    if failed:
        Listing.objects.bulk_update(
            [Listing(pk=pk, **{columns.error: error}) for pk, error in failed], [columns.error]
        )


def _array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of ids or numbers (no quoting needed for either)."""
    return "{" + ",".join(str(value) for value in values) + "}"


def _settle(settled: Sequence[tuple[Any, int]]) -> None:
    """Delete the queued stock changes a plan found in agreement (or pushed), each only if its
    count is still the one the plan read."""
    settled = [(pk, changes) for pk, changes in settled if changes]
    if not settled:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {StockChange._meta.db_table} AS queued "  # noqa: S608
                "USING unnest(%s::uuid[], %s::int[]) AS v(id, changes) "
                "WHERE queued.listing_id = v.id AND queued.changes = v.changes",
                [_array_literal(pk for pk, _ in settled), _array_literal(n for _, n in settled)],
            )
        return
    by_count: dict[int, list[Any]] = {}
    for pk, changes in settled:
        by_count.setdefault(changes, []).append(pk)
    for changes, pks in by_count.items():
        for chunk in _chunks(pks, 5000):
            StockChange.objects.filter(listing_id__in=list(chunk), changes=changes).delete()


#: Seconds between lease renewals during a push (the lease lasts minutes; a batch takes milliseconds).
HEARTBEAT_SECONDS = 2.0


def _heartbeat_due(run: SyncRun | None) -> bool:
    """Whether :func:`_record_progress` will write (save the counts and renew the lease) now."""
    last = getattr(run, "_inventory_heartbeat", None) if run is not None else None
    return last is not None and time.monotonic() - last >= HEARTBEAT_SECONDS


def _record_progress(run: SyncRun | None, summary: PushSummary) -> None:
    """Keep the run's counts current and, every couple of seconds, save them and renew the lease
    (a long push advances visibly, and one that lost its lease to another worker stops instead of
    racing it). The engine saves the final counts when the run finishes; renewing after every
    50-item batch would double the statements of a small push for nothing."""
    if run is None:
        return
    run.fetched = summary.considered
    run.updated = summary.ok
    run.failed = summary.failed
    run.unchanged = summary.unchanged
    now = time.monotonic()
    last = getattr(run, "_inventory_heartbeat", None)
    if last is None:
        run._inventory_heartbeat = now  # type: ignore[attr-defined]  # the lease was just claimed
    elif now - last >= HEARTBEAT_SECONDS:
        heartbeat(run)
        run._inventory_heartbeat = now  # type: ignore[attr-defined]


def push_stock_for_channel(
    channel: SalesChannel, connector: Connector, run: SyncRun | None = None, *, everything: bool = False
) -> PushSummary:
    """Send the available quantity of every listing whose value changed, in the store's batches.

    ``everything`` compares every listing instead of those with unsettled changes (the reconcile).
    """
    summary = PushSummary()
    if not stock_sync_enabled(channel):
        _record_progress(run, summary)
        return summary
    plan = planned_stock(channel, everything=everything)
    summary.considered = plan.considered
    summary.unchanged = plan.considered - len(plan.pushes)
    _settle(plan.settled)
    _send(
        plan.pushes,
        connector.capabilities.stock_batch_size,
        connector.push_stock,
        lambda item: StockUpdate(
            sku=item.sku,
            remote_id=item.remote_id,
            quantity=item.value,
            remote_variant_id=item.remote_variant_id,
        ),
        _STOCK_COLUMNS,
        summary,
        run,
    )
    if not plan.pushes:
        _record_progress(run, summary)
    log.info(
        "inventory.stock.pushed channel=%s considered=%d sent=%d ok=%d failed=%d",
        channel.pk,
        summary.considered,
        summary.sent,
        summary.ok,
        summary.failed,
    )
    return summary


def push_prices_for_channel(
    channel: SalesChannel, connector: Connector, run: SyncRun | None = None
) -> PushSummary:
    """Send the channel price of every listing whose price changed, in the store's batches."""
    summary = PushSummary()
    if not price_sync_enabled(channel):
        _record_progress(run, summary)
        return summary
    plan, considered = planned_prices(channel)
    summary.considered = considered
    summary.unchanged = considered - len(plan)
    _send(
        plan,
        connector.capabilities.price_batch_size,
        connector.push_prices,
        lambda item: PriceUpdate(
            sku=item.sku, remote_id=item.remote_id, price=item.value, remote_variant_id=item.remote_variant_id
        ),
        _PRICE_COLUMNS,
        summary,
        run,
    )
    if not plan:
        _record_progress(run, summary)
    log.info(
        "inventory.prices.pushed channel=%s considered=%d sent=%d ok=%d failed=%d",
        channel.pk,
        summary.considered,
        summary.sent,
        summary.ok,
        summary.failed,
    )
    return summary


def sync_stock(channel: SalesChannel, connector: Connector, run: SyncRun | None = None) -> PushSummary:
    """The stock job: re-read listings when stale (first run, hourly reconcile) and then compare
    every listing; otherwise look only at listings with unsettled changes. Push what differs."""
    reconcile = listings_stale(channel)
    if reconcile:
        refresh_listings(channel, connector)
    return push_stock_for_channel(channel, connector, run, everything=reconcile)


def sync_prices(channel: SalesChannel, connector: Connector, run: SyncRun | None = None) -> PushSummary:
    """The price job: the same, for prices."""
    if listings_stale(channel):
        refresh_listings(channel, connector)
    return push_prices_for_channel(channel, connector, run)
