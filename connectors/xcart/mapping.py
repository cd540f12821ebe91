"""X-Cart wire shapes ↔ Storelink's canonical types.

Two order shapes come in: the add-on's *complex* order (5.x) and the built-in API's order (5.5+).
Both carry money as JSON numbers with float noise (``34.989999999999995``), so every amount goes
through ``Decimal(str(x))`` and is rounded to cents. The complex order's own ``subtotal`` is
``total − shippingCost`` (after the discount), not the items' subtotal, so the canonical subtotal is
recomputed from the lines, and taxes are classified as included or added on top by checking which
reading makes the store's total add up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.base import Address, Listing, Order, OrderLine, StoreStatus, to_decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

#: X-Cart's default status names (sql/xlite_data.yaml); the add-on lists codes without names.
SHIPPING_STATUS_NAMES: dict[str, str] = {
    "N": "New",
    "P": "Processing",
    "S": "Shipped",
    "D": "Delivered",
    "WND": "Will not deliver",
    "R": "Returned",
    "WFA": "Waiting for approve",
    "NBA": "New/Backorder",
    "NF": "Not finished",
}
PAYMENT_STATUS_NAMES: dict[str, str] = {
    "Q": "Awaiting payment",
    "A": "Authorized",
    "PP": "Partially paid",
    "P": "Paid",
    "D": "Declined",
    "C": "Cancelled",
    "R": "Refunded",
}
#: Orders in this shipping status were never placed (an add-on's "not finished" checkout).
NOT_FINISHED = "NF"
#: The two lists reuse letters (``P`` is Paid *and* Processing, ``D`` Declined *and* Delivered, ``R``
#: Refunded *and* Returned), so a status is always a (list, code) pair: these are the list names.
PAYMENT = "payment"
SHIPPING = "shipping"
#: Payment statuses that finish an order: Declined, Cancelled, Refunded. Cancelling an order in the
#: X-Cart admin sets its *payment* status to Cancelled and leaves the shipping status at New.
CLOSING_PAYMENT: frozenset[str] = frozenset({"D", "C", "R"})
#: Shipping statuses that finish an order: Shipped, Delivered, Will not deliver, Returned, and the
#: "not finished" checkouts that were never placed.
CLOSING_SHIPPING: frozenset[str] = frozenset({"S", "D", "WND", "R", NOT_FINISHED})
#: Of those, the ones where the goods went out: a shipment for such an order only adds tracking.
FULFILLED_SHIPPING: frozenset[str] = frozenset({"S", "D"})


class MappingError(ValueError):
    """The store sent an order or product we cannot read; the connector turns it into ProtocolError."""


def money(value: Any) -> Decimal:
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise MappingError(str(exc)) from None


def whole_number(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise MappingError(f"{what} is not a number: {value!r}")
    try:
        return int(Decimal(str(value)))
    except Exception:
        raise MappingError(f"{what} is not a number: {value!r}") from None


def parse_time(value: Any) -> datetime:
    """ISO 8601 (complex and 5.5 orders) or a unix timestamp (default schema) → aware UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MappingError(f"not a date: {value!r}") from None
        if parsed.tzinfo is None:
            raise MappingError(f"date without a time zone: {value!r}")
        return parsed.astimezone(UTC)
    raise MappingError(f"not a date: {value!r}")


def status_list(rows: Any, group: str) -> list[StoreStatus]:
    """``order-status-*`` rows (``[{"id":1,"code":"N","position":10}, …]``) sorted by position.

    ``group`` is :data:`PAYMENT` or :data:`SHIPPING`; each status carries it and whether it closes an
    order. The add-on lists codes without names, so X-Cart's default names are used where known
    (a custom status shows its code) and a custom status never closes an order: holding stock for
    an order that may still ship is the safer mistake.
    """
    names = PAYMENT_STATUS_NAMES if group == PAYMENT else SHIPPING_STATUS_NAMES
    closing = CLOSING_PAYMENT if group == PAYMENT else CLOSING_SHIPPING
    what = f"{group} status"
    if not isinstance(rows, list):
        raise MappingError(f"the {what} list is not a list")
    parsed: list[tuple[int, StoreStatus]] = []
    for row in rows:
        if not isinstance(row, Mapping) or not isinstance(row.get("code"), str) or not row["code"]:
            raise MappingError(f"a {what} row has no code: {row!r}")
        code = str(row["code"])
        position_value = row.get("position")
        position = position_value if isinstance(position_value, int) else 0
        parsed.append((position, StoreStatus(code, names.get(code, code), code in closing, group)))
    return [status for _, status in sorted(parsed, key=lambda item: item[0])]


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _address(info: Any, email: str = "") -> Address:
    if not isinstance(info, Mapping):
        return Address(email=email)
    name = " ".join(part for part in (_text(info.get("firstname")), _text(info.get("lastname"))) if part)
    return Address(
        name=name,
        company=_text(info.get("company")),
        line1=_text(info.get("address") or info.get("street")),
        line2=_text(info.get("address2")),
        city=_text(info.get("city")),
        region=_text(info.get("state_name") or info.get("state")),
        postcode=_text(info.get("zipcode")),
        country_code=_text(info.get("country") or info.get("country_code")).upper()[:2],
        phone=_text(info.get("phone")),
        email=email,
    )


def _options(attributes: Any) -> tuple[tuple[str, str], ...]:
    # empty attributes arrive as [] (PHP's empty array), filled ones as {name: value}
    if isinstance(attributes, Mapping):
        return tuple((str(k), _text(v)) for k, v in attributes.items())
    return ()


def _reconcile(
    total: Decimal, lines: Decimal, shipping: Decimal, discount: Decimal, tax: Decimal, fallback_incl: bool
) -> bool:
    """Were the order's taxes included in the prices? Decided by which reading adds up to the total.

    ``discount`` is positive here. Sales-tax stores add tax on top (total = lines + shipping + tax −
    discount); VAT stores already have it in the prices (total = lines + shipping − discount).
    When neither adds up ``fallback_incl`` decides: the basis the connector declares for X-Cart's
    price field.
    """
    added_on_top = total - (lines + shipping - discount)
    if tax and abs(added_on_top - tax) <= CENT:
        return False
    if tax and abs(added_on_top) <= CENT:
        return True
    return fallback_incl if tax else False


def order_from_complex(
    data: Mapping[str, Any],
    *,
    prices_include_tax: bool,
    default_currency: str,
) -> Order:
    """A complex-schema order (``_schema=complex&_path=order``) as a canonical :class:`Order`.

    ``discountValue`` is negative on the wire; canonical discount is positive. Surcharges that are
    neither tax, discount nor shipping (``otherSurcharges``, e.g. handling) are counted as shipping:
    the canonical order has no other slot for them and lines + shipping + tax − discount must still
    equal the total the customer paid.
    """
    if not isinstance(data, Mapping) or "orderId" not in data:
        raise MappingError("an order without orderId")
    order_id = str(whole_number(data.get("orderId"), "orderId"))
    items = data.get("items") or []
    if not isinstance(items, list):
        raise MappingError(f"order {order_id}: items is not a list")
    lines: list[OrderLine] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise MappingError(f"order {order_id}: an item is not an object")
        quantity = whole_number(item.get("quantity", item.get("amount", 0)), "quantity")
        unit_price = money(item.get("price"))
        line_total = (
            money(item["subtotal"]) if item.get("subtotal") is not None else money(unit_price * quantity)
        )
        product_id = item.get("productId")
        lines.append(
            OrderLine(
                external_line_id=str(position),
                sku=_text(item.get("sku")),
                name=_text(item.get("name")),
                quantity=quantity,
                unit_price=unit_price,
                line_total=line_total,
                options=_options(item.get("attributes")),
                remote_product_id=str(product_id) if product_id not in (None, "") else "",
            )
        )
    lines_total = sum((line.line_total for line in lines), ZERO)
    total = money(data.get("total"))
    shipping = money(data.get("shippingCost"))
    others = data.get("otherSurcharges") or {}
    if isinstance(others, Mapping):
        for surcharge in others.values():
            value = surcharge.get("value") if isinstance(surcharge, Mapping) else surcharge
            shipping += money(value)
    tax = money(data.get("taxAmount"))
    discount = abs(money(data.get("discountValue")))
    included = _reconcile(total, lines_total, shipping, discount, tax, prices_include_tax)

    customer_value = data.get("customerInfo")

    customer = customer_value if isinstance(customer_value, Mapping) else {}
    email = _text(customer.get("email") or customer.get("login"))
    billing = _address(data.get("billingInfo"), email)
    shipping_address = _address(data.get("shippingInfo"), email)
    customer_name = billing.name or " ".join(
        p for p in (_text(customer.get("firstname")), _text(customer.get("lastname"))) if p
    )
    placed_at = parse_time(data.get("orderDate"))
    updated_raw = data.get("updateDate")
    updated_at = parse_time(updated_raw) if updated_raw else placed_at
    shipping_code = _text(data.get("shippingStatus"))
    payment_code = _text(data.get("paymentStatus"))
    number = _text(data.get("orderNumber")) or order_id
    return Order(
        external_id=order_id,
        number=number,
        placed_at=placed_at,
        updated_at=max(updated_at, placed_at),
        status_code=shipping_code,
        status_name=status_name(shipping_code, payment_code),
        closed=is_closed(payment_code, shipping_code),
        currency=_text(data.get("currency")) or default_currency,
        subtotal=lines_total,
        shipping=shipping,
        tax=tax,
        discount=discount,
        total=total,
        lines=tuple(lines),
        prices_include_tax=included,
        customer_email=email,
        customer_name=customer_name,
        billing_address=billing,
        shipping_address=shipping_address,
        shipping_method=_text(data.get("shippingMethod")),
        raw=dict(data),
    )


def is_closed(payment_code: str, shipping_code: str) -> bool:
    """An order is finished when *either* list says so: a cancelled payment with shipping still at
    New holds no stock, and neither does a shipped order."""
    return payment_code in CLOSING_PAYMENT or shipping_code in CLOSING_SHIPPING


def status_name(shipping_code: str, payment_code: str) -> str:
    """Both statuses, each named with its list: ``P`` alone could be Paid or Processing.

    The fulfilment state comes first (that is what "processed" changes), payment after it.
    """
    shipping = f"Shipping: {SHIPPING_STATUS_NAMES.get(shipping_code, shipping_code)}"
    if not payment_code:
        return shipping
    return f"{shipping} · Payment: {PAYMENT_STATUS_NAMES.get(payment_code, payment_code)}"


def order_from_builtin(
    data: Mapping[str, Any],
    *,
    prices_include_tax: bool,
    default_currency: str,
) -> Order:
    """A 5.5+ ``/api/orders`` item as a canonical :class:`Order`.

    5.5 lists surcharges with their ``include`` flag, so taxes are classified from the flags; only
    surcharges added on top (``include`` false) count towards shipping and discount, as in X-Cart's
    own totals.
    """
    if not isinstance(data, Mapping) or "id" not in data:
        raise MappingError("an order without id")
    order_id = str(whole_number(data.get("id"), "id"))
    items = data.get("items") or []
    if not isinstance(items, list):
        raise MappingError(f"order {order_id}: items is not a list")
    lines: list[OrderLine] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise MappingError(f"order {order_id}: an item is not an object")
        quantity = whole_number(item.get("amount", 0), "amount")
        unit_price = money(item.get("price"))
        product_id = item.get("product_id")
        lines.append(
            OrderLine(
                external_line_id=str(item.get("id") or position),
                sku=_text(item.get("sku")),
                name=_text(item.get("name")),
                quantity=quantity,
                unit_price=unit_price,
                line_total=money(Decimal(str(item.get("price") or 0)) * quantity),
                remote_product_id=str(product_id) if product_id not in (None, "") else "",
            )
        )
    lines_total = sum((line.line_total for line in lines), ZERO)
    shipping = tax = discount = ZERO
    tax_included = tax_on_top = False
    surcharges = data.get("surcharges") or []
    for surcharge in surcharges if isinstance(surcharges, list) else []:
        if not isinstance(surcharge, Mapping):
            continue
        kind = _text(surcharge.get("type")).lower()
        value = money(surcharge.get("value"))
        included = bool(surcharge.get("include"))
        if kind == "tax":
            tax += value
            tax_included = tax_included or included
            tax_on_top = tax_on_top or not included
        elif included:
            continue
        elif kind == "discount":
            discount += abs(value)
        else:
            shipping += value
    email = _text(data.get("email"))
    billing = _address(data.get("billing_address"), email)
    shipping_address = _address(data.get("shipping_address"), email)
    placed_at = parse_time(data.get("create_date") or data.get("date"))
    updated_at = parse_time(data["update_date"]) if data.get("update_date") else placed_at
    shipping_status_value = data.get("shipping_status")
    shipping_status = shipping_status_value if isinstance(shipping_status_value, Mapping) else {}
    payment_status_value = data.get("payment_status")
    payment_status = payment_status_value if isinstance(payment_status_value, Mapping) else {}
    shipping_code = _text(shipping_status.get("code"))
    payment_code = _text(payment_status.get("code"))
    if tax_included or tax_on_top:
        include = tax_included and not tax_on_top
    else:
        include = prices_include_tax if tax else False
    return Order(
        external_id=order_id,
        number=_text(data.get("order_number")) or order_id,
        placed_at=placed_at,
        updated_at=max(updated_at, placed_at),
        status_code=shipping_code,
        status_name=status_name(shipping_code, payment_code),
        closed=is_closed(payment_code, shipping_code),
        currency=_text(data.get("currency")) or default_currency,
        subtotal=lines_total,
        shipping=shipping,
        tax=tax,
        discount=discount,
        total=money(data.get("total")),
        lines=tuple(lines),
        prices_include_tax=include,
        customer_email=email,
        customer_name=billing.name,
        billing_address=billing,
        shipping_address=shipping_address,
        shipping_method=_text(data.get("shipping_method_name")),
        raw=dict(data),
    )


def tracking_values(order: Mapping[str, Any]) -> list[str]:
    """Tracking numbers on a default-schema (``trackingNumbers``) or 5.5 (``tracking_numbers``) order."""
    rows = order.get("trackingNumbers")
    if rows is None:
        rows = order.get("tracking_numbers")
    values: list[str] = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping) and _text(row.get("value")):
            values.append(_text(row.get("value")))
    return values


def status_code_of(value: Any) -> str:
    """A status association (``{"id":3,"code":"S",…}``) or a bare code → the code."""
    if isinstance(value, Mapping):
        return _text(value.get("code"))
    return _text(value)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def product_listing(row: Mapping[str, Any], *, id_key: str = "product_id") -> Listing:
    """A default-schema (5.x) or 5.5 product row as a listing of its own SKU."""
    product_id = row.get(id_key, row.get("id"))
    if product_id in (None, ""):
        raise MappingError("a product without an id")
    return Listing(
        sku=_text(row.get("sku")),
        remote_id=str(whole_number(product_id, "product id")),
        quantity=max(0, whole_number(row.get("amount") or 0, "amount")),
        price=money(row.get("price")),
        name=_text(row.get("name")),
        enabled=_flag(row.get("enabled", True)),
    )


def variant_listing(row: Mapping[str, Any], product: Listing, *, snake: bool = False) -> Listing:
    """A variant with its *effective* stock and price: the product's when it uses the defaults."""
    default_amount = _flag(row.get("default_amount" if snake else "defaultAmount"))
    default_price = _flag(row.get("default_price" if snake else "defaultPrice"))
    variant_id = row.get("id")
    if variant_id in (None, ""):
        raise MappingError("a variant without an id")
    return Listing(
        sku=_text(row.get("sku")),
        remote_id=product.remote_id,
        remote_variant_id=str(whole_number(variant_id, "variant id")),
        quantity=product.quantity
        if default_amount
        else max(0, whole_number(row.get("amount") or 0, "amount")),
        price=product.price if default_price else money(row.get("price")),
        name=product.name,
        enabled=product.enabled,
    )
