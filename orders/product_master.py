"""Where orders meet the product master (the inventory app), kept in one place.

Whether an account keeps products in Storelink at all; re-flagging ``unknown_sku`` on orders when
the master changes (the receiver of :data:`channels.events.product_master_changed`, which the
inventory app sends); and announcing which SKUs' reservations moved when orders were created,
changed, shipped or closed (an announced fact inventory subscribes to). The inventory app's models
are reached by name, so orders import nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from channels.events import announce_reservations_moved
from orders.models import Order, OrderLine


def announce_reservations_changed(account_id: Any, skus: Iterable[str]) -> None:
    """New, changed or shipped orders move availability of these SKUs on every channel.

    Call inside the transaction that changed the orders: the inventory app, which subscribes to
    :data:`channels.events.reservations_moved`, counts the change on the listings with it, and the
    stock jobs go out after commit.
    """
    announce_reservations_moved(account_id, skus)


def order_skus(order_ids: Iterable[Any]) -> set[str]:
    return set(OrderLine.objects.filter(order_id__in=list(order_ids)).values_list("sku", flat=True))


def product_model() -> Any | None:
    """The inventory app's Product model, if that app has landed (it is built in parallel)."""
    try:
        return apps.get_model("inventory", "Product")
    except LookupError:
        return None


def uses_product_master(account_id: Any) -> bool:
    """Whether the account keeps products in Storelink at all (else "unknown SKU" would flag
    every order of a seller who only uses Storelink for orders and shipments)."""
    product = product_model()
    return product is not None and product.objects.filter(account_id=account_id).exists()


def on_product_master_changed(
    sender: Any, *, account_id: Any, skus: Iterable[str], everything: bool = False, **kwargs: Any
) -> int:
    """Receiver of :data:`channels.events.product_master_changed` (connected in ``OrdersConfig.ready``)."""
    return product_master_changed(account_id, skus, everything=everything)


def product_master_changed(account_id: Any, skus: Iterable[str], *, everything: bool = False) -> int:
    """Re-evaluate ``unknown_sku`` on the account's orders after products were added, renamed or
    deleted; returns how many orders changed. One UPDATE, whatever the number of orders.

    The flag says whether an order has a line the product master does not know *now*, so it must
    move with the master and not keep what was true when the order was last written. Only orders
    with a line of one of ``skus`` can change, unless ``everything`` (the master was empty before:
    every order is judged for the first time). An account without any product keeps no master, so
    no SKU is unknown to it and its flags are cleared.
    """
    product = product_model()
    if product is None:
        return 0
    orders = Order.objects.filter(account_id=account_id)
    now = timezone.now()
    if not product.objects.filter(account_id=account_id).exists():
        return orders.filter(unknown_sku=True).update(unknown_sku=False, updated_at=now)
    if not everything:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return 0
        orders = orders.filter(
            pk__in=OrderLine.objects.filter(account_id=account_id, sku__in=wanted).values("order_id")
        )
    unknown_line = OrderLine.objects.filter(order_id=OuterRef("pk")).filter(
        Q(sku="")
        | ~Exists(product.objects.filter(account_id=OuterRef(OuterRef("account_id")), sku=OuterRef("sku")))
    )
    # Only rows whose flag really moves are written (and their updated_at moves for API readers).
    return (
        orders.exclude(unknown_sku=Exists(unknown_line))
        .order_by()
        .update(unknown_sku=Exists(unknown_line), updated_at=now)
    )
