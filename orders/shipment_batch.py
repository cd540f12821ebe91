"""Several shipments at once: a warehouse's CSV or orders picked in the to-ship queue.

A batch is all or nothing. Every row is resolved (order number → the account's order, SKU → the
order's lines) and every shipment is recorded through :func:`orders.shipments.record_shipment`, the
same function the API and the order page use, inside one transaction. If any row has an error the
transaction is rolled back, so nothing is half applied; a preview is the same run, always rolled
back, so what it shows is exactly what applying would do (and jobs registered for after commit are
dropped with it). Each shipment carries an idempotency key made from its order, carrier, tracking
number and lines: applying the same file twice, or a double-clicked button, records nothing new.

Order numbers are the numbers the store shows the seller (``Order.number``), compared without a
leading ``#`` and without case. A number that exists on several channels is an error naming them,
unless the row's channel column or the channel chosen on the page says which one is meant.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Account
from accounts.tenancy import Actor
from channels.models import SalesChannel
from config import csvio
from orders.models import Order, OrderLine, Shipment, ShipmentState
from orders.shipments import record_shipment

log = logging.getLogger("storelink.orders")

#: Rows one file may hold (besides its header), as many as the API's batch of shipments: every
#: shipment is checked and recorded one by one (about a dozen statements each), and a file must be
#: previewed and applied well within a web request's time.
MAX_ROWS = 500

#: Header names (letters only, lower case) accepted for each column.
HEADERS = {
    "order": {"order", "ordernumber", "orderno", "ordernum", "orderid", "ordernr", "ordercode", "number"},
    "carrier": {"carrier", "shippingcarrier", "courier", "shipper"},
    "tracking": {"tracking", "trackingnumber", "trackingno", "trackingnum", "trackingcode", "trackingid"},
    "sku": {"sku", "itemsku", "productsku"},
    "quantity": {"qty", "quantity", "units", "quantityshipped", "qtyshipped"},
    "channel": {"channel", "channelname", "store", "storename", "shop"},
    "service": {"service", "shippingservice"},
}
#: Columns of a file without a header row, in the order warehouses write them.
POSITIONAL = ("order", "carrier", "tracking", "sku", "quantity")


@dataclass
class BatchRow:
    """One requested shipment row: a CSV line, or an order picked in the queue (``order_id`` set)."""

    line: int
    order_number: str
    carrier: str = ""
    tracking: str = ""
    sku: str = ""
    quantity: str = ""
    channel: str = ""
    service: str = ""
    order_id: Any = None


@dataclass(frozen=True)
class RowError:
    line: int
    order_number: str
    message: str


@dataclass
class PlannedShipment:
    """One shipment the batch records: its order, what it ships (SKU and name), which rows asked."""

    order: Order
    carrier: str
    tracking: str
    service: str = ""
    rows: list[int] = field(default_factory=list)
    #: ``None`` ships every unit still left on the order.
    lines: list[dict[str, Any]] | None = None
    #: ``(quantity, sku, name)`` per line, filled when the shipment was recorded (or previewed).
    items: list[tuple[int, str, str]] = field(default_factory=list)
    is_partial: bool = False
    #: The same shipment was recorded before (same file applied again): nothing new is recorded.
    already_recorded: bool = False
    _skus: list[tuple[int, str, int | None]] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        lines = (
            "*"
            if self.lines is None
            else ",".join(f"{item['external_line_id']}={item['quantity']}" for item in self.lines)
        )
        content = f"{self.order.pk}|{self.carrier.strip().lower()}|{self.tracking.strip()}|{lines}"
        return "batch-" + hashlib.sha256(content.encode()).hexdigest()[:40]


@dataclass
class BatchResult:
    shipments: list[PlannedShipment] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.shipments)

    @property
    def new_count(self) -> int:
        return sum(1 for shipment in self.shipments if not shipment.already_recorded)

    @property
    def repeated_count(self) -> int:
        return sum(1 for shipment in self.shipments if shipment.already_recorded)


# --------------------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------------------


def rows_from_csv(text: str) -> list[BatchRow]:
    """The rows of a warehouse's CSV; :class:`config.csvio.CsvError` when the file is unusable.

    With a header row the columns are found by name (order number, carrier, tracking number and
    optionally SKU, quantity, channel, service, in any order); without one they are taken as
    ``order number, carrier, tracking number[, sku, qty]``.
    """
    records = csvio.read_rows(text, max_rows=MAX_ROWS + 1)
    columns = _header_columns(records[0].cells)
    if columns is None:
        columns = {name: index for index, name in enumerate(POSITIONAL)}
    else:
        records = records[1:]
        missing = [
            label
            for name, label in (("order", "order number"), ("tracking", "tracking number"))
            if name not in columns
        ]
        if missing:
            raise csvio.CsvError(f"The header row has no {' or '.join(missing)} column.")
    if not records:
        raise csvio.CsvError("The file has a header row but no shipments.")

    def cell(cells: list[str], name: str) -> str:
        index = columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    return [
        BatchRow(
            line=record.line,
            order_number=cell(record.cells, "order"),
            carrier=cell(record.cells, "carrier"),
            tracking=cell(record.cells, "tracking"),
            sku=cell(record.cells, "sku"),
            quantity=cell(record.cells, "quantity"),
            channel=cell(record.cells, "channel"),
            service=cell(record.cells, "service"),
        )
        for record in records
    ]


def _header_columns(cells: list[str]) -> dict[str, int] | None:
    """Column positions if ``cells`` is a header row (it names an order and a tracking column)."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = csvio.header_key(cell)
        for name, accepted in HEADERS.items():
            if key in accepted and name not in columns:
                columns[name] = index
    if "order" in columns or "tracking" in columns:
        return columns
    return None


# --------------------------------------------------------------------------------------------------
# Resolving and recording
# --------------------------------------------------------------------------------------------------


def number_key(number: str) -> str:
    return number.strip().lstrip("#").strip().lower()


def _channel_names(orders: Sequence[Order]) -> str:
    return ", ".join(sorted({order.channel.name for order in orders}))


def _matching_channel(value: str, channels: Sequence[SalesChannel]) -> SalesChannel | None:
    wanted = value.strip().lower()
    for channel in channels:
        if channel.name.strip().lower() == wanted or str(channel.pk) == wanted:
            return channel
    return None


def _resolve_orders(
    account: Account, rows: Sequence[BatchRow], channel: SalesChannel | None
) -> tuple[dict[int, Order], list[RowError]]:
    """The order of each row (by its line), or the row's error; two queries for the whole batch."""
    errors: list[RowError] = []
    live = (
        Order.objects.filter(account=account, channel__removed_at__isnull=True)
        .select_related("channel", "account")
        .prefetch_related("lines")
    )
    if channel is not None:
        live = live.filter(channel=channel)
    by_id = {
        str(order.pk): order for order in live.filter(pk__in=[row.order_id for row in rows if row.order_id])
    }
    wanted: set[str] = set()
    for row in rows:
        if row.order_id is None and row.order_number.strip():
            base = row.order_number.strip().lstrip("#").strip()
            wanted |= {row.order_number.strip(), base, f"#{base}"}
    by_number: dict[str, list[Order]] = defaultdict(list)
    if wanted:
        for order in live.filter(number__in=sorted(wanted)):
            by_number[number_key(order.number)].append(order)
    channels = (
        list(SalesChannel.objects.live().filter(account=account)) if any(r.channel for r in rows) else []
    )
    found: dict[int, Order] = {}
    for row in rows:
        number = row.order_number.strip()
        where = f" on {channel.name}" if channel is not None else ""
        if row.order_id is not None:
            order = by_id.get(str(row.order_id))
            if order is None:
                errors.append(RowError(row.line, number, f"Order {number or row.order_id} not found."))
            else:
                found[row.line] = order
            continue
        if not number:
            errors.append(RowError(row.line, "", "Enter the order number."))
            continue
        matches = by_number.get(number_key(number), [])
        if row.channel:
            named = _matching_channel(row.channel, channels)
            if named is None:
                errors.append(RowError(row.line, number, f"You have no channel named “{row.channel}”."))
                continue
            matches = [order for order in matches if order.channel_id == named.pk]
            where = f" on {named.name}"
        if not matches:
            errors.append(RowError(row.line, number, f"Order {number} not found{where}."))
        elif len({order.channel_id for order in matches}) > 1:
            errors.append(
                RowError(
                    row.line,
                    number,
                    f"Order number {number} exists on several channels ({_channel_names(matches)}); "
                    "add a channel column to the file or choose the channel above.",
                )
            )
        elif len(matches) > 1:
            errors.append(
                RowError(
                    row.line,
                    number,
                    f"{matches[0].channel.name} has several orders numbered {number}; "
                    "record this shipment on the order's page.",
                )
            )
        else:
            found[row.line] = matches[0]
    return found, errors


def _parse_quantity(text: str) -> int | None:
    """A row's quantity: ``None`` when empty (every unit left), else a whole number ≥ 1."""
    if not text.strip():
        return None
    try:
        number = int(text.strip())
    except ValueError:
        try:
            as_float = float(text.strip())
        except ValueError:
            raise ValueError("The quantity must be a whole number.") from None
        if not as_float.is_integer():
            raise ValueError("The quantity must be a whole number.") from None
        number = int(as_float)
    if number < 1:
        raise ValueError("The quantity must be at least 1.")
    return number


def plan(
    account: Account, rows: Sequence[BatchRow], *, channel: SalesChannel | None = None
) -> tuple[list[PlannedShipment], list[RowError]]:
    """Group rows into shipments (one per order, carrier and tracking number) and map SKUs and
    quantities to the order's lines; every row's error, not just the first."""
    orders, errors = _resolve_orders(account, rows, channel)
    groups: dict[tuple[Any, str, str], PlannedShipment] = {}
    whole_rows: dict[tuple[Any, str, str], int] = {}
    for row in rows:
        order = orders.get(row.line)
        if order is None:
            continue
        number = row.order_number.strip() or order.number
        if not row.tracking.strip():
            errors.append(RowError(row.line, number, "Enter a tracking number."))
            continue
        try:
            quantity = _parse_quantity(row.quantity)
        except ValueError as exc:
            errors.append(RowError(row.line, number, str(exc)))
            continue
        if quantity is not None and not row.sku.strip():
            errors.append(
                RowError(
                    row.line, number, "A quantity needs its SKU; leave both empty to ship every unit left."
                )
            )
            continue
        key = (order.pk, row.carrier.strip().lower(), row.tracking.strip())
        shipment = groups.get(key)
        if shipment is None:
            shipment = groups[key] = PlannedShipment(
                order=order,
                carrier=row.carrier.strip(),
                tracking=row.tracking.strip(),
                service=row.service.strip(),
            )
        shipment.rows.append(row.line)
        if row.sku.strip():
            shipment._skus.append((row.line, row.sku.strip(), quantity))
        elif key in whole_rows:
            errors.append(
                RowError(
                    row.line,
                    number,
                    f"Repeats line {whole_rows[key]} (same order, carrier and tracking number).",
                )
            )
        else:
            whole_rows[key] = row.line
    for key, line in whole_rows.items():
        if groups[key]._skus:
            errors.append(
                RowError(
                    line,
                    groups[key].order.number,
                    "Other rows of this order and tracking number name SKUs; give every row a SKU, or none "
                    "to ship every unit left.",
                )
            )
    errors += _map_lines(list(groups.values()))
    return list(groups.values()), errors


def _map_lines(shipments: list[PlannedShipment]) -> list[RowError]:
    """Turn each shipment's SKU rows into order lines (two queries for the batch). A SKU on
    several lines of an order fills them in order; quantities already claimed by an earlier
    shipment of the same batch are not offered twice."""
    errors: list[RowError] = []
    wanted = [shipment.order for shipment in shipments if shipment._skus]
    if not wanted:
        return errors
    order_ids = {order.pk for order in wanted}
    lines: dict[Any, list[OrderLine]] = defaultdict(list)
    for line in OrderLine.objects.filter(order_id__in=order_ids).order_by("order_id", "position", "pk"):
        lines[line.order_id].append(line)
    left: dict[Any, dict[str, int]] = {
        order_id: {line.external_line_id: line.quantity for line in order_lines}
        for order_id, order_lines in lines.items()
    }
    for order_id, shipped_lines in Shipment.objects.filter(
        order_id__in=order_ids, state__in=[ShipmentState.PENDING, ShipmentState.CONFIRMED]
    ).values_list("order_id", "lines"):
        for item in shipped_lines or []:
            key = str(item.get("external_line_id", ""))
            if key in left.get(order_id, {}):
                left[order_id][key] -= int(item.get("quantity") or 0)
    for shipment in shipments:
        if not shipment._skus:
            continue
        order = shipment.order
        remaining = left.setdefault(order.pk, {})
        chosen: dict[str, int] = defaultdict(int)
        for row_line, sku, quantity in shipment._skus:
            candidates = [line for line in lines[order.pk] if line.sku == sku] or [
                line for line in lines[order.pk] if line.sku.lower() == sku.lower()
            ]
            if not candidates:
                errors.append(
                    RowError(row_line, order.number, f"Order {order.number} has no line with SKU {sku}.")
                )
                continue
            available = sum(max(0, remaining.get(line.external_line_id, 0)) for line in candidates)
            units = available if quantity is None else quantity
            if available <= 0:
                errors.append(
                    RowError(
                        row_line, order.number, f"{sku} of order {order.number} has already been shipped."
                    )
                )
                continue
            if units > available:
                errors.append(
                    RowError(
                        row_line,
                        order.number,
                        f"Order {order.number} has only {available} unit(s) of {sku} left to ship; "
                        f"the file says {units}.",
                    )
                )
                continue
            for line in candidates:
                take = min(units, max(0, remaining.get(line.external_line_id, 0)))
                if take:
                    chosen[line.external_line_id] += take
                    remaining[line.external_line_id] -= take
                    units -= take
        shipment.lines = [{"external_line_id": key, "quantity": qty} for key, qty in chosen.items()]
    return errors


def _describe(shipment: PlannedShipment, recorded: Shipment) -> None:
    names = {line.external_line_id: (line.sku, line.name) for line in shipment.order.lines.all()}
    shipment.items = [
        (
            int(item["quantity"]),
            *names.get(str(item["external_line_id"]), ("", str(item["external_line_id"]))),
        )
        for item in recorded.lines
    ]
    shipment.is_partial = recorded.is_partial


def run_batch(
    account: Account,
    rows: Sequence[BatchRow],
    *,
    actor: Actor,
    channel: SalesChannel | None = None,
    apply: bool = False,
) -> BatchResult:
    """Check (``apply=False``) or record every shipment of ``rows``, all or nothing."""
    result = BatchResult()
    if not rows:
        result.errors.append(RowError(0, "", "Choose at least one order to ship."))
        return result
    shipments, errors = plan(account, rows, channel=channel)
    result.shipments, result.errors = shipments, errors
    failed_rows = {error.line for error in errors}
    with transaction.atomic():
        # A fixed lock order (by order id): two batches over the same orders queue, never deadlock.
        for shipment in sorted(shipments, key=lambda s: str(s.order.pk)):
            if failed_rows.intersection(shipment.rows) or shipment.lines == []:
                continue
            try:
                recorded, created = record_shipment(
                    shipment.order,
                    actor=actor,
                    tracking_numbers=shipment.tracking,
                    carrier=shipment.carrier,
                    service=shipment.service,
                    lines=shipment.lines,
                    idempotency_key=shipment.idempotency_key,
                )
            except ValidationError as exc:
                message = " ".join(exc.messages)
                result.errors += [RowError(line, shipment.order.number, message) for line in shipment.rows]
                continue
            shipment.already_recorded = not created
            _describe(shipment, recorded)
        result.errors.sort(key=lambda error: error.line)
        if result.errors or not apply:
            transaction.set_rollback(True)
        else:
            result.applied = True
    if result.applied:
        log.info(
            "orders.shipment.batch account=%s recorded=%d repeated=%d",
            account.pk,
            result.new_count,
            result.repeated_count,
        )
    return result
