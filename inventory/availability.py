"""Availability: what one listing may offer, and the units open orders reserve.

The rule is written once, in :func:`availability_rule`: on hand − units reserved by unshipped
orders on all the account's channels − the listing's buffer, never below 0 nor above the listing's
max quantity. :func:`available_quantity` evaluates it on Python numbers (one listing at a time) and
:func:`available_expression` on database columns (a whole channel compared in one query); both are
the same function applied to different arithmetic, so they cannot drift apart.

:func:`reserved_by_sku` is the one place reservations are computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from django.apps import apps
from django.db.models import Case, ExpressionWrapper, IntegerField, Q, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Greatest, Least
from django.db.models.lookups import IsNull

from accounts.models import Account

N = TypeVar("N")


class Arithmetic(Protocol[N]):
    """The three operations the availability rule is written in, for one kind of number."""

    def floor0(self, value: N) -> N:
        """``value``, or 0 when it is below 0."""
        ...

    def minus(self, left: N, right: N) -> N: ...

    def at_most(self, value: N, limit: N | None) -> N:
        """``value`` capped by ``limit`` (clamped to 0 first); no cap when ``limit`` is null."""
        ...


def availability_rule(on_hand: N, reserved: N, buffer: N, max_quantity: N | None, ops: Arithmetic[N]) -> N:
    """What one channel may offer: on hand − reserved − buffer, never below 0 nor above max.

    Overselling is worse than underselling: when the seller is already short (reserved > on hand)
    every channel shows 0 rather than a negative number a store would reject or misread.
    Written once over ``ops`` so Python (:func:`available_quantity`) and SQL
    (:func:`available_expression`) evaluate the same rule.
    """
    room = ops.floor0(ops.minus(ops.minus(on_hand, ops.floor0(reserved)), ops.floor0(buffer)))
    return ops.at_most(room, max_quantity)


class _Numbers:
    """The rule on Python integers."""

    def floor0(self, value: int) -> int:
        return max(0, value)

    def minus(self, left: int, right: int) -> int:
        return left - right

    def at_most(self, value: int, limit: int | None) -> int:
        return value if limit is None else min(value, max(0, limit))


class _Columns:
    """The rule as a database expression (PostgreSQL's ``GREATEST``/``LEAST``, ``CASE`` for a null
    cap: ``LEAST`` would ignore the null, ``GREATEST(NULL, 0)`` would make it 0)."""

    _whole = IntegerField()

    def floor0(self, value: Any) -> Any:
        return Greatest(value, Value(0), output_field=self._whole)

    def minus(self, left: Any, right: Any) -> Any:
        return ExpressionWrapper(left - right, output_field=self._whole)

    def at_most(self, value: Any, limit: Any) -> Any:
        if limit is None:
            return value
        return Case(
            When(IsNull(limit, True), then=value),
            default=Least(value, self.floor0(limit), output_field=self._whole),
            output_field=self._whole,
        )


def available_quantity(on_hand: int, reserved: int, buffer: int, max_quantity: int | None) -> int:
    """:func:`availability_rule` for one listing's numbers."""
    return availability_rule(on_hand, reserved, buffer, max_quantity, _Numbers())


def available_expression(on_hand: Any, reserved: Any, buffer: Any, max_quantity: Any) -> Any:
    """:func:`availability_rule` as an expression over columns or values (``F(...)``, ``Value(...)``)
    to annotate a queryset with, so a whole channel is compared in one query."""
    return availability_rule(on_hand, reserved, buffer, max_quantity, _Columns())


def reserved_by_sku(account: Account | Any, skus: Iterable[str] | None = None) -> dict[str, int]:
    """Units sold but not yet shipped, per SKU, over every live channel of the account.

    The one place reservations are computed. Orders are read through the app registry (never an
    import) so inventory does not depend on the orders app's import order; without that app's
    models nothing is reserved. An order is open until its store status is the channel's processed
    ("shipped") status or the store has closed it (``Order.store_closed``: shipped, cancelled,
    refunded ..., set by every download, which keeps each order current). An open order's
    line reserves its quantity minus what pending or confirmed shipments already cover (a
    shipment without lines covers the whole order). Orders held for an unmapped status reserve:
    selling what may already be sold is the worse mistake.
    """
    if not apps.is_installed("orders"):
        return {}
    account_id = getattr(account, "pk", account)
    wanted: list[str] | None = None
    if skus is not None:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return {}
    lines = open_lines(account_id)
    if wanted is not None:
        lines = lines.filter(sku__in=wanted)
    rows = list(lines)
    if not rows:
        return {}
    shipped = _shipped_units(account_id, {order_id for order_id, *_ in rows})
    reserved: dict[str, int] = {}
    for order_id, line_id, sku, quantity in rows:
        covered = shipped.get(order_id)
        if covered is _WHOLE_ORDER:
            continue
        units = quantity - (covered or {}).get(str(line_id), 0)
        if units > 0 and sku:
            reserved[sku] = reserved.get(sku, 0) + units
    return reserved


_WHOLE_ORDER: dict[str, int] = {}


def open_lines(account_id: Any) -> Any:
    """The account's order lines that reserve stock: (order id, external line id, sku, quantity)."""
    order_model = apps.get_model("orders", "Order")
    line_model = apps.get_model("orders", "OrderLine")
    orders = order_model.objects.filter(account_id=account_id).filter(_open_orders())
    # No ordering: the lines are summed per SKU, and the model's default order costs a join and a sort.
    lines = line_model.objects.filter(account_id=account_id, order__in=orders.values("pk")).order_by()
    return lines.values_list("order_id", "external_line_id", "sku", "quantity")


def _open_orders() -> Q:
    """Orders that still hold stock, in one condition (no per-channel query): on a live channel,
    and held for an unmapped status, or neither closed on the store (``store_closed``, set by the
    download from the store's verdict or the platform's closed statuses) nor at their channel's
    processed status."""
    processed = Q(status_code=Coalesce(KeyTextTransform("processed_status", "channel__settings"), Value("")))
    closed = Q(store_closed=True) | processed
    return Q(channel__removed_at__isnull=True) & (Q(held_unmapped_status=True) | ~closed)


def _shipped_units(account_id: Any, order_ids: set[Any]) -> dict[Any, dict[str, int]]:
    """Per order, units per external line id that shipments (pending or confirmed) cover."""
    try:
        shipment_model = apps.get_model("orders", "Shipment")
    except LookupError:
        return {}
    covered: dict[Any, dict[str, int]] = {}
    for order_id, lines in shipment_model.objects.filter(
        account_id=account_id, order_id__in=list(order_ids), state__in=["pending", "confirmed"]
    ).values_list("order_id", "lines"):
        if not lines:
            covered[order_id] = _WHOLE_ORDER
            continue
        per_line = covered.setdefault(order_id, {})
        if per_line is _WHOLE_ORDER:
            continue
        for line in lines:
            key = str(line.get("external_line_id", ""))
            per_line[key] = per_line.get(key, 0) + int(line.get("quantity") or 0)
    return covered
