"""Property tests for what the bridge client makes of OpenCart's numbers and dates.

OpenCart keeps order amounts in the store's default currency with four decimals and the order's
``currency_value`` next to them, its totals as ``order_total`` rows (sub_total, shipping, tax,
coupon, handling ...), and every date as a naive wall-clock time in the store's timezone. Whatever
the amounts, the canonical order must add up (lines + shipping + tax − discount = total, within the
rounding of each amount to the order currency's own decimals — the store's ``decimal_place``, else
ISO 4217) and every date must come out as the same instant in UTC.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.http import StoreHttp
from connectors.opencart.bridge_client import BridgeClient, BridgeInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "opencart" / "bridge"
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/St_Johns",
    "UTC",
)
CENT = Decimal("0.01")
#: what the store's ``currency`` table says (JPY 0, KWD 3 are set by the seller like any other)
STORE_DECIMAL_PLACES = (("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3))
#: order currency -> decimals the canonical amounts must have; BHD, CLP and HUF are not in the store's
#: table (deleted since the order was placed), so ISO 4217 decides
EXPECTED_PLACES = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3, "BHD": 3, "CLP": 0, "HUF": 2}


@functools.cache
def client_for(zone: str) -> BridgeClient:
    """One client per zone for the whole module (an httpx client costs ~100 ms to build)."""
    http = StoreHttp(
        "http://127.0.0.1:1", platform="opencart", client=httpx.Client(), allow_private_hosts=True
    )
    client = BridgeClient(http, "Storelink", "k" * 64)
    client._info = BridgeInfo(  # what a successful ``info`` call would have cached
        bridge_version="1.0.0",
        opencart_version="4.1.0.4",
        schema_family="4.1",
        currency="USD",
        currencies=("USD", "EUR"),
        prices_include_tax=False,
        timezone=zone,
        languages=("en-gb",),
        stores=((0, "Default"),),
        decimal_places=STORE_DECIMAL_PLACES,
    )
    return client


def template() -> dict[str, Any]:
    return json.loads((FIXTURES / "orders_page_4.1.json").read_text())["orders"][0]


four_places = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-4))
rates = st.sampled_from(["1.00000000", "0.78460002", "0.61250001", "1.36210000", "150.12345678"])


def rounded(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(four_places, st.integers(min_value=1, max_value=50), four_places), min_size=1, max_size=5
    ),
    shipping=four_places,
    coupon=four_places,
    handling=st.one_of(st.none(), four_places),
    rate=rates,
    currency=st.sampled_from(sorted(EXPECTED_PLACES)),
)
def test_order_amounts_add_up_in_the_order_currency(
    lines: list[tuple[Decimal, int, Decimal]],
    shipping: Decimal,
    coupon: Decimal,
    handling: Decimal | None,
    rate: str,
    currency: str,
) -> None:
    raw = template()
    raw["currency_value"] = rate
    raw["currency_code"] = currency
    raw["products"] = [
        {
            "order_product_id": i + 1,
            "product_id": 10 + i,
            "sku": f"SKU-{i}",
            "model": "M",
            "name": "Thing",
            "quantity": quantity,
            "price": str(price),
            "total": str(price * quantity),
            "tax": str(unit_tax),
            "options": [],
        }
        for i, (price, quantity, unit_tax) in enumerate(lines)
    ]
    subtotal = sum((price * quantity for price, quantity, _ in lines), Decimal(0))
    tax = sum((unit_tax * quantity for _, quantity, unit_tax in lines), Decimal(0))
    rows = [("sub_total", subtotal), ("shipping", shipping), ("coupon", -coupon), ("tax", tax)]
    if handling is not None:
        rows.append(("handling", handling))
    total = sum((value for _, value in rows[1:]), subtotal)
    rows.append(("total", total))
    raw["totals"] = [
        {"code": code, "title": code, "value": str(value), "sort_order": n}
        for n, (code, value) in enumerate(rows)
    ]
    raw["total"] = str(total)

    order = client_for("UTC")._map_order(raw)

    factor = Decimal(rate)
    places = EXPECTED_PLACES[currency]
    unit = Decimal(1).scaleb(-places)
    assert order.currency == currency
    assert order.total == rounded(total * factor, places)
    assert order.discount == rounded(coupon * factor, places)
    assert order.tax == rounded(tax * factor, places)
    assert order.shipping == rounded((shipping + (handling or 0)) * factor, places)
    for amount in (order.total, order.subtotal, order.shipping, order.tax, order.discount):
        assert amount.as_tuple().exponent == -places
    for line, (price, quantity, _) in zip(order.lines, lines, strict=True):
        assert line.unit_price == rounded(price * factor, places)
        assert line.line_total == rounded(price * quantity * factor, places)
        assert line.unit_price.as_tuple().exponent == -places
    # every amount is rounded on its own, so the sum may be off by half a unit per amount, never more
    amounts = len(order.lines) + 4
    assert abs(order.computed_total - order.total) <= unit / 2 * amounts + unit / 2


existing_local_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)


def exists(moment: datetime, zone: ZoneInfo) -> bool:
    return moment.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == moment


@settings(max_examples=300, deadline=None)
@given(existing_local_times, st.sampled_from(ZONES))
def test_store_wall_clock_times_become_the_same_instant_in_utc(moment: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    converted = client_for(zone_name)._to_utc(moment.strftime("%Y-%m-%d %H:%M:%S"))
    assert converted is not None
    assert converted.utcoffset() == timedelta(0)
    if exists(moment, zone):
        assert converted.astimezone(zone).replace(tzinfo=None) == moment


@settings(max_examples=300, deadline=None)
@given(existing_local_times, st.integers(min_value=0, max_value=3 * 3600), st.sampled_from(ZONES))
def test_a_later_store_time_never_maps_to_an_earlier_instant(
    moment: datetime, step: int, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    later = moment + timedelta(seconds=step)
    if not (exists(moment, zone) and exists(later, zone)):
        return  # a store's clock never shows a time inside a DST gap
    client = client_for(zone_name)
    first = client._to_utc(moment.strftime("%Y-%m-%d %H:%M:%S"))
    second = client._to_utc(later.strftime("%Y-%m-%d %H:%M:%S"))
    assert first is not None
    assert second is not None
    assert first <= second
