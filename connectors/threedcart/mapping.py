"""3DCart wire format ↔ Storelink's canonical types.

Everything here is pure (no HTTP), so the awkward parts of the wire format can be tested directly:
store-local naive timestamps, money as JSON floats, SKUs that are either a product's ``SKUInfo.SKU``
or a variant's ``AdvancedOptionSufix``, option text hidden in ``ItemDescription`` HTML, and totals
that have to add up (items + shipping + the three sales taxes − discount = ``OrderAmount``).

Why one module of this size: it is the whole translation of 3DCart's order and product JSON,
whose totals must be checked against every part (items, shipping, three taxes, discount) in one
place.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import Address, Listing, Order, OrderLine, to_decimal
from connectors.errors import PermanentError, ProtocolError

log = logging.getLogger("connectors.threedcart")

#: "Not Completed" is an abandoned checkout, not an order; every integrator drops it.
NOT_COMPLETED_STATUS = "7"
#: 3DCart's built-in "Partial" status, used when only some shipments of an order went out.
PARTIAL_STATUS = "3"

#: Names of the built-in statuses, used only when the store's own ``/OrderStatus`` table is
#: unavailable. Ids 12+ are disputed between sources, so they are not guessed here.
DEFAULT_STATUS_NAMES: dict[str, str] = {
    "1": "New",
    "2": "Processing",
    "3": "Partial",
    "4": "Shipped",
    "5": "Cancel",
    "6": "Hold",
    "7": "Not Completed",
    "8": "Custom 1",
    "9": "Custom 2",
    "10": "Custom 3",
    "11": "Unpaid",
}

QUERY_DATETIME_FORMAT = "%m/%d/%Y %H:%M:%S"
QUERY_DATE_FORMAT = "%m/%d/%Y"
SHIPPED_DATE_FORMAT = "%m/%d/%Y"

# --------------------------------------------------------------------------------------------------
# Time: the store speaks naive local time; Storelink speaks aware UTC.
# --------------------------------------------------------------------------------------------------

_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%Y-%m-%d",
)


def resolve_zone(name: str) -> ZoneInfo:
    """The seller-configured store time zone; a bad name is a settings problem the seller can fix."""
    try:
        return ZoneInfo(str(name or "").strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise PermanentError(
            f"'{name}' is not a time zone Storelink knows. Use a name such as America/New_York in the "
            "channel's 'Store time zone' setting.",
            code="bad_timezone",
        ) from None


def parse_store_datetime(value: Any) -> datetime | None:
    """A 3DCart timestamp as a naive (store-local) datetime, or ``None`` when empty.

    Recorded responses use ISO-like strings without an offset (``2025-03-01T14:05:09``), the API's
    help pages render ``MM/dd/yyyy HH:mm``; both are read. A value that carries an offset anyway is
    returned aware and trusted as it is.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.startswith("0001-01-01"):
        return None
    if text.endswith("Z") or re.search(r"[+-]\d{2}:\d{2}$", text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
    # .NET may print 7 fractional digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+$", r"\1", text)
    for pattern in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)  # noqa: DTZ007 - store-local by contract
        except ValueError:
            continue
    raise ValueError(f"unrecognised 3DCart date {value!r}")


def local_to_utc(moment: datetime, zone: ZoneInfo) -> datetime:
    """A store-local wall-clock time as an aware UTC datetime.

    Two wall-clock readings do not name exactly one instant. An *ambiguous* time (the hour repeated
    when clocks go back) is read as its earlier instant, so a query window never starts late. A time
    that *does not exist* (inside the hour skipped when clocks go forward; a store without DST rules
    can still print one) is read as the instant the clocks jumped. Both choices keep the mapping
    monotonic, which the checkpoint logic relies on: a later store time never maps to an earlier
    instant.
    """
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    earlier = moment.replace(tzinfo=zone, fold=0).astimezone(UTC)
    later = moment.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if earlier == later:
        return earlier
    first, second = min(earlier, later), max(earlier, later)
    if first.astimezone(zone).replace(tzinfo=None) == moment:
        return first  # ambiguous: both instants exist, take the earlier one
    return _transition_between(first, second, zone)


def _transition_between(start: datetime, end: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (start, end] whose UTC offset differs from ``start``'s (binary search)."""
    offset = start.astimezone(zone).utcoffset()
    low, high = start, end
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high


def utc_to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    """An aware datetime as the store's naive wall-clock time."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: expected an aware UTC datetime")
    return moment.astimezone(zone).replace(tzinfo=None)


def format_query_datetime(local: datetime) -> str:
    """``MM/dd/yyyy HH:mm:ss``, the form 3DCart's ``datestart``/``lastupdatestart`` filters take."""
    return local.strftime(QUERY_DATETIME_FORMAT)


def format_query_date(window: str) -> str:
    """``MM/dd/yyyy`` of a ``MM/dd/yyyy HH:mm:ss`` window, the documented form of ``lastupdatestart``."""
    return datetime.strptime(window, QUERY_DATETIME_FORMAT).strftime(QUERY_DATE_FORMAT)  # noqa: DTZ007


def zone_from_store_setting(value: Any, configured: str) -> tuple[str, str]:
    """Interpret ``StoreStandards.StoreTimeZone`` (format UNCONFIRMED: an hour offset like ``-5`` in
    the docs' samples, maybe an IANA name) against the configured zone.

    Returns ``(zone_name, warning)``: the configured zone when it agrees with the store (for an
    hour offset: the zone's standard or daylight offset equals it), otherwise a suggestion and a
    warning the seller can act on. An empty warning means they agree or the store said nothing.
    """
    text = str(value or "").strip()
    if not text:
        return configured, ""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    else:
        if "/" in text or text == "UTC":
            if text == configured:
                return configured, ""
            return text, f"The store reports time zone {text}; the channel is set to {configured}."
    try:
        hours = Decimal(text.replace("GMT", "").replace("UTC", "").strip() or "0")
    except InvalidOperation:
        return configured, f"The store reports time zone '{text}', which Storelink cannot read."
    try:
        zone = ZoneInfo(configured)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is not None:
        year = datetime.now(UTC).year
        offsets = {
            Decimal((datetime(year, month, 15, 12, tzinfo=zone).utcoffset() or timedelta()).total_seconds())
            / 3600
            for month in (1, 7)
        }
        if hours in offsets:
            return configured, ""
    suggestion = _ZONE_FOR_OFFSET.get(hours)
    if suggestion is None and hours == hours.to_integral_value():
        # Etc/GMT signs are inverted on purpose (POSIX): Etc/GMT+5 is five hours *behind* UTC.
        whole = int(hours)
        suggestion = "UTC" if whole == 0 else f"Etc/GMT{'+' if whole < 0 else '-'}{abs(whole)}"
    suggestion = suggestion or configured
    return suggestion, (
        f"The store's clock is set to UTC{hours:+}; the channel's time zone {configured} does not match. "
        f"Check 'Store time zone' (for example {suggestion})."
    )


_ZONE_FOR_OFFSET: dict[Decimal, str] = {
    Decimal(-10): "Pacific/Honolulu",
    Decimal(-9): "America/Anchorage",
    Decimal(-8): "America/Los_Angeles",
    Decimal(-7): "America/Denver",
    Decimal(-6): "America/Chicago",
    Decimal(-5): "America/New_York",
    Decimal(-4): "America/Halifax",
    Decimal(0): "Europe/London",
    Decimal(1): "Europe/Paris",
    Decimal(10): "Australia/Sydney",
}

# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------


def parse_money(value: Any, places: int = 2) -> Decimal:
    """Money from a JSON number or numeric string (``48.2``, ``"48.20"``, ``34.989999999999995``).

    Booleans and anything non-numeric are refused: a price we cannot read must stop the order, not
    become zero.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a money amount: {value!r}")
    return to_decimal(value, places)


def parse_quantity(value: Any) -> Decimal:
    """A line quantity; 3DCart allows fractional quantities (sold by weight, for instance)."""
    if value is None or value == "" or isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a quantity: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a quantity: {value!r}")
    return number


def whole_units(value: Any) -> int:
    """A stock level as whole units, rounded *down*: never advertise half an item as one."""
    if value is None or value == "":
        return 0
    return int(parse_quantity(value).to_integral_value(rounding=ROUND_FLOOR))


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number 3DCart accepts (its API binds numbers, not strings)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


# --------------------------------------------------------------------------------------------------
# Write replies: [{"Key": "CatalogID", "Value": "11", "Status": "200", "Message": "..."}]
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    """One element of a 3DCart write reply. ``status`` is ``None`` when the store omitted it."""

    key: str
    value: str
    status: int | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """A per-item failure worth sending again (the store's trouble, not the item's)."""
        return self.status is None or self.status == 429 or self.status >= 500


def parse_write_results(body: Any) -> list[WriteResult]:
    """The Key/Value/Status/Message array of a PUT/POST reply (a lone object is accepted too)."""
    items = [body] if isinstance(body, Mapping) else body
    if not isinstance(items, list):
        raise ValueError("write reply is not a list")
    results = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError("write reply element is not an object")
        lowered = {str(k).lower(): v for k, v in item.items()}
        status_text = str(lowered.get("status", "")).strip()
        try:
            status = int(status_text) if status_text else None
        except ValueError:
            status = None
        results.append(
            WriteResult(
                key=str(lowered.get("key", "") or ""),
                value=str(lowered.get("value", "") if lowered.get("value") is not None else ""),
                status=status,
                message=str(lowered.get("message", "") or ""),
            )
        )
    return results


# --------------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------------

_OPTION_CHUNK = re.compile(r"<b>\s*(?P<name>[^<]*?)\s*:?\s*</b>\s*(?::\s*)?(?P<value>[^<]*)", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_BUNDLE_MARKER = re.compile(r"\s*bundle item\s*:\s*(?P<bundle>.*?)\s*", re.IGNORECASE)


def _text(value: Any) -> str:
    return html.unescape(_TAG.sub(" ", str(value or ""))).replace("\xa0", " ").strip()


def split_item_description(description: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Item name and ``(option, value)`` pairs from ``ItemDescription`` HTML (display only).

    ``T-Shirt<br><b>Size:</b>&nbsp;M`` → ``("T-Shirt", (("Size", "M"),))``.
    """
    raw = str(description or "")
    parts = re.split(r"<br\s*/?>", raw, maxsplit=1, flags=re.IGNORECASE)
    head, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    options = []
    bundle = _BUNDLE_MARKER.fullmatch(_text(head))
    if bundle and rest:
        # A bundle component: "Bundle Item: BUNDLE2<br>Product name<br><b>Size:</b>&nbsp;M".
        options.append(("Bundle", bundle.group("bundle")))
        parts = re.split(r"<br\s*/?>", rest, maxsplit=1, flags=re.IGNORECASE)
        head, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    name = " ".join(_text(head).split())
    for match in _OPTION_CHUNK.finditer(rest):
        option = " ".join(_text(match.group("name")).rstrip(":").split())
        value = " ".join(_text(match.group("value")).split())
        if option:
            options.append((option, value))
    return name, tuple(options)


def variant_code_from_item_options(value: Any) -> str:
    """``ItemOptions`` ``",162,168"`` → the variant's ``AdvancedOptionCode`` ``"162-168"``."""
    parts = [part.strip() for part in str(value or "").split(",") if part.strip()]
    return "-".join(parts)


def member(raw: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A member by its PascalCase name, tolerating other casing (ASP.NET serialisers vary)."""
    if name in raw:
        return raw[name]
    lowered = name.lower()
    for key, value in raw.items():
        if str(key).lower() == lowered:
            return value
    return default


def _money(raw: Mapping[str, Any], name: str, order_id: str) -> Decimal:
    try:
        return parse_money(member(raw, name))
    except ValueError:
        raise ProtocolError(
            f"3DCart order {order_id} has an unreadable {name}: {member(raw, name)!r}.",
            code="bad_money",
            raw=str(dict(raw))[:2000],
        ) from None


@dataclass(frozen=True)
class OrderTimes:
    placed_at: datetime
    updated_at: datetime


def order_times(raw: Mapping[str, Any], zone: ZoneInfo) -> OrderTimes:
    """``OrderDate`` and ``LastUpdate`` in UTC; ``LastUpdate`` falls back to ``OrderDate``."""
    order_id = str(member(raw, "OrderID", ""))
    try:
        placed = parse_store_datetime(member(raw, "OrderDate"))
        updated = parse_store_datetime(member(raw, "LastUpdate"))
    except ValueError as exc:
        raise ProtocolError(
            f"3DCart order {order_id} has a date Storelink cannot read ({exc}).", code="bad_date"
        ) from None
    if placed is None:
        raise ProtocolError(f"3DCart order {order_id} has no OrderDate.", code="bad_date")
    placed_utc = local_to_utc(placed, zone)
    updated_utc = local_to_utc(updated, zone) if updated is not None else placed_utc
    return OrderTimes(placed_utc, max(updated_utc, placed_utc))


def order_number(raw: Mapping[str, Any]) -> str:
    """What the seller sees: ``InvoiceNumberPrefix + InvoiceNumber``, else the ``OrderID``."""
    invoice = member(raw, "InvoiceNumber")
    if invoice in (None, "", 0, "0"):
        return str(member(raw, "OrderID", ""))
    return f"{member(raw, 'InvoiceNumberPrefix') or ''}{invoice}"


def _line(raw_item: Mapping[str, Any], order_id: str, include_option_price: bool) -> OrderLine:
    try:
        quantity = parse_quantity(member(raw_item, "ItemQuantity", 0))
    except ValueError:
        raise ProtocolError(
            f"3DCart order {order_id} has a line with an unreadable quantity.", code="bad_quantity"
        ) from None
    unit = _money(raw_item, "ItemUnitPrice", order_id)
    if include_option_price:
        unit += _money(raw_item, "ItemOptionPrice", order_id)
    name, options = split_item_description(member(raw_item, "ItemDescription"))
    whole = int(quantity.to_integral_value(rounding=ROUND_HALF_UP))
    if quantity != whole:
        # Canonical lines count whole units; keep the store's exact quantity visible and in the total.
        options = (*options, ("Quantity", f"{quantity.normalize()}"))
        whole = max(whole, 1)
    return OrderLine(
        external_line_id=str(member(raw_item, "ItemIndexID", "")),
        sku=str(member(raw_item, "ItemID", "") or "").strip(),
        name=name or str(member(raw_item, "ItemID", "") or ""),
        quantity=whole,
        unit_price=unit,
        line_total=(unit * quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        options=options,
        remote_product_id=str(member(raw_item, "CatalogID", "") or ""),
        remote_variant_id=variant_code_from_item_options(member(raw_item, "ItemOptions")),
    )


def _address(raw: Mapping[str, Any], prefix: str, phone_key: str, zip_key: str) -> Address:
    first = str(member(raw, f"{prefix}FirstName", "") or "").strip()
    last = str(member(raw, f"{prefix}LastName", "") or "").strip()
    return Address(
        name=" ".join(part for part in (first, last) if part),
        company=str(member(raw, f"{prefix}Company", "") or ""),
        line1=str(member(raw, f"{prefix}Address", "") or ""),
        line2=str(member(raw, f"{prefix}Address2", "") or ""),
        city=str(member(raw, f"{prefix}City", "") or ""),
        region=str(member(raw, f"{prefix}State", "") or ""),
        postcode=str(member(raw, zip_key, "") or ""),
        country_code=str(member(raw, f"{prefix}Country", "") or "").upper()[:2],
        phone=str(member(raw, phone_key, "") or ""),
        email=str(member(raw, f"{prefix}Email", "") or ""),
    )


def map_order(
    raw: Mapping[str, Any],
    *,
    zone: ZoneInfo,
    currency: str,
    status_names: Mapping[str, str],
    closed_codes: frozenset[str] = frozenset(),
) -> Order:
    """One 3DCart order as a canonical :class:`Order`.

    Totals are reconciled against ``OrderAmount``. Two details are UNCONFIRMED in the sources —
    whether ``ItemOptionPrice`` is already inside ``ItemUnitPrice`` and whether ``ShipmentTax`` is
    inside ``SalesTax`` — so each reading is tried and the one that adds up is used. When none
    does, the store's ``OrderAmount`` stays authoritative and the mismatch is logged.
    """
    order_id = str(member(raw, "OrderID", "")).strip()
    if not order_id:
        raise ProtocolError("3DCart sent an order without an OrderID.", code="bad_order", raw=str(raw)[:2000])
    items = member(raw, "OrderItemList") or []
    shipments = member(raw, "ShipmentList") or []
    if not isinstance(items, list) or not isinstance(shipments, list):
        raise ProtocolError(
            f"3DCart order {order_id} has malformed item or shipment lists.", code="bad_order"
        )
    times = order_times(raw, zone)
    shipping = sum((_money(s, "ShipmentCost", order_id) for s in shipments), Decimal("0.00"))
    shipment_tax = sum((_money(s, "ShipmentTax", order_id) for s in shipments), Decimal("0.00"))
    sales_tax = sum(
        (_money(raw, name, order_id) for name in ("SalesTax", "SalesTax2", "SalesTax3")), Decimal("0.00")
    )
    discount = _money(raw, "OrderDiscount", order_id)
    total = _money(raw, "OrderAmount", order_id)

    chosen: tuple[tuple[OrderLine, ...], Decimal] | None = None
    readings = [(True, False), (False, False), (True, True), (False, True)]
    for include_option_price, add_shipment_tax in readings:
        lines = tuple(_line(item, order_id, include_option_price) for item in items)
        tax = sales_tax + (shipment_tax if add_shipment_tax else Decimal("0"))
        computed = sum((line.line_total for line in lines), Decimal("0")) + shipping + tax - discount
        if chosen is None:
            chosen = (lines, tax)
        if abs(computed - total) <= Decimal("0.01"):
            chosen = (lines, tax)
            break
    else:
        log.warning(
            "threedcart.order.total_mismatch",
            extra={"order_id": order_id, "order_amount": str(total)},
        )
    assert chosen is not None
    lines, tax = chosen
    status_code = str(member(raw, "OrderStatusID", "")).strip()
    first_shipment = shipments[0] if shipments and isinstance(shipments[0], Mapping) else {}
    billing = _address(raw, "Billing", "BillingPhoneNumber", "BillingZipCode")
    shipping_address = _address(first_shipment, "Shipment", "ShipmentPhone", "ShipmentZipCode")
    return Order(
        external_id=order_id,
        number=order_number(raw),
        placed_at=times.placed_at,
        updated_at=times.updated_at,
        status_code=status_code,
        status_name=status_names.get(status_code) or DEFAULT_STATUS_NAMES.get(status_code, status_code),
        currency=currency,
        subtotal=sum((line.line_total for line in lines), Decimal("0.00")),
        shipping=shipping,
        tax=tax,
        discount=discount,
        total=total,
        lines=lines,
        prices_include_tax=False,
        customer_email=billing.email,
        customer_name=billing.name,
        billing_address=billing,
        shipping_address=shipping_address,
        shipping_method=str(member(first_shipment, "ShipmentMethodName", "") or ""),
        closed=status_code in closed_codes,
        raw=dict(raw),
    )


# --------------------------------------------------------------------------------------------------
# Shipments
# --------------------------------------------------------------------------------------------------

_METHOD_NAME_DISALLOWED = re.compile(r"[^A-Za-z0-9 .()\-]")


def sanitise_method_name(text: str) -> str:
    """3DCart answers 400 to a ``ShipmentMethodName`` with anything but ``[A-Za-z0-9 .()-]``."""
    cleaned = _METHOD_NAME_DISALLOWED.sub(" ", text or "")
    return " ".join(cleaned.split())[:150]


def split_tracking_codes(value: Any) -> list[str]:
    """``ShipmentTrackingCode`` holds one code, or several that Storelink joined with commas."""
    return [part.strip() for part in re.split(r"[,;\s]+", str(value or "")) if part.strip()]


def join_tracking_codes(codes: Iterable[str]) -> str:
    return ",".join(dict.fromkeys(code.strip() for code in codes if code.strip()))


# --------------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------------


def map_listings(product: Mapping[str, Any]) -> list[Listing]:
    """A 3DCart product as listings: the parent (``SKUInfo``) and each variant with a suffix SKU.

    Variant rows without ``AdvancedOptionSufix`` have no SKU of their own and cannot be matched to
    a product master, so they are left out. Parent stock is a decimal on 3DCart and is floored.
    """
    sku_info = member(product, "SKUInfo")
    if not isinstance(sku_info, Mapping):
        sku_info = product  # GET /Products/skuinfo returns the SKUInfo members flat
    catalog_id = str(member(sku_info, "CatalogID", "") or "").strip()
    if not catalog_id:
        raise ProtocolError("3DCart sent a product without a CatalogID.", code="bad_product")
    enabled = not bool(member(product, "Hide", False))
    name = str(member(sku_info, "Name", "") or "")
    listings: list[Listing] = []
    sku = str(member(sku_info, "SKU", "") or "").strip()
    try:
        if sku:
            listings.append(
                Listing(
                    sku=sku,
                    remote_id=catalog_id,
                    quantity=whole_units(member(sku_info, "Stock")),
                    price=parse_money(member(sku_info, "Price")),
                    name=name,
                    enabled=enabled,
                )
            )
        for option in member(product, "AdvancedOptionList") or []:
            suffix = str(member(option, "AdvancedOptionSufix", "") or "").strip()
            code = str(member(option, "AdvancedOptionCode", "") or "").strip()
            if not suffix or not code:
                continue
            option_name = str(member(option, "AdvancedOptionName", "") or "")
            listings.append(
                Listing(
                    sku=suffix,
                    remote_id=catalog_id,
                    remote_variant_id=code,
                    quantity=whole_units(member(option, "AdvancedOptionStock")),
                    price=parse_money(member(option, "AdvancedOptionPrice")),
                    name=f"{name} ({option_name})" if option_name else name,
                    enabled=enabled,
                )
            )
    except ValueError as exc:
        raise ProtocolError(
            f"3DCart product {catalog_id} has an unreadable number ({exc}).", code="bad_product"
        ) from None
    return listings


def status_names_from_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``GET /OrderStatus`` rows as id → the seller's label (``StatusText``, else the definition)."""
    names: dict[str, str] = {}
    for row in rows:
        code = str(member(row, "OrderStatusID", "")).strip()
        if code:
            names[code] = str(member(row, "StatusText") or member(row, "StatusDefinition") or code)
    return names
