"""Availability and channel prices: the arithmetic every push relies on, and reservations by orders."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.db.models import F, IntegerField, Value
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from connectors.registry import connector_class
from inventory.availability import available_expression, available_quantity, reserved_by_sku
from inventory.models import Listing, Product
from inventory.prices import channel_price
from tests.factories import SalesChannelFactory

quantities = st.integers(min_value=-1000, max_value=10**9)
small = st.integers(min_value=0, max_value=10**6)


@given(on_hand=quantities, reserved=quantities, buffer=small, max_quantity=st.none() | small)
def test_available_is_never_negative_never_above_max_and_respects_the_buffer(
    on_hand: int, reserved: int, buffer: int, max_quantity: int | None
) -> None:
    value = available_quantity(on_hand, reserved, buffer, max_quantity)
    assert value >= 0
    if max_quantity is not None:
        assert value <= max_quantity
    # The buffer is always held back: never more than on hand − reserved − buffer is offered.
    assert value <= max(0, on_hand - max(0, reserved) - buffer)
    # And nothing more is held back than that: when there is room, exactly that much is offered.
    expected = max(0, on_hand - max(0, reserved) - buffer)
    assert value == (expected if max_quantity is None else min(expected, max_quantity))


@given(on_hand=small, reserved=small, buffer=small)
def test_more_buffer_never_offers_more(on_hand: int, reserved: int, buffer: int) -> None:
    assert available_quantity(on_hand, reserved, buffer + 1, None) <= available_quantity(
        on_hand, reserved, buffer, None
    )


def test_available_examples() -> None:
    assert available_quantity(10, 3, 2, None) == 5
    assert available_quantity(10, 3, 2, 4) == 4
    assert available_quantity(3, 5, 0, None) == 0  # oversold: 0, not −2
    assert available_quantity(10, 0, 0, 0) == 0


def _number(value: int | None) -> Value:
    return Value(value, output_field=IntegerField())


@pytest.mark.django_db
def test_the_database_applies_the_same_availability_rule_as_python() -> None:
    """A whole channel is compared in SQL and single listings in Python: over every edge (short,
    exactly used up, a cap of 0, no cap, out-of-range inputs) both give the same number."""
    SalesChannelFactory()
    cases = list(
        itertools.product([-5, 0, 1, 7, 12], [-3, 0, 1, 7, 20], [-1, 0, 2, 9], [None, -1, 0, 3, 100])
    )
    expressions = {
        f"case_{index}": available_expression(*(_number(value) for value in case))
        for index, case in enumerate(cases)
    }
    row = SalesChannelFactory._meta.model.objects.values(**expressions)[0]
    mismatches = [
        (case, row[f"case_{index}"], available_quantity(*case))
        for index, case in enumerate(cases)
        if row[f"case_{index}"] != available_quantity(*case)
    ]
    assert mismatches == []
    offered = {row[name] for name in expressions}  # the grid reaches 0, the cap and everything between
    assert {0, 3, 12} <= offered
    assert len(offered) >= 8


@pytest.mark.django_db
def test_the_database_rule_reads_the_listing_columns_like_python(alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account)
    rows = [("A", 10, 0, None), ("B", 10, 3, None), ("C", 10, 3, 4), ("D", 2, 5, None), ("E", 5, 0, 0)]
    for sku, on_hand, buffer, max_quantity in rows:
        product = Product.objects.create(account=alice.account, sku=sku, on_hand=on_hand)
        Listing.objects.create(
            account=alice.account,
            channel=channel,
            product=product,
            sku=sku,
            remote_id=sku,
            buffer=buffer,
            max_quantity=max_quantity,
        )
    in_database = dict(
        Listing.objects.filter(channel=channel)
        .annotate(
            offer=available_expression(F("product__on_hand"), _number(1), F("buffer"), F("max_quantity"))
        )
        .values_list("sku", "offer")
    )
    assert in_database == {sku: available_quantity(o, 1, b, m) for sku, o, b, m in rows}
    assert in_database == {"A": 9, "B": 6, "C": 4, "D": 0, "E": 0}


@pytest.mark.parametrize(
    ("master", "rate", "master_gross", "store_gross", "currency", "multiplier", "offset", "expected"),
    [
        ("10.00", "19", False, False, "EUR", "1", "0", "10.00"),
        ("8.4034", "19", False, True, "EUR", "1", "0", "10.00"),
        ("10.00", "20", False, True, "GBP", "1.1", "0.50", "13.70"),  # tax first, then the rule
        ("1000", "10", False, True, "JPY", "1", "0", "1100"),
        ("11.90", "19", True, False, "EUR", "1", "0", "10.00"),  # gross master, net store: tax out
        ("249.50", "20", True, False, "GBP", "1", "0", "207.92"),
        ("249.50", "20", True, True, "GBP", "1", "0", "249.50"),  # same basis: no conversion
        ("249.50", "20", False, False, "GBP", "1", "0", "249.50"),
        ("10.1234", "0", False, False, "KWD", "1", "0", "10.123"),
        ("2.00", "0", False, False, "USD", "1", "-5", "0.00"),  # never below zero
        ("0.005", "0", False, False, "USD", "1", "0", "0.01"),  # half-up, once, at the end
    ],
)
def test_channel_price_converts_between_master_and_store_basis_then_applies_the_rule(
    master: str,
    rate: str,
    master_gross: bool,
    store_gross: bool,
    currency: str,
    multiplier: str,
    offset: str,
    expected: str,
) -> None:
    price = channel_price(
        Decimal(master),
        tax_rate=Decimal(rate),
        master_includes_tax=master_gross,
        store_includes_tax=store_gross,
        currency=currency,
        multiplier=Decimal(multiplier),
        offset=Decimal(offset),
    )
    assert price == Decimal(expected)
    assert price.as_tuple().exponent == Decimal(expected).as_tuple().exponent


# --------------------------------------------------------------------------------------------------
# Reservations from the orders app (read through the app registry)
# --------------------------------------------------------------------------------------------------


def _order(
    channel: Any, external_id: str, status: str, lines: list[tuple[str, str, int]], **extra: Any
) -> Any:
    order_model = apps.get_model("orders", "Order")
    line_model = apps.get_model("orders", "OrderLine")
    now = timezone.now()
    # As the download sets it when the connector gives no verdict of its own: from the platform's list.
    extra.setdefault("store_closed", status in connector_class(channel.platform).closed_status_codes)
    order = order_model.objects.create(
        account_id=channel.account_id,
        channel=channel,
        external_id=external_id,
        number=external_id,
        placed_at=now,
        status_code=status,
        currency="EUR",
        subtotal=Decimal(0),
        shipping=Decimal(0),
        tax=Decimal(0),
        discount=Decimal(0),
        total=Decimal(0),
        content_hash=external_id,
        **extra,
    )
    for line_id, sku, quantity in lines:
        line_model.objects.create(
            account_id=channel.account_id,
            order=order,
            external_line_id=line_id,
            sku=sku,
            quantity=quantity,
            unit_price=Decimal(1),
            tax=Decimal(0),
            line_total=Decimal(quantity),
        )
    return order


def _shipment(order: Any, lines: list[dict[str, Any]], state: str = "pending") -> None:
    apps.get_model("orders", "Shipment").objects.create(
        account_id=order.account_id, order=order, channel_id=order.channel_id, lines=lines, state=state
    )


@pytest.mark.django_db
def test_reserved_counts_unshipped_units_across_all_channels_of_the_account(alice: Any, bob: Any) -> None:
    # OpenCart channels whose processed (shipped) status is "3".
    first = SalesChannelFactory(account=alice.account)
    second = SalesChannelFactory(account=alice.account)
    removed = SalesChannelFactory(account=alice.account, removed_at=timezone.now())
    other_tenant = SalesChannelFactory(account=bob.account)

    _order(first, "A1", "1", [("1", "MUG", 2), ("2", "CAP", 1)])
    _order(second, "B1", "2", [("1", "MUG", 3)])
    _order(first, "A2", "3", [("1", "MUG", 50)])  # shipped: the store moved it to the processed status
    _order(first, "A3", "7", [("1", "MUG", 40)])  # cancelled on the store
    _order(second, "B4", "11", [("1", "CAP", 30)])  # refunded
    _order(second, "B5", "15", [("1", "CAP", 1)])  # "Processed" (paid, not shipped) still reserves
    _order(first, "A4", "7", [("1", "MUG", 4)], held_unmapped_status=True)  # held: reserve, don't guess
    _order(removed, "R1", "1", [("1", "MUG", 30)])  # a removed channel's orders no longer reserve
    _order(other_tenant, "X1", "1", [("1", "MUG", 100)])

    partly = _order(first, "A5", "1", [("1", "MUG", 5), ("2", "CAP", 2)])
    _shipment(partly, [{"external_line_id": "1", "quantity": 3}])  # 2 MUG left to ship
    whole = _order(second, "B2", "1", [("1", "CAP", 9)])
    _shipment(whole, [], state="confirmed")  # no lines: the whole order shipped
    failed = _order(second, "B3", "1", [("1", "CAP", 6)])
    _shipment(failed, [], state="failed")  # a failed confirmation still has to ship

    reserved = reserved_by_sku(alice.account)
    assert reserved == {"MUG": 2 + 3 + 4 + 2, "CAP": 1 + 2 + 6 + 1}
    assert reserved_by_sku(alice.account, ["CAP"]) == {"CAP": 10}
    assert reserved_by_sku(bob.account) == {"MUG": 100}
    assert reserved_by_sku(alice.account, []) == {}


@pytest.mark.django_db
def test_reserved_follows_each_platforms_own_statuses(alice: Any) -> None:
    xcart = SalesChannelFactory(account=alice.account, platform="xcart", settings={"processed_status": "S"})
    threedcart = SalesChannelFactory(
        account=alice.account, platform="threedcart", settings={"processed_status": "4"}
    )
    _order(xcart, "X1", "N", [("1", "LAMP", 2)])  # new
    _order(xcart, "X2", "P", [("1", "LAMP", 3)])  # processing
    _order(xcart, "X3", "S", [("1", "LAMP", 50)])  # shipped
    _order(xcart, "X4", "D", [("1", "LAMP", 50)])  # delivered
    _order(threedcart, "T1", "1", [("1", "LAMP", 4)])  # new
    _order(threedcart, "T2", "5", [("1", "LAMP", 50)])  # cancelled
    _order(threedcart, "T3", "4", [("1", "LAMP", 50)])  # shipped
    unset = SalesChannelFactory(account=alice.account, settings={})  # no processed status chosen yet
    _order(unset, "U1", "2", [("1", "LAMP", 6)])
    _order(unset, "U2", "5", [("1", "LAMP", 50)])  # OpenCart "Complete"
    assert reserved_by_sku(alice.account) == {"LAMP": 2 + 3 + 4 + 6}
