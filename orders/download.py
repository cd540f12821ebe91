"""Order download: fetch the orders a store changed and write them in bulk, with their flags.

:func:`download_orders` has the ``work(channel, connector, run)`` signature of
:func:`channels.sync.run_channel_job`, which owns leases, SyncRuns and error handling; it only
moves data. This module owns how a store's order becomes Storelink's row: the content hash that
decides whether anything changed, the flags (totals that do not add up, SKUs the product master
does not know, a store status nobody mapped, an order the store has closed) and which platform
statuses close an order.

Downloads write pages in bulk with a constant number of queries per page: one select of the page's
existing orders, one of known SKUs, one insert of new orders, one update of changed orders, one
delete and one insert of their lines, one checkpoint update. An order whose content hash and flags
are unchanged is not written at all, so a re-sync of an unchanged store writes nothing but the
checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from channels import sync
from channels.models import ChannelSchedule, SalesChannel, SyncRun
from connectors import base
from connectors.errors import (
    ConnectorError,
)
from connectors.registry import connector_class
from orders.models import Order, OrderLine
from orders.product_master import announce_reservations_changed, product_model, uses_product_master

log = logging.getLogger("storelink.orders")

#: Fields a download may change on an existing order (everything but identity and created_at).
ORDER_UPDATE_FIELDS = (
    "number",
    "placed_at",
    "store_updated_at",
    "status_code",
    "status_name",
    "currency",
    "subtotal",
    "shipping",
    "tax",
    "discount",
    "total",
    "prices_include_tax",
    "customer_name",
    "customer_email",
    "billing_address",
    "shipping_address",
    "shipping_method",
    "raw",
    "total_mismatch",
    "unknown_sku",
    "held_unmapped_status",
    "store_closed",
    "content_hash",
    "updated_at",
)


ADDRESS_FIELDS = tuple(f.name for f in fields(base.Address))


def address_dict(address: base.Address) -> dict[str, str]:
    """``dataclasses.asdict`` without its deep copy (hot path: two addresses per order)."""
    return {name: getattr(address, name) for name in ADDRESS_FIELDS}


def order_content_hash(order: base.Order) -> str:
    """Fingerprint of everything we store and show of an order (not ``raw``, not ``updated_at``:
    a store touching an order without changing it must not cause a write)."""
    content = (
        order.number,
        order.placed_at.isoformat(),
        order.status_code,
        order.status_name,
        order.currency,
        str(order.subtotal),
        str(order.shipping),
        str(order.tax),
        str(order.discount),
        str(order.total),
        order.prices_include_tax,
        order.customer_name,
        order.customer_email,
        [getattr(order.billing_address, name) for name in ADDRESS_FIELDS],
        [getattr(order.shipping_address, name) for name in ADDRESS_FIELDS],
        order.shipping_method,
        [
            (
                line.external_line_id,
                line.sku,
                line.name,
                line.quantity,
                str(line.unit_price),
                str(line.tax),
                str(line.line_total),
                line.options,
            )
            for line in order.lines
        ],
    )
    encoded = json.dumps(content, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def totals_mismatch(order: base.Order) -> bool:
    """Lines + shipping + tax − discount ≠ total (tax not added when prices include it).

    A store that converts and rounds each amount in the order's own currency (OpenCart rounds every
    line and every total row, the total included, from its default currency) leaves each one up to
    half a minor unit off, so the sum of the parts may miss the total by less than half a unit per
    rounded amount plus one for the total itself (one line, shipping and tax in EUR: one cent; two
    EUR lines alone: one cent). That is the store's arithmetic, not a mismatch; anything beyond it is.
    """
    half_unit = Decimal(1).scaleb(-base.currency_places(order.currency)) / 2
    charges = [order.shipping, order.discount] + ([] if order.prices_include_tax else [order.tax])
    rounded = len(order.lines) + sum(1 for amount in charges if amount) + 1
    return abs(order.computed_total - order.total) >= half_unit * rounded


@dataclass
class _StatusRules:
    """Which store statuses are *known*: the ones the store reported when it was connected (or
    last tested), the ones the seller imports, and the processed status.

    Connectors already return only orders in the statuses the seller chose (each platform filters
    in its own terms), so every order they return is stored. One whose status is none of the
    known ones is a status that appeared on the store since: it is held and the seller told,
    never guessed into a mapping.
    """

    known: frozenset[str]

    @classmethod
    def for_channel(cls, channel: SalesChannel) -> _StatusRules:
        settings = channel.settings or {}
        known = {str(s.get("code")) for s in (channel.store_facts or {}).get("order_statuses") or []}
        if not known:
            # The store never reported its statuses (a channel authorised by callback and not
            # tested since): with nothing to compare against, holding every order would be noise.
            return cls(frozenset())
        known |= {str(code) for code in settings.get("import_statuses") or []}
        for name in ("processed_status", "partial_status"):
            if settings.get(name):
                known.add(str(settings[name]))
        return cls(frozenset(known))

    def is_unknown(self, code: str) -> bool:
        return bool(self.known) and str(code) not in self.known


def closed_status_codes(platform: str) -> frozenset[str]:
    """The platform's status codes that close an order, for connectors that do not say so per order
    (``Order.closed`` is the store's own verdict and wins when set)."""
    try:
        return connector_class(platform).closed_status_codes
    except ValueError:
        return frozenset()


def is_store_closed(platform: str, order: base.Order) -> bool:
    """Whether the store has finished ``order``: it holds no stock and must not be shipped."""
    return order.closed or str(order.status_code) in closed_status_codes(platform)


@dataclass
class PageResult:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    held_statuses: Counter[str] = field(default_factory=Counter)
    #: SKUs of the lines of created or changed orders (before and after): their reservations moved
    changed_skus: set[str] = field(default_factory=set)


def _known_skus(account_id: Any, skus: set[str]) -> set[str]:
    """Which of ``skus`` the account's product master knows (one query)."""
    product = product_model()
    if product is None or not skus:
        return set()
    return set(product.objects.filter(account_id=account_id, sku__in=skus).values_list("sku", flat=True))


def _order_row(
    channel: SalesChannel, order: base.Order, now: datetime, content_hash: str, **flags: bool
) -> Order:
    return Order(
        account_id=channel.account_id,
        channel_id=channel.pk,
        external_id=order.external_id,
        number=order.number,
        placed_at=order.placed_at,
        store_updated_at=order.updated_at,
        status_code=order.status_code,
        status_name=order.status_name,
        currency=order.currency,
        subtotal=order.subtotal,
        shipping=order.shipping,
        tax=order.tax,
        discount=order.discount,
        total=order.total,
        prices_include_tax=order.prices_include_tax,
        customer_name=order.customer_name[:255],
        customer_email=order.customer_email[:255],
        billing_address=address_dict(order.billing_address),
        shipping_address=address_dict(order.shipping_address),
        shipping_method=order.shipping_method[:255],
        raw=dict(order.raw),
        content_hash=content_hash,
        created_at=now,
        updated_at=now,
        **flags,
    )


def _line_rows(account_id: Any, order_id: Any, lines: Sequence[base.OrderLine]) -> list[OrderLine]:
    return [
        OrderLine(
            account_id=account_id,
            order_id=order_id,
            position=position,
            external_line_id=line.external_line_id,
            sku=line.sku,
            name=line.name[:255],
            options=[list(option) for option in line.options],
            quantity=line.quantity,
            unit_price=line.unit_price,
            tax=line.tax,
            line_total=line.line_total,
        )
        for position, line in enumerate(lines)
    ]


def upsert_orders(
    channel: SalesChannel, orders: Sequence[base.Order], *, check_skus: bool | None = None
) -> PageResult:
    """Write one page of orders in bulk (call inside a transaction); see the module docstring.

    ``check_skus`` says whether to flag SKUs missing from the product master; ``None`` asks the
    database (downloads ask once per run, not once per page).
    """
    result = PageResult(fetched=len(orders))
    # A page listing the same order twice (a store re-sorting while we page) keeps the last copy.
    latest: dict[str, base.Order] = {order.external_id: order for order in orders}
    if not latest:
        return result
    existing = {
        row["external_id"]: row
        for row in Order.objects.filter(
            account_id=channel.account_id, channel_id=channel.pk, external_id__in=list(latest)
        ).values(
            "id",
            "external_id",
            "content_hash",
            "total_mismatch",
            "unknown_sku",
            "held_unmapped_status",
            "store_closed",
        )
    }
    if check_skus is None:
        check_skus = uses_product_master(channel.account_id)
    known_skus: set[str] | None = None
    if check_skus:
        page_skus = {line.sku for order in latest.values() for line in order.lines if line.sku}
        known_skus = _known_skus(channel.account_id, page_skus)
    rules = _StatusRules.for_channel(channel)
    closed_codes = closed_status_codes(channel.platform)
    now = timezone.now()
    new_orders: list[Order] = []
    changed_orders: list[Order] = []
    lines: list[OrderLine] = []
    for external_id, order in latest.items():
        flags = {
            "total_mismatch": totals_mismatch(order),
            "unknown_sku": known_skus is not None
            and any(not line.sku or line.sku not in known_skus for line in order.lines),
            "held_unmapped_status": rules.is_unknown(order.status_code),
            "store_closed": order.closed or str(order.status_code) in closed_codes,
        }
        current = existing.get(external_id)
        content_hash = order_content_hash(order)
        if current is None:
            row = _order_row(channel, order, now, content_hash, **flags)
            new_orders.append(row)
            lines += _line_rows(channel.account_id, row.id, order.lines)
            result.created += 1
            result.changed_skus.update(line.sku for line in order.lines if line.sku)
        elif current["content_hash"] == content_hash and all(
            current[name] == value for name, value in flags.items()
        ):
            result.unchanged += 1
            continue
        else:
            row = _order_row(channel, order, now, content_hash, **flags)
            row.id = current["id"]
            changed_orders.append(row)
            lines += _line_rows(channel.account_id, row.id, order.lines)
            result.updated += 1
            result.changed_skus.update(line.sku for line in order.lines if line.sku)
        if flags["held_unmapped_status"]:
            result.held_statuses[f"{order.status_name or order.status_code} ({order.status_code})"] += 1
    if new_orders:
        insert_rows(Order, new_orders)
    if changed_orders:
        Order.objects.bulk_update(changed_orders, ORDER_UPDATE_FIELDS)
        # A line the store dropped or re-SKU'd stops reserving: its SKU changed too.
        result.changed_skus.update(sku for sku in _delete_lines([row.id for row in changed_orders]) if sku)
    if lines:
        insert_rows(OrderLine, lines)
    return result


def _delete_lines(order_ids: list[Any]) -> list[str]:
    """Delete these orders' lines and return their SKUs, in one ``DELETE … RETURNING`` where the
    database has it (a page of changed orders must not cost a statement more for reading them)."""
    if not connection.features.can_return_columns_from_insert:  # SQLite before 3.35
        replaced = OrderLine.objects.filter(order_id__in=order_ids)
        skus = list(replaced.values_list("sku", flat=True))
        replaced.delete()
        return skus
    field = OrderLine._meta.get_field("order")
    table = connection.ops.quote_name(OrderLine._meta.db_table)
    placeholders = ", ".join(["%s"] * len(order_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE order_id IN ({placeholders}) RETURNING sku",  # noqa: S608 (names are ours)
            [field.get_db_prep_value(order_id, connection) for order_id in order_ids],
        )
        return [sku for (sku,) in cursor.fetchall()]


#: Python types PostgreSQL takes as they are for a field of this kind: Django's preparation of such a
#: value (``get_db_prep_save``) returns it unchanged on PostgreSQL, at a few calls per value.
_COPY_AS_IS: dict[str, type] = {
    "CharField": str,
    "TextField": str,
    "EmailField": str,
    "URLField": str,
    "SlugField": str,
    "IntegerField": int,
    "BigIntegerField": int,
    "SmallIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveBigIntegerField": int,
    "PositiveSmallIntegerField": int,
    "BooleanField": bool,
    "UUIDField": uuid.UUID,
    "DecimalField": Decimal,  # when finite (Django refuses NaN and infinities)
}


class _NeverAsIs:
    """No value has this type: every value of the column goes through Django's preparation."""


def _copy_writer(field: models.Field) -> tuple[type, Any]:
    """``(type, prepare)`` for one column of a ``COPY``: values of exactly ``type`` (and ``None``)
    are sent as they are, anything else through ``prepare`` (the field's own ``get_db_prep_save``;
    for decimals a finite ``Decimal`` first, which Django would send unchanged). Date-times always
    take Django's way (it makes a naive value aware, with a warning); so does JSON."""
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    plain = _COPY_AS_IS.get(target.get_internal_type(), _NeverAsIs)

    def prepare(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if plain is Decimal:

        def prepare_decimal(value: Any) -> Any:
            return value if type(value) is Decimal and value.is_finite() else prepare(value)

        return _NeverAsIs, prepare_decimal
    return plain, prepare


def insert_rows(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Insert new rows in one statement: ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere.

    Why not always ``bulk_create``: with psycopg's client-side binding a page of orders with their
    raw payloads spends most of its time escaping parameters in Python (``UNNEST`` arrays or
    thousands of ``VALUES`` placeholders), several times what the database needs. ``COPY`` sends
    the same values through the same field preparation (``get_db_prep_save``) and is what the
    ingest benchmark's floor uses. Callers know the rows are new (selected first, under the job's
    lease), so there is no conflict handling to lose. The statement is added to Django's query log
    so query-counting tests and tools still see it.
    """
    if connection.vendor != "postgresql":
        model.objects.bulk_create(rows)
        return
    columns = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField))
    ]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in columns)}) FROM STDIN"
    writers = [(field.attname, *_copy_writer(field)) for field in columns]
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            values = []
            for attname, plain, prepare in writers:
                value = getattr(row, attname)
                values.append(value if value is None or type(value) is plain else prepare(value))
            copy.write_row(values)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


#: Pages of orders are written together until this many orders or this many seconds have gathered:
#: each write costs about ten round trips to the database whatever its size, so pages of a fast store
#: are not written one by one; a slow store's pages (each over the time) still are. A crash repeats
#: at most one batch, and repeating it writes nothing.
WRITE_BATCH_ORDERS = 200
WRITE_BATCH_SECONDS = 2.0


def download_orders(
    channel: SalesChannel, connector: base.Connector, run: SyncRun | None = None
) -> PageResult:
    """Fetch every order changed since the channel's checkpoint, page by page.

    A batch of pages (:data:`WRITE_BATCH_ORDERS`, :data:`WRITE_BATCH_SECONDS`) and the checkpoint
    that follows its last page are committed together, so a crash repeats at most one batch (and
    repeating it writes nothing); when the store fails mid-way, what it had sent is written before
    the error goes on. Orders held for an unmapped store status are reported in the run's error
    text, which the seller sees on the channel page.
    """
    stored = ChannelSchedule.objects.filter(pk=channel.pk).values_list("orders_checkpoint", flat=True)
    if not stored:
        sync.ensure_schedules([channel])
    checkpoint = stored[0] if stored else None
    total = PageResult()
    check_skus = uses_product_master(channel.account_id)
    pending: list[base.Order] = []
    pending_checkpoint = checkpoint
    gathered_since = time.monotonic()

    def write() -> None:
        nonlocal checkpoint, pending, gathered_since
        with transaction.atomic():
            result = upsert_orders(channel, pending, check_skus=check_skus)
            if check_skus and (result.created or result.updated):
                announce_reservations_changed(channel.account_id, result.changed_skus)
            moved = (
                []
                if pending_checkpoint == checkpoint
                else [(ChannelSchedule, Q(pk=channel.pk), {"orders_checkpoint": pending_checkpoint})]
            )
            if run is not None:
                run.fetched += result.fetched
                run.created += result.created
                run.updated += result.updated
                run.unchanged += result.unchanged + result.skipped
                sync.heartbeat(run, also=moved)  # the checkpoint in the same round trip
            elif moved:
                ChannelSchedule.objects.filter(pk=channel.pk).update(orders_checkpoint=pending_checkpoint)
        checkpoint = pending_checkpoint
        pending = []
        gathered_since = time.monotonic()
        total.fetched += result.fetched
        total.created += result.created
        total.updated += result.updated
        total.unchanged += result.unchanged
        total.skipped += result.skipped
        total.held_statuses.update(result.held_statuses)

    try:
        for page in connector.fetch_orders(checkpoint):
            pending.extend(page.orders)
            pending_checkpoint = page.checkpoint
            if len(pending) >= WRITE_BATCH_ORDERS or time.monotonic() - gathered_since >= WRITE_BATCH_SECONDS:
                write()
    except ConnectorError:
        if pending or pending_checkpoint != checkpoint:
            write()  # keep what the store sent before it failed
        raise
    if pending or pending_checkpoint != checkpoint:
        write()
    if total.held_statuses:
        held = sum(total.held_statuses.values())
        statuses = ", ".join(sorted(total.held_statuses))
        warning = (
            f"{held} order(s) held: the store status {statuses} is not one you import or that the "
            "store reported when you connected it. Check “Order statuses to import” in the channel "
            "settings; held orders are flagged on the orders page."
        )
        log.warning("orders.download.held channel=%s count=%d", channel.pk, held)
        if run is not None:
            run.error = warning
    log.info(
        "orders.download.done channel=%s fetched=%d created=%d updated=%d unchanged=%d",
        channel.pk,
        total.fetched,
        total.created,
        total.updated,
        total.unchanged,
    )
    return total
