"""Wire → canonical edge cases: tax included or on top, missing numbers, dates."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.xcart import mapping

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "xcart"


def complex_order(**changes: Any) -> dict[str, Any]:
    row = json.loads((FIXTURES / "complex_order_discount.json").read_text())
    row.update(changes)
    return row


def test_vat_included_in_prices_is_recognised_from_the_totals() -> None:
    # 19.99 incl. 3.33 VAT + 1.50 shipping − 3 discount = 18.49: the tax is inside the prices
    order = mapping.order_from_complex(
        complex_order(taxAmount=3.33), prices_include_tax=False, default_currency=""
    )
    assert order.prices_include_tax is True
    assert order.tax == Decimal("3.33")
    assert order.computed_total == order.total


def test_totals_that_fit_neither_reading_fall_back_to_the_setting() -> None:
    odd = complex_order(taxAmount=1.11, total=25)
    assert (
        mapping.order_from_complex(odd, prices_include_tax=True, default_currency="").prices_include_tax
        is True
    )
    assert (
        mapping.order_from_complex(odd, prices_include_tax=False, default_currency="").prices_include_tax
        is False
    )


def test_an_order_without_number_uses_its_id_and_the_default_currency() -> None:
    order = mapping.order_from_complex(
        complex_order(orderNumber=None, currency=""), prices_include_tax=False, default_currency="GBP"
    )
    assert order.number == "1042"
    assert order.currency == "GBP"


@pytest.mark.parametrize(
    "bad", [{"orderDate": "yesterday"}, {"orderDate": "2024-05-02T10:15:04"}, {"total": "x"}]
)
def test_unreadable_values_raise_mapping_error(bad: dict[str, Any]) -> None:
    with pytest.raises(mapping.MappingError):
        mapping.order_from_complex(complex_order(**bad), prices_include_tax=False, default_currency="")


def test_times_from_iso_z_and_unix() -> None:
    assert mapping.parse_time("2024-05-02T10:15:04Z").isoformat() == "2024-05-02T10:15:04+00:00"
    assert mapping.parse_time(1714644904).isoformat() == "2024-05-02T10:15:04+00:00"


def test_status_list_is_sorted_by_position_and_named() -> None:
    rows = [
        {"id": 3, "code": "S", "position": 30},
        {"id": 1, "code": "N", "position": 10},
        {"id": 10, "code": "X1"},
    ]
    statuses = mapping.status_list(rows, mapping.SHIPPING)
    assert [(s.code, s.name) for s in statuses] == [("X1", "X1"), ("N", "New"), ("S", "Shipped")]
    assert {s.group for s in statuses} == {"shipping"}
    # Shipped closes an order; a custom status never does (holding stock is the safer mistake)
    assert [s.closes_order for s in statuses] == [False, False, True]
    with pytest.raises(mapping.MappingError):
        mapping.status_list({"code": "N"}, mapping.SHIPPING)


@pytest.mark.parametrize(
    ("payment", "shipping", "closed"),
    [
        ("P", "N", False),  # Paid, New
        ("P", "P", False),  # Paid, Processing: the same letter in both lists, both open
        ("C", "N", True),  # cancelled in the admin: payment Cancelled, shipping still New
        ("D", "N", True),  # payment Declined
        ("R", "N", True),  # payment Refunded
        ("A", "D", True),  # shipping Delivered
        ("P", "R", True),  # shipping Returned
        ("P", "WND", True),
        ("Q", "S", True),
        ("Q", "NBA", False),
    ],
)
def test_an_order_is_closed_when_either_list_says_so(payment: str, shipping: str, closed: bool) -> None:
    order = mapping.order_from_complex(
        complex_order(paymentStatus=payment, shippingStatus=shipping),
        prices_include_tax=False,
        default_currency="",
    )
    assert order.closed is closed
    assert order.status_code == shipping
