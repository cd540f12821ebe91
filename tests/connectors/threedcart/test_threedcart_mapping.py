"""Wire → canonical mapping: orders, totals, dates, options, listings, write replies."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from connectors.errors import PermanentError, ProtocolError
from connectors.threedcart.mapping import (
    map_listings,
    map_order,
    parse_store_datetime,
    parse_write_results,
    resolve_zone,
    sanitise_method_name,
    split_item_description,
    split_tracking_codes,
    variant_code_from_item_options,
    zone_from_store_setting,
)
from tests.connectors.threedcart.conftest import fixture

NEW_YORK = ZoneInfo("America/New_York")


def mapped(raw: dict, **kwargs) -> object:
    return map_order(raw, zone=NEW_YORK, currency="USD", status_names={"1": "Fresh"}, **kwargs)


def test_reference_order_maps_with_reconciled_totals() -> None:
    order = mapped(fixture("order_5001.json"))
    assert order.external_id == "5001"
    assert order.number == "AB-1001"
    assert order.status_code == "1"
    assert order.status_name == "Fresh"
    assert order.placed_at == datetime(2025, 3, 1, 19, 5, 9, tzinfo=UTC)  # 14:05:09 EST
    assert order.updated_at == datetime(2025, 3, 1, 19, 6, 30, tzinfo=UTC)
    assert (order.subtotal, order.shipping, order.tax, order.discount, order.total) == (
        Decimal("40.00"),
        Decimal("5.00"),
        Decimal("3.20"),
        Decimal("0.00"),
        Decimal("48.20"),
    )
    assert order.computed_total == order.total
    (line,) = order.lines
    assert (line.sku, line.name, line.quantity, line.unit_price) == (
        "TSHIRT-M",
        "T-Shirt",
        2,
        Decimal("20.00"),
    )
    assert line.options == (("Size", "M"),)
    assert (line.remote_product_id, line.remote_variant_id, line.external_line_id) == ("11", "6", "9001")
    assert order.shipping_address.name == "Jane Doe"
    assert order.shipping_method == "USPS Priority Mail"
    assert order.customer_email == "jane@example.com"


def test_discount_and_three_taxes_reconcile() -> None:
    raw = fixture("order_5001.json") | {
        "SalesTax": 1.0,
        "SalesTax2": 1.1,
        "SalesTax3": 1.1,
        "OrderDiscount": 5,
        "OrderAmount": 43.2,
    }
    order = mapped(raw)
    assert order.tax == Decimal("3.20")
    assert order.discount == Decimal("5.00")
    assert order.computed_total == order.total == Decimal("43.20")


def test_option_price_not_included_when_totals_say_so() -> None:
    # UNCONFIRMED whether ItemOptionPrice is inside ItemUnitPrice: the reading that adds up wins.
    raw = fixture("order_5001.json")
    raw["OrderItemList"][0]["ItemOptionPrice"] = 2.0
    assert mapped(raw).lines[0].unit_price == Decimal("20.00")
    raw["OrderAmount"] = 52.2
    assert mapped(raw).lines[0].unit_price == Decimal("22.00")


def test_shipment_tax_counted_only_when_needed_to_reconcile() -> None:
    # UNCONFIRMED whether ShipmentTax is inside SalesTax.
    raw = fixture("order_5001.json")
    raw["ShipmentList"][0]["ShipmentTax"] = 0.4
    assert mapped(raw).tax == Decimal("3.20")
    raw["OrderAmount"] = 48.6
    assert mapped(raw).tax == Decimal("3.60")


def test_total_mismatch_keeps_store_amount_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    raw = fixture("order_5001.json") | {"OrderAmount": 99.99}
    with caplog.at_level(logging.WARNING, logger="connectors.threedcart"):
        order = mapped(raw)
    assert order.total == Decimal("99.99")
    assert "threedcart.order.total_mismatch" in caplog.text


def test_fractional_quantity_is_kept_in_total_and_options() -> None:
    raw = fixture("order_5001.json")
    raw["OrderItemList"][0]["ItemQuantity"] = 2.5
    raw["OrderAmount"] = 58.2
    order = mapped(raw)
    assert order.lines[0].line_total == Decimal("50.00")
    assert ("Quantity", "2.5") in order.lines[0].options
    assert order.computed_total == order.total


def test_blank_invoice_number_falls_back_to_order_id() -> None:
    assert mapped(fixture("order_5001.json") | {"InvoiceNumber": 0}).number == "5001"


def test_missing_last_update_falls_back_to_order_date() -> None:
    order = mapped(fixture("order_5001.json") | {"LastUpdate": ""})
    assert order.updated_at == order.placed_at


@pytest.mark.parametrize("bad", [{"OrderAmount": "n/a"}, {"OrderDate": "yesterday"}, {"OrderDate": None}])
def test_unreadable_money_or_dates_stop_the_order(bad: dict) -> None:
    with pytest.raises(ProtocolError):
        mapped(fixture("order_5001.json") | bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T14:05:09", datetime(2025, 3, 1, 14, 5, 9)),
        ("2025-03-01T14:05:09.1234567", datetime(2025, 3, 1, 14, 5, 9, 123456)),
        ("04/24/2024 00:05", datetime(2024, 4, 24, 0, 5)),
        ("9/13/2013", datetime(2013, 9, 13)),
        ("03/01/2025 02:05:09 PM", datetime(2025, 3, 1, 14, 5, 9)),
        ("", None),
        ("0001-01-01T00:00:00", None),
    ],
)
def test_store_dates_in_every_recorded_form(text: str, expected: datetime | None) -> None:
    assert parse_store_datetime(text) == expected


def test_date_with_offset_is_trusted_as_aware() -> None:
    assert parse_store_datetime("2025-03-01T14:05:09Z") == datetime(2025, 3, 1, 14, 5, 9, tzinfo=UTC)


def test_unknown_zone_is_a_settings_error() -> None:
    with pytest.raises(PermanentError) as caught:
        resolve_zone("Mars/Olympus")
    assert caught.value.code == "bad_timezone"


def test_item_description_html() -> None:
    name, options = split_item_description(
        "Mug &amp; Co<br><b>Colour:</b>&nbsp;Red<br><b>Size:</b>&nbsp;L - $2.00"
    )
    assert name == "Mug & Co"
    assert options == (("Colour", "Red"), ("Size", "L - $2.00"))
    assert split_item_description("Plain") == ("Plain", ())


def test_item_options_become_the_variant_code() -> None:
    assert variant_code_from_item_options(",162,168") == "162-168"
    assert variant_code_from_item_options("") == ""


def test_method_name_is_sanitised_for_3dcart() -> None:
    assert sanitise_method_name("UPS® Ground — 2-Day (Air) / #1") == "UPS Ground 2-Day (Air) 1"


def test_tracking_codes_split() -> None:
    assert split_tracking_codes("1Z1, 1Z2;1Z3") == ["1Z1", "1Z2", "1Z3"]
    assert split_tracking_codes(None) == []


def test_listings_from_products_with_variants() -> None:
    tshirt, mug = fixture("products.json")
    listings = map_listings(tshirt)
    assert [(item.sku, item.remote_id, item.remote_variant_id, item.quantity) for item in listings] == [
        ("TSHIRT", "11", "", 120),  # parent stock is a decimal (120.75), floored
        ("TSHIRT-S", "11", "5", 30),
        ("TSHIRT-M", "11", "6", 40),
    ]  # the XL row has no suffix SKU and cannot be matched
    assert listings[1].price == Decimal("20.00")
    (hidden,) = map_listings(mug)
    assert hidden.enabled is False
    assert hidden.price == Decimal("9.99")


def test_write_results_are_read_case_insensitively_with_string_status() -> None:
    results = parse_write_results([{"key": "CatalogID", "value": 11, "status": "206", "message": "x"}])
    assert results[0].ok
    assert results[0].value == "11"
    assert parse_write_results({"Key": "OrderID", "Value": "5", "Status": "", "Message": ""})[0].retryable


def test_store_time_zone_setting_agrees_or_warns() -> None:
    assert zone_from_store_setting("-5", "America/New_York") == ("America/New_York", "")
    assert zone_from_store_setting("-4", "America/New_York") == ("America/New_York", "")  # DST offset
    name, warning = zone_from_store_setting("-8", "America/New_York")
    assert name == "America/Los_Angeles"
    assert "does not match" in warning
    assert zone_from_store_setting("", "Europe/London") == ("Europe/London", "")
    assert zone_from_store_setting("3", "UTC")[0] == "Etc/GMT-3"


def test_a_bundle_component_line_is_named_after_its_product_not_the_bundle_marker() -> None:
    # The shape of 112 of 433 recorded lines.
    name, options = split_item_description(
        'Bundle Item: BUNDLE2<br>Girdle w/Hooks (Corset)<br><b>Size:</b>&nbsp;M 40" - 43"'
    )
    assert name == "Girdle w/Hooks (Corset)"
    assert options == (("Bundle", "BUNDLE2"), ("Size", 'M 40" - 43"'))
    assert split_item_description("T-Shirt<br><b>Size:</b>&nbsp;M") == ("T-Shirt", (("Size", "M"),))
    assert split_item_description("Bundle Item: BUNDLE3") == ("Bundle Item: BUNDLE3", ())
