"""X-Cart orders name both of their statuses with their list, and a closing payment status closes them.

An X-Cart order has a payment and a shipping status whose letters overlap (P = Paid and Processing),
and was shown as "New / Paid", which does not say which is which; it is now "Shipping: New ·
Payment: Paid". Cancelling an order in the X-Cart admin sets only its payment status (Cancelled), so
orders downloaded with a payment status of Declined, Cancelled or Refunded are closed as well.
Both statuses are read from the order as the store sent it (``raw``). Values are frozen here so the
migration means the same whenever it runs.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

SHIPPING = {
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
PAYMENT = {
    "Q": "Awaiting payment",
    "A": "Authorized",
    "PP": "Partially paid",
    "P": "Paid",
    "D": "Declined",
    "C": "Cancelled",
    "R": "Refunded",
}
CLOSING_PAYMENT = {"D", "C", "R"}


def _code(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("code")
    return str(value).strip() if isinstance(value, str | int) else ""


def forwards(apps: Any, schema_editor: Any) -> None:
    order_model = apps.get_model("orders", "Order")
    rows = (
        order_model.objects.filter(channel__platform="xcart")
        .exclude(status_name__startswith="Shipping: ")
        .only("pk", "raw", "status_code", "status_name", "store_closed")
    )
    changed = []
    for order in rows.iterator(chunk_size=500):
        raw = order.raw if isinstance(order.raw, dict) else {}
        shipping = _code(raw.get("shippingStatus", raw.get("shipping_status"))) or order.status_code
        payment = _code(raw.get("paymentStatus", raw.get("payment_status")))
        name = f"Shipping: {SHIPPING.get(shipping, shipping)}"
        if payment:
            name += f" · Payment: {PAYMENT.get(payment, payment)}"
        order.status_name = name[:100]
        order.store_closed = order.store_closed or payment in CLOSING_PAYMENT
        changed.append(order)
        if len(changed) >= 500:
            order_model.objects.bulk_update(changed, ["status_name", "store_closed"])
            changed = []
    if changed:
        order_model.objects.bulk_update(changed, ["status_name", "store_closed"])


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_store_closed")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
