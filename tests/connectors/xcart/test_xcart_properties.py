"""Property tests: X-Cart money (JSON numbers with float noise), dates (ISO with any offset, unix
seconds) and the tax reading (VAT inside the prices or sales tax on top) of complex-schema orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.xcart import mapping

cents = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(10**11), max_value=10**11).map(lambda n: Decimal(n).scaleb(-2)))
def test_money_from_json_number_string_or_float_noise_is_exact(amount: Decimal) -> None:
    # X-Cart prints sums of floats (34.989999999999995 for 34.99): read as printed, round to cents
    assert mapping.money(repr(float(amount))) == amount
    assert mapping.money(float(amount)) == amount
    assert mapping.money(str(amount)) == amount
    assert mapping.money(json.loads(json.dumps(float(amount)))) == amount


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2)), max_size=10))
def test_a_float_sum_of_cents_reads_back_as_the_exact_sum(parts: list[Decimal]) -> None:
    noisy = sum(float(part) for part in parts)  # how PHP adds line subtotals before json_encode
    assert mapping.money(noisy) == sum(parts, Decimal("0.00"))


@given(st.one_of(st.text(alphabet="abc$,€ ", min_size=1), st.just("NaN"), st.just("Infinity")))
def test_non_numbers_are_a_mapping_error(value: str) -> None:
    with pytest.raises(mapping.MappingError):
        mapping.money(value)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2090, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    offsets,
)
def test_any_iso_offset_and_unix_seconds_read_as_the_same_utc_instant(
    moment: datetime, zone: timezone
) -> None:
    local = moment.replace(tzinfo=zone)
    expected = local.astimezone(UTC)
    for wire in (local.isoformat(), expected.isoformat().replace("+00:00", "Z")):
        parsed = mapping.parse_time(wire)
        assert parsed == expected
        assert parsed.utcoffset() == timedelta(0)
    epoch = int(expected.timestamp())
    assert mapping.parse_time(epoch) == expected
    assert mapping.parse_time(str(epoch)) == expected


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2090, 1, 1)))
def test_a_date_without_zone_is_refused_not_guessed(moment: datetime) -> None:
    with pytest.raises(mapping.MappingError):
        mapping.parse_time(moment.replace(microsecond=0).isoformat())


def _order(
    items: list[tuple[Decimal, int]], shipping: Decimal, discount: Decimal, tax: Decimal, total: Decimal
) -> Any:
    return {
        "orderId": 7,
        "orderNumber": "00007",
        "orderDate": "2024-05-02T10:15:04+00:00",
        "currency": "USD",
        "items": [
            {"sku": f"SKU-{i}", "price": float(price), "quantity": qty, "subtotal": float(price * qty)}
            for i, (price, qty) in enumerate(items)
        ],
        "shippingCost": float(shipping),
        "discountValue": -float(discount),
        "taxAmount": float(tax),
        "total": float(total),
        "otherSurcharges": [],
        "shippingStatus": "N",
        "paymentStatus": "P",
    }


order_parts = st.tuples(
    st.lists(st.tuples(cents, st.integers(min_value=1, max_value=20)), min_size=1, max_size=5),
    cents,
    cents,
    st.integers(min_value=2, max_value=10**6).map(lambda n: Decimal(n).scaleb(-2)),
)


@settings(max_examples=300, deadline=None)
@given(order_parts, st.booleans())
def test_tax_on_top_is_read_from_the_totals_whatever_the_setting(parts: Any, setting: bool) -> None:
    items, shipping, discount, tax = parts
    lines = sum((price * qty for price, qty in items), Decimal(0))
    total = lines + shipping - discount + tax
    order = mapping.order_from_complex(
        _order(items, shipping, discount, tax, total), prices_include_tax=setting, default_currency=""
    )
    assert order.prices_include_tax is False
    assert (order.tax, order.shipping, order.discount, order.total) == (tax, shipping, discount, total)
    assert order.computed_total == order.total


@settings(max_examples=300, deadline=None)
@given(order_parts, st.booleans())
def test_tax_inside_the_prices_is_read_from_the_totals_whatever_the_setting(
    parts: Any, setting: bool
) -> None:
    items, shipping, discount, tax = parts
    lines = sum((price * qty for price, qty in items), Decimal(0))
    total = lines + shipping - discount
    order = mapping.order_from_complex(
        _order(items, shipping, discount, tax, total), prices_include_tax=setting, default_currency=""
    )
    assert order.prices_include_tax is True
    assert order.tax == tax
    assert order.computed_total == order.total
