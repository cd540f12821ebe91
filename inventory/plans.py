"""What a stock or price job would send: the listings whose value differs from the store's.

A stock plan reads the channel's queued changes (or, after a re-read of the store, compares every
listing in the database); a price plan compares every priced listing. The baseline is what the
store is known to hold; values come from :mod:`inventory.availability` and
:mod:`inventory.prices`. Planning writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Round

from channels.models import SalesChannel
from connectors.base import currency_places
from inventory.availability import available_expression, available_quantity, open_lines, reserved_by_sku
from inventory.models import Listing, StockChange
from inventory.prices import price_rule


@dataclass(frozen=True)
class PlannedPush:
    """One listing to send and the value to send it (a quantity or a channel price)."""

    listing_id: Any
    sku: str
    remote_id: str
    remote_variant_id: str
    value: Any
    #: How many queued stock changes the plan read for the listing (0: none, and for prices);
    #: a success settles them if no change was counted since.
    changes: int = 0


def _pushable(channel: SalesChannel) -> Any:
    # account_id first: the (account, channel, sku) index then serves the channel's listings.
    return Listing.objects.present().filter(
        account_id=channel.account_id, channel=channel, product__isnull=False
    )


_PLAN_FIELDS = ("pk", "sku", "remote_id", "remote_variant_id")


def _total_of(listings: Any) -> Subquery:
    """How many listings a run considered, counted in the planning query itself (an uncorrelated
    subquery the database evaluates once) instead of a separate round trip."""
    counted = listings.order_by().annotate(_one=Value(1)).values("_one").annotate(n=Count("pk")).values("n")
    return Subquery(counted, output_field=IntegerField())


@dataclass
class StockPlan:
    """What one stock job sends, and the queued changes it looked at and found already in place.

    ``settled`` pairs a listing with the count of queued changes the plan read; they are deleted
    only where the count is still that one (see :func:`_settle`).
    """

    pushes: list[PlannedPush]
    considered: int
    settled: list[tuple[Any, int]] = field(default_factory=list)


def _quantity_to_send(
    on_hand: int,
    reserved: int,
    buffer: int,
    max_quantity: int | None,
    store_quantity: int | None,
    last_pushed: int | None,
) -> int | None:
    """The available quantity when it differs from what the store is known to hold (what it said
    at the last read, else our last successful push); ``None`` when the store already has it."""
    value = available_quantity(on_hand, reserved, buffer, max_quantity)
    return value if value != (store_quantity if store_quantity is not None else last_pushed) else None


def _queued_stock_changes(channel_id: Any, account_id: Any) -> Any:
    """A channel's queued stock changes with what planning needs of each listing, and whether any
    open order line of its SKU reserves stock (so the few that do are the only SKUs whose
    reservations are then computed)."""
    reserves: Any = Value(False)
    if apps.is_installed("orders"):
        reserves = Exists(open_lines(account_id).filter(sku=OuterRef("listing__sku")))
    return (
        StockChange.objects.filter(channel_id=channel_id)
        .annotate(reserves=reserves)
        .values_list(
            "listing_id",
            "listing__sku",
            "listing__remote_id",
            "listing__remote_variant_id",
            "listing__product_id",
            "listing__removed_at",
            "listing__product__on_hand",
            "listing__buffer",
            "listing__max_quantity",
            "listing__store_quantity",
            "listing__last_pushed_quantity",
            "changes",
            "reserves",
        )
    )


def planned_stock(channel: SalesChannel, *, everything: bool = False) -> StockPlan:
    """Listings whose available quantity differs from what the store is known to hold.

    The baseline is the last value the store is known to hold: our last successful push, unless
    listings were re-read since (the reconcile), in which case what the store said wins, so an
    edit made on the store behind our back, or the store's own decrement on a sale, is corrected.
    A push that failed changes neither, so the item keeps differing and goes again next run.

    By default only listings with queued changes are looked at (every writer that moves
    availability counts a change on the listings concerned: :func:`mark_stock_changed`), so a job
    after 100 product changes on a 10,000-listing channel reads 100 rows, not 10,000.
    ``everything`` compares every listing (after the reconcile re-read the store, and as a safety
    net for any change that was not counted).

    Order of reads matters: the queued changes are read before the reservations, so an order that
    arrives in between counts a change the job has not seen and the listing stays queued.
    """
    if everything:
        return _planned_stock_everything(channel)
    rows = list(_queued_stock_changes(channel.pk, channel.account_id))
    pushable = [row for row in rows if row[4] is not None and row[5] is None]
    # Read after the queue: an order arriving in between counts a change this run has not seen.
    reserving = {row[1] for row in pushable if row[-1]}
    reserved = reserved_by_sku(channel.account_id, reserving) if reserving else {}
    plan = StockPlan(pushes=[], considered=len(pushable))
    for (
        *ids,
        product_id,
        removed_at,
        on_hand,
        buffer,
        max_quantity,
        store_quantity,
        last_pushed,
        changes,
        _reserves,
    ) in rows:
        if product_id is None or removed_at is not None:
            plan.settled.append((ids[0], changes))  # not pushed; linking it again counts a change
            continue
        value = _quantity_to_send(
            on_hand, reserved.get(ids[1], 0), buffer, max_quantity, store_quantity, last_pushed
        )
        if value is not None:
            plan.pushes.append(PlannedPush(*ids, value, changes))
        else:
            plan.settled.append((ids[0], changes))
    plan.pushes.sort(key=_batch_order)
    return plan


def _reserving_skus(listings: Any, account_id: Any) -> list[str]:
    """The SKUs of ``listings`` that an open order line of the account names."""
    if not apps.is_installed("orders"):
        return []
    named = Exists(open_lines(account_id).filter(sku=OuterRef("sku")))
    return list(listings.filter(named).order_by().values_list("sku", flat=True).distinct())


def _planned_stock_everything(channel: SalesChannel) -> StockPlan:
    """Every listing of the channel compared in the database (the availability rule as SQL,
    :func:`~inventory.availability.available_expression`) for SKUs without open orders, so 10,000
    listings load only the ones that differ; SKUs with reservations are few and are computed here.
    The queued changes are read first (see :func:`planned_stock`) and all settled by this comparison."""
    pending = dict(StockChange.objects.filter(channel=channel).values_list("listing_id", "changes"))
    listings = _pushable(channel)
    # Reservations of this channel's SKUs only, and only of those an open order names: one
    # semi-join finds them, instead of summing every open order of the account.
    reserving = _reserving_skus(listings, channel.account_id)
    reserved = reserved_by_sku(channel.account_id, reserving) if reserving else {}
    # SKUs without open orders reserve nothing.
    target = available_expression(F("product__on_hand"), Value(0), F("buffer"), F("max_quantity"))
    plain = listings.exclude(sku__in=list(reserved)) if reserved else listings
    rows = list(
        plain.annotate(
            target=target,
            baseline=Coalesce("store_quantity", "last_pushed_quantity"),
            total=_total_of(listings),
        )
        .filter(Q(baseline__isnull=True) | ~Q(baseline=F("target")))
        .values_list(*_PLAN_FIELDS, "target", "total")
    )
    considered = rows[0][-1] if rows else listings.count()
    pushes = [PlannedPush(*row[:-1], pending.get(row[0], 0)) for row in rows]
    if reserved:
        for *ids, on_hand, buffer, max_quantity, store_quantity, last_pushed in listings.filter(
            sku__in=list(reserved)
        ).values_list(
            *_PLAN_FIELDS,
            "product__on_hand",
            "buffer",
            "max_quantity",
            "store_quantity",
            "last_pushed_quantity",
        ):
            value = _quantity_to_send(
                on_hand, reserved[ids[1]], buffer, max_quantity, store_quantity, last_pushed
            )
            if value is not None:
                pushes.append(PlannedPush(*ids, value, pending.get(ids[0], 0)))
    pushed = {item.listing_id for item in pushes}
    pushes.sort(key=_batch_order)
    settled = [(pk, count) for pk, count in pending.items() if pk not in pushed]
    return StockPlan(pushes=pushes, considered=considered, settled=settled)


def planned_prices(channel: SalesChannel) -> tuple[list[PlannedPush], int]:
    """Listings whose channel price differs from the store's known one; unpriced products skip.

    The database narrows the candidates with the same formula as :func:`channel_price` (numeric
    arithmetic, half-up rounding of non-negative amounts); the value sent is computed here.
    """
    rule = price_rule(channel)
    listings = _pushable(channel).filter(product__price__isnull=False)
    price: Any = F("product__price")
    if rule.master_includes_tax != rule.store_includes_tax:
        factor = Value(Decimal(1)) + F("product__tax_rate") / Value(Decimal(100))
        price = price * factor if rule.store_includes_tax else price / factor
    amount = ExpressionWrapper(
        price * F("price_multiplier") + F("price_offset"),
        output_field=DecimalField(max_digits=30, decimal_places=10),
    )
    target = Greatest(Round(amount, currency_places(rule.currency)), Value(Decimal(0)))
    rows = (
        listings.annotate(
            target=target, baseline=Coalesce("store_price", "last_pushed_price"), total=_total_of(listings)
        )
        .filter(Q(baseline__isnull=True) | ~Q(baseline=F("target")))
        .values_list(
            *_PLAN_FIELDS,
            "product__price",
            "product__tax_rate",
            "price_multiplier",
            "price_offset",
            "store_price",
            "last_pushed_price",
            "total",
        )
    )
    rows = list(rows)
    considered = rows[0][-1] if rows else listings.count()

    plan: list[PlannedPush] = []
    for *ids, master, tax_rate, multiplier, offset, store_price, last_pushed, _total in rows:
        value = rule.price(master, tax_rate, multiplier, offset)
        baseline = store_price if store_price is not None else last_pushed
        if baseline is None or value != baseline:
            plan.append(PlannedPush(*ids, value))
    # A product's new price moves the price of variants that inherit it (OpenCart option prices are
    # differences from the product's; X-Cart variants may use the product's price): those are sent
    # again after their product, so the store ends with the price Storelink computed for each SKU.
    parents = {item.remote_id for item in plan if not item.remote_variant_id}
    if parents:
        planned = {item.listing_id for item in plan}
        for *ids, master, tax_rate, multiplier, offset in (
            listings.filter(remote_id__in=parents)
            .exclude(remote_variant_id="")
            .exclude(pk__in=planned)
            .values_list(
                *_PLAN_FIELDS, "product__price", "product__tax_rate", "price_multiplier", "price_offset"
            )
        ):
            plan.append(PlannedPush(*ids, rule.price(master, tax_rate, multiplier, offset)))
    plan.sort(key=_batch_order)
    return plan, considered


def _batch_order(item: PlannedPush) -> tuple[bool, str]:
    """Products before variants: stores write them through different endpoints, so a batch that
    mixes both costs two requests where one would do."""
    return (bool(item.remote_variant_id), item.sku)
