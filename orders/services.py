"""Order download and shipment confirmation: the business rules of the orders half of the sync.

``download_orders`` and ``confirm_pending_shipments`` have the ``work(channel, connector, run)``
signature of :func:`channels.sync.run_channel_job`, which owns leases, SyncRuns and error
handling; they only move data. ``record_shipment`` and ``retry_shipment`` are the seller- and
warehouse-facing actions (actor as keyword, one transaction, the job enqueued on commit).

Downloads write pages in bulk with a constant number of queries per page: one select of the page's
existing orders, one of known SKUs, one insert of new orders, one update of changed orders, one
delete and one insert of their lines, one checkpoint update. An order whose content hash and flags
are unchanged is not written at all, so a re-sync of an unchanged store writes nothing but the
checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import ApiKey, Role
from accounts.tenancy import Actor, actor_user, require_actor_role
from channels import sync
from channels.models import ChannelSchedule, SalesChannel, SyncJob, SyncRun
from connectors import base
from connectors.errors import (
    AuthError,
    ConnectorError,
    OrderClosedError,
    PermanentError,
    ProtocolError,
    RateLimited,
    TransientError,
)
from connectors.registry import connector_class
from connectors.text import unsafe_character_message
from orders.models import Order, OrderLine, Shipment, ShipmentState

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
MAX_TRACKING_NUMBERS = 20
#: Shipment confirmations: attempts before a transient failure becomes "failed" for the seller.
MAX_SHIPMENT_ATTEMPTS = 8
SHIPMENT_RETRY_MAX_SECONDS = 3600.0
SHIPMENTS_PER_RUN = 500


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------


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


def _reservations_changed(account_id: Any, skus: Iterable[str]) -> None:
    """New, changed or shipped orders move availability of these SKUs on every channel.

    Imported here because inventory reads orders lazily too; call inside the transaction that
    changed the orders (the listings count the change with it), the stock jobs go out after commit.
    """
    from inventory.stock_queue import reservations_changed

    reservations_changed(account_id, skus)


def _order_skus(order_ids: Iterable[Any]) -> set[str]:
    return set(OrderLine.objects.filter(order_id__in=list(order_ids)).values_list("sku", flat=True))


def _product_model() -> Any | None:
    """The inventory app's Product model, if that app has landed (it is built in parallel)."""
    try:
        return apps.get_model("inventory", "Product")
    except LookupError:
        return None


def uses_product_master(account_id: Any) -> bool:
    """Whether the account keeps products in Storelink at all (else "unknown SKU" would flag
    every order of a seller who only uses Storelink for orders and shipments)."""
    product = _product_model()
    return product is not None and product.objects.filter(account_id=account_id).exists()


def _known_skus(account_id: Any, skus: set[str]) -> set[str]:
    """Which of ``skus`` the account's product master knows (one query)."""
    product = _product_model()
    if product is None or not skus:
        return set()
    return set(product.objects.filter(account_id=account_id, sku__in=skus).values_list("sku", flat=True))


def on_product_master_changed(
    sender: Any, *, account_id: Any, skus: Iterable[str], everything: bool = False, **kwargs: Any
) -> int:
    """Receiver of :data:`channels.events.product_master_changed` (connected in ``OrdersConfig.ready``)."""
    return product_master_changed(account_id, skus, everything=everything)


def product_master_changed(account_id: Any, skus: Iterable[str], *, everything: bool = False) -> int:
    """Re-evaluate ``unknown_sku`` on the account's orders after products were added, renamed or
    deleted; returns how many orders changed. One UPDATE, whatever the number of orders.

    The flag says whether an order has a line the product master does not know *now*, so it must
    move with the master and not keep what was true when the order was last written. Only orders
    with a line of one of ``skus`` can change, unless ``everything`` (the master was empty before:
    every order is judged for the first time). An account without any product keeps no master, so
    no SKU is unknown to it and its flags are cleared.
    """
    product = _product_model()
    if product is None:
        return 0
    orders = Order.objects.filter(account_id=account_id)
    now = timezone.now()
    if not product.objects.filter(account_id=account_id).exists():
        return orders.filter(unknown_sku=True).update(unknown_sku=False, updated_at=now)
    if not everything:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return 0
        orders = orders.filter(
            pk__in=OrderLine.objects.filter(account_id=account_id, sku__in=wanted).values("order_id")
        )
    unknown_line = OrderLine.objects.filter(order_id=OuterRef("pk")).filter(
        Q(sku="")
        | ~Exists(product.objects.filter(account_id=OuterRef(OuterRef("account_id")), sku=OuterRef("sku")))
    )
    # Only rows whose flag really moves are written (and their updated_at moves for API readers).
    return (
        orders.exclude(unknown_sku=Exists(unknown_line))
        .order_by()
        .update(unknown_sku=Exists(unknown_line), updated_at=now)
    )


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
                _reservations_changed(channel.account_id, result.changed_skus)
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


# --------------------------------------------------------------------------------------------------
# Shipments
# --------------------------------------------------------------------------------------------------


class ShipmentError(ValidationError):
    """Something the caller can fix; ``message_dict`` maps field names to messages."""


def _shipment_error(field_name: str, message: str) -> ShipmentError:
    return ShipmentError({field_name: [message]})


class IdempotencyKeyReused(ShipmentError):
    """The key already names a shipment recorded with different contents: answering that shipment
    would hide the difference, recording a second one would defeat the key."""


def shipped_quantities(order: Order, *, exclude: Shipment | None = None) -> dict[str, int]:
    """Units per external line id already in pending or confirmed shipments of ``order``."""
    shipments = Shipment.objects.filter(
        order=order, state__in=[ShipmentState.PENDING, ShipmentState.CONFIRMED]
    ).values_list("id", "lines")
    shipped: dict[str, int] = defaultdict(int)
    for shipment_id, lines in shipments:
        if exclude is not None and shipment_id == exclude.pk:
            continue
        for line in lines or []:
            shipped[str(line["external_line_id"])] += int(line["quantity"])
    return dict(shipped)


def unshipped_quantities(order: Order, *, exclude: Shipment | None = None) -> dict[str, int]:
    """Units per external line id not yet in any pending or confirmed shipment."""
    shipped = shipped_quantities(order, exclude=exclude)
    remaining: dict[str, int] = defaultdict(int)
    for line in order.lines.all():
        remaining[line.external_line_id] += line.quantity
    return {key: qty - shipped.get(key, 0) for key, qty in remaining.items()}


def _clean_tracking(tracking_numbers: Iterable[str] | str | None) -> list[str]:
    if isinstance(tracking_numbers, str):
        tracking_numbers = tracking_numbers.replace(",", "\n").splitlines()
    cleaned: list[str] = []
    for value in tracking_numbers or []:
        text = str(value).strip()
        if not text:
            continue
        if len(text) > 100:
            raise _shipment_error(
                "tracking_numbers", "A tracking number must be one line of at most 100 characters."
            )
        if message := unsafe_character_message(text, "A tracking number"):
            raise _shipment_error("tracking_numbers", message)
        if text not in cleaned:
            cleaned.append(text)
    if not cleaned:
        raise _shipment_error("tracking_numbers", "Enter at least one tracking number.")
    if len(cleaned) > MAX_TRACKING_NUMBERS:
        raise _shipment_error("tracking_numbers", f"Enter at most {MAX_TRACKING_NUMBERS} tracking numbers.")
    return cleaned


def _clean_lines(
    order: Order, lines: Iterable[Mapping[str, Any]] | None, remaining: Mapping[str, int]
) -> list[dict]:
    """Requested lines checked against what is still unshipped; empty means everything left."""
    requested: dict[str, int] = defaultdict(int)
    for item in lines or []:
        line_id = str(item.get("external_line_id", "")).strip()
        try:
            quantity = int(item.get("quantity", 0))
        except (TypeError, ValueError):
            raise _shipment_error("lines", f"Quantity for line {line_id} must be a whole number.") from None
        if quantity == 0:
            continue
        if quantity < 0:
            raise _shipment_error("lines", f"Quantity for line {line_id} cannot be negative.")
        if line_id not in remaining:
            raise _shipment_error("lines", f"Order {order.number} has no line {line_id!r}.")
        requested[line_id] += quantity
    if not requested and lines:
        raise _shipment_error("lines", "Choose at least one line to ship.")
    if not requested:
        requested = {key: qty for key, qty in remaining.items() if qty > 0}
        if not requested:
            raise _shipment_error("lines", f"Everything in order {order.number} has already been shipped.")
    for line_id, quantity in requested.items():
        if quantity > remaining[line_id]:
            raise _shipment_error(
                "lines",
                f"Line {line_id} has only {max(0, remaining[line_id])} unit(s) left to ship; "
                f"you entered {quantity}.",
            )
    return [{"external_line_id": key, "quantity": qty} for key, qty in requested.items()]


def record_shipment(
    order: Order,
    *,
    actor: Actor,
    tracking_numbers: Iterable[str] | str,
    carrier: str = "",
    service: str = "",
    lines: Iterable[Mapping[str, Any]] | None = None,
    idempotency_key: str | None = None,
) -> tuple[Shipment, bool]:
    """Record a shipment and have it confirmed to the store; returns (shipment, created).

    The same ``idempotency_key`` answers the shipment it first created (no duplicate), so a
    warehouse system can safely repeat a POST that timed out. The order row is locked while the
    quantities are checked, so two concurrent shipments cannot both ship the last unit.
    """
    require_actor_role(actor, order.account, Role.MEMBER, doing="record shipments")
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 255:
        raise _shipment_error("idempotency_key", "The idempotency key must be at most 255 characters.")
    if key is not None:
        existing = _by_idempotency_key(order.account_id, key, order)
        if existing is not None:
            return _replayed(existing, tracking_numbers, carrier, service, lines), False
    if order.channel.is_removed:
        raise _shipment_error(
            "__all__", "This order's channel has been removed; the store cannot be updated."
        )
    if order.store_closed:
        raise _shipment_error("__all__", closed_order_message(order))
    numbers = _clean_tracking(tracking_numbers)
    carrier = (carrier or "").strip()[:100]
    service = (service or "").strip()[:100]
    lines = list(lines or [])
    try:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            # The key is checked again under the order lock: a request with the same key that got
            # the lock first has committed its shipment by now, and this one must answer it rather
            # than find "everything already shipped" and fail.
            existing = _by_idempotency_key(order.account_id, key, order) if key else None
            if existing is not None:
                return _replayed(existing, numbers, carrier, service, lines), False
            remaining = unshipped_quantities(locked)
            cleaned_lines = _clean_lines(locked, lines, remaining)
            left_after = sum(remaining.values()) - sum(line["quantity"] for line in cleaned_lines)
            shipment = Shipment.objects.create(
                account_id=order.account_id,
                order=locked,
                channel_id=order.channel_id,
                carrier=carrier,
                service=service,
                tracking_numbers=numbers,
                lines=cleaned_lines,
                is_partial=left_after > 0,
                idempotency_key=key,
                created_by=actor_user(actor),
                created_by_api_key=actor if isinstance(actor, ApiKey) else None,
            )
            sync.request_job(order.channel, SyncJob.SHIPMENTS)
            if uses_product_master(order.account_id):
                _reservations_changed(order.account_id, _order_skus([locked.pk]))
    except IntegrityError:
        # Two requests with the same key raced; the other one won and created the shipment.
        existing = _by_idempotency_key(order.account_id, key, order) if key else None
        if existing is None:
            raise
        return _replayed(existing, numbers, carrier, service, lines), False
    log.info("orders.shipment.recorded shipment=%s order=%s", shipment.pk, order.pk)
    return shipment, True


def _replayed(
    existing: Shipment,
    tracking_numbers: Iterable[str] | str,
    carrier: str,
    service: str,
    lines: Iterable[Mapping[str, Any]] | None,
) -> Shipment:
    """``existing`` if the repeated request asks for the same shipment, else IdempotencyKeyReused."""
    requested: dict[str, int] = defaultdict(int)
    for item in lines or []:
        with contextlib.suppress(TypeError, ValueError):
            quantity = int(item.get("quantity", 0))
            if quantity:
                requested[str(item.get("external_line_id", "")).strip()] += quantity
    recorded = {str(line["external_line_id"]): int(line["quantity"]) for line in existing.lines or []}
    differences = [
        name
        for name, same in (
            ("tracking numbers", _clean_tracking(tracking_numbers) == list(existing.tracking_numbers)),
            ("carrier", (carrier or "").strip()[:100] == existing.carrier),
            ("service", (service or "").strip()[:100] == existing.service),
            # No lines asked for "everything left", which is what the first request recorded.
            ("lines", not requested or dict(requested) == recorded),
        )
        if not same
    ]
    if differences:
        raise IdempotencyKeyReused(
            {
                "idempotency_key": [
                    "This idempotency key was already used for a shipment with different "
                    f"{', '.join(differences)}; use a new key for a new shipment."
                ]
            }
        )
    return existing


def closed_order_message(order: Order) -> str:
    """Why a shipment for an order the store has closed is not sent, in the seller's words."""
    status = order.status_name or order.status_code
    return (
        f"The store shows order {order.number} as closed ({status}): it was cancelled, refunded or "
        "already completed there, so the shipment was not sent. Check the order in your store."
    )


def _by_idempotency_key(account_id: Any, key: str, order: Order) -> Shipment | None:
    existing = Shipment.objects.filter(account_id=account_id, idempotency_key=key).first()
    if existing is not None and existing.order_id != order.pk:
        raise _shipment_error("idempotency_key", "This idempotency key was already used for another order.")
    return existing


def retry_shipment(shipment: Shipment, *, actor: Actor) -> Shipment:
    """Send a failed shipment to the store again (the seller fixed the cause, or wants another go)."""
    require_actor_role(actor, shipment.account, Role.MEMBER, doing="retry shipments")
    with transaction.atomic():
        # The state is read under the row lock, not from the caller's copy: a double-clicked
        # retry whose first click got the shipment confirmed meanwhile must not send it again.
        fresh = Shipment.objects.select_for_update().get(pk=shipment.pk)
        if fresh.state == ShipmentState.CONFIRMED:
            raise _shipment_error("__all__", "This shipment is already confirmed on the store.")
        if fresh.order.store_closed:
            raise _shipment_error("__all__", closed_order_message(fresh.order))
        if fresh.state == ShipmentState.FAILED:
            remaining = unshipped_quantities(fresh.order, exclude=fresh)
            for line in fresh.lines:
                if int(line["quantity"]) > remaining.get(str(line["external_line_id"]), 0):
                    raise _shipment_error(
                        "lines",
                        "Other shipments have since covered these lines; record a new shipment instead.",
                    )
            Shipment.objects.filter(pk=fresh.pk).update(
                state=ShipmentState.PENDING, attempts=0, next_attempt_at=None, claimed_until=None
            )
            if uses_product_master(fresh.account_id):
                _reservations_changed(fresh.account_id, _order_skus([fresh.order_id]))  # shipped again
        else:
            # Still pending: only skip its back-off. A worker may be confirming it right now
            # (``claimed_until``); clearing that claim would let a second worker send it again.
            Shipment.objects.filter(pk=fresh.pk).update(next_attempt_at=None)
        sync.request_job(fresh.channel, SyncJob.SHIPMENTS)
    fresh.refresh_from_db()
    log.info("orders.shipment.retry shipment=%s", fresh.pk)
    return fresh


def _backoff(attempts: int, exc: Exception) -> timedelta:
    if isinstance(exc, RateLimited):
        return timedelta(seconds=max(1.0, exc.retry_after))
    base = float(django_settings.SHIPMENT_RETRY_BASE_SECONDS)
    seconds = min(SHIPMENT_RETRY_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def shipment_request(shipment: Shipment, channel: SalesChannel) -> base.ShipmentRequest:
    partial_status = str((channel.settings or {}).get("partial_status") or "")
    return base.ShipmentRequest(
        order_external_id=shipment.order.external_id,
        tracking_numbers=tuple(shipment.tracking_numbers),
        carrier=shipment.carrier,
        service=shipment.service,
        lines=tuple(
            base.ShipmentLine(external_line_id=str(line["external_line_id"]), quantity=int(line["quantity"]))
            for line in shipment.lines
        ),
        shipped_at=shipment.created_at,
        processed_status=str((channel.settings or {}).get("processed_status") or ""),
        is_partial=shipment.is_partial,
        # Only a partial shipment moves the order to the seller's "partially shipped" status.
        partial_status=partial_status if shipment.is_partial else "",
        reference=shipment_reference(shipment),
    )


def shipment_reference(shipment: Shipment) -> str:
    """The tag a store write carries so a retry recognises it; stable for the shipment's life."""
    return f"SL-{shipment.id.hex[:12]}"


def _claim(shipment: Shipment, now: datetime) -> bool:
    """Own the shipment for one confirmation attempt; ``False`` when someone else has it.

    Confirmations only run inside the channel's shipments job, which holds the channel's lease
    (renewed before every store request) for as long as it works; no second attempt can start while
    that job lives. The claim therefore lasts as long as a lease: a SIGKILLed worker's shipment is
    free again when its job's lease runs out, not minutes later.
    """
    until = now + timedelta(seconds=sync.default_lease_seconds())
    return bool(
        Shipment.objects.filter(pk=shipment.pk, state=ShipmentState.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until, attempts=F("attempts") + 1)
    )


def closed_on_store(channel: SalesChannel, order: Order, fresh: object | None) -> None:
    """The store refused a shipment because it has closed the order: bring Storelink's copy up to
    date now (status, lines, closed), so its reservation is released without waiting for the next
    download. ``fresh`` is the order as the store shows it, when the connector read it."""
    with transaction.atomic():
        if isinstance(fresh, base.Order) and str(fresh.external_id) == order.external_id:
            result = upsert_orders(channel, [replace(fresh, closed=True)])
            skus = result.changed_skus
        else:
            Order.objects.filter(pk=order.pk).update(store_closed=True, updated_at=timezone.now())
            skus = _order_skus([order.pk])
        if skus and uses_product_master(channel.account_id):
            _reservations_changed(channel.account_id, skus)
    order.store_closed = True
    log.info("orders.closed_on_store order=%s", order.pk)


def keep_shipments_due(channel: SalesChannel) -> datetime | None:
    """Make the shipments job due when the channel's next pending shipment may be tried; returns when.

    A shipments job takes the channel's due time when it starts, so the job that ends must set it
    again for every shipment still pending, not only for those it just failed: one waiting out its
    back-off from an earlier run (the run was requested for a newer shipment), one beyond this
    run's batch, one still claimed by a worker that was killed. Otherwise that shipment would wait
    for the ten-minute sweep although the store answers again.
    """
    now = timezone.now()
    next_at = Shipment.objects.filter(channel=channel, state=ShipmentState.PENDING).aggregate(
        at=Min(
            Greatest(
                Coalesce("next_attempt_at", models.Value(now)), Coalesce("claimed_until", models.Value(now))
            )
        )
    )["at"]
    if next_at is not None:
        sync.mark_due(channel, SyncJob.SHIPMENTS, max(next_at, now))
    return next_at


def confirm_pending_shipments(
    channel: SalesChannel, connector: base.Connector, run: SyncRun | None = None
) -> dict[str, int]:
    """Confirm each due pending shipment of ``channel`` on the store, exactly once each.

    Transient store errors (timeouts, 5xx, rate limits, replies we could not read — the write may
    or may not have landed, and connectors make confirmation safe to repeat) put the shipment back
    with a back-off and make the job due again then; permanent ones fail the shipment with the
    store's message for the seller to fix and retry. ``AuthError`` stops the job (the channel
    needs reauthorising); the shipment stays pending and is confirmed after reauthorisation.
    """
    now = timezone.now()
    due = list(
        Shipment.objects.filter(channel=channel, state=ShipmentState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .select_related("order")
        .order_by("created_at")[:SHIPMENTS_PER_RUN]
    )
    counts = {"confirmed": 0, "retrying": 0, "failed": 0}
    failed_orders: list[Any] = []
    for shipment in due:
        now = timezone.now()
        if not _claim(shipment, now):
            continue
        attempts = shipment.attempts + 1
        if run is not None:
            run.fetched += 1
        if shipment.order.store_closed and shipment.attempts == 0:
            # Closed since the shipment was recorded (a download saw the cancellation): never sent.
            # Once an attempt was made, the store may hold our own write (whose reply was lost) and
            # that write may be what closed the order (Shipped): the connector, which recognises
            # its own write by the shipment reference and reads the store's current status, decides.
            Shipment.objects.filter(pk=shipment.pk).update(
                state=ShipmentState.FAILED,
                claimed_until=None,
                last_error=closed_order_message(shipment.order),
            )
            counts["failed"] += 1
            failed_orders.append(shipment.order_id)
            if run is not None:
                run.failed += 1
            log.warning("orders.shipment.failed shipment=%s code=order_closed", shipment.pk)
            continue
        try:
            result = connector.confirm_shipment(shipment_request(shipment, channel))
        except AuthError:
            Shipment.objects.filter(pk=shipment.pk).update(
                claimed_until=None,
                attempts=F("attempts") - 1,
                last_error="Paused: the channel needs reauthorising.",
            )
            raise
        except (RateLimited, TransientError, ProtocolError) as exc:
            if attempts >= MAX_SHIPMENT_ATTEMPTS:
                Shipment.objects.filter(pk=shipment.pk).update(
                    state=ShipmentState.FAILED,
                    claimed_until=None,
                    last_error=f"Gave up after {attempts} attempts: {exc.message}",
                )
                counts["failed"] += 1
                failed_orders.append(shipment.order_id)
            else:
                retry_at = timezone.now() + _backoff(attempts, exc)
                Shipment.objects.filter(pk=shipment.pk).update(
                    claimed_until=None, next_attempt_at=retry_at, last_error=exc.message
                )
                counts["retrying"] += 1
            if run is not None:
                run.failed += 1
            log.info("orders.shipment.retry_later shipment=%s code=%s", shipment.pk, exc.code)
        except PermanentError as exc:
            if isinstance(exc, OrderClosedError):
                closed_on_store(channel, shipment.order, exc.order)
            Shipment.objects.filter(pk=shipment.pk).update(
                state=ShipmentState.FAILED, claimed_until=None, last_error=exc.message
            )
            counts["failed"] += 1
            failed_orders.append(shipment.order_id)
            if run is not None:
                run.failed += 1
            log.warning("orders.shipment.failed shipment=%s code=%s", shipment.pk, exc.code)
        else:
            Shipment.objects.filter(pk=shipment.pk).update(
                state=ShipmentState.CONFIRMED,
                claimed_until=None,
                confirmed_at=timezone.now(),
                next_attempt_at=None,
                store_reference=(result.store_reference or "")[:255],
                last_error="; ".join(result.warnings),
            )
            counts["confirmed"] += 1
            if run is not None:
                run.updated += 1
            log.info("orders.shipment.confirmed shipment=%s", shipment.pk)
        if run is not None:
            sync.heartbeat(run)
    keep_shipments_due(channel)
    if failed_orders and uses_product_master(channel.account_id):
        # A failed shipment no longer covers its lines: those units are reserved again.
        _reservations_changed(channel.account_id, _order_skus(failed_orders))
    if run is not None and (counts["retrying"] or counts["failed"]):
        parts = []
        if counts["retrying"]:
            parts.append(
                f"{counts['retrying']} shipment(s) will be retried (the store did not answer properly)"
            )
        if counts["failed"]:
            parts.append(f"{counts['failed']} shipment(s) failed; see the order page")
        run.error = "; ".join(parts) + "."
    return counts
