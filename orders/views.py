"""Seller UI for orders: the list with filters, the order page with lines, totals and shipments,
adding a shipment, and retrying a failed one. (The channel page's "sync now" is
``channels.views.channel_sync_now``.)

Every row is looked up through the account of the request (another account's id is a 404), and
every change goes through :mod:`orders.shipments`.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role
from accounts.tenancy import account_for, actor_for, current_membership, has_role, require_role
from accounts.zones import is_time_zone
from channels.models import SalesChannel
from config.keyset import keyset_page
from orders.forms import OrderFilterForm, ShipmentForm
from orders.models import Order, Shipment, ShipmentState
from orders.shipments import record_shipment, retry_shipment, shipped_quantities, unshipped_quantities

PAGE_SIZE = 50

#: Order columns the list never shows: the store's payload and addresses can be kilobytes a row.
LIST_DEFERRED = ("raw", "billing_address", "shipping_address")
#: What the list reads of an order: everything else (the channel's name comes with it).
LIST_FIELDS = tuple(field.name for field in Order._meta.concrete_fields if field.name not in LIST_DEFERRED)


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "account": account_for(request),
        "membership": current_membership(request),
        "nav": "orders",
        "can_ship": has_role(request, Role.MEMBER),
        **extra,
    }


def _orders_of(request: HttpRequest) -> QuerySet[Order]:
    return Order.objects.filter(account=account_for(request))


def _filtered(queryset: QuerySet[Order], form: OrderFilterForm) -> QuerySet[Order]:
    """Apply every filter that is valid; an invalid one (a mistyped date, a channel that is not
    the account's) is shown as an error on its field and dropped alone, not with all the others."""
    if not form.is_bound:
        return queryset
    form.is_valid()
    data = form.cleaned_data
    if data.get("channel"):
        queryset = queryset.filter(channel_id=data["channel"])
    if data.get("status"):
        queryset = queryset.filter(Q(status_code=data["status"]) | Q(status_name__iexact=data["status"]))
    tz = timezone.get_current_timezone()
    if data.get("placed_from"):
        queryset = queryset.filter(placed_at__gte=datetime.combine(data["placed_from"], time.min, tzinfo=tz))
    if data.get("placed_to"):
        queryset = queryset.filter(placed_at__lte=datetime.combine(data["placed_to"], time.max, tzinfo=tz))
    if data.get("shipping"):
        queryset = queryset.filter(shipping_condition(data["shipping"]))
    if data.get("flag"):
        queryset = queryset.filter(**{data["flag"]: True})
    if data.get("q"):
        term = data["q"].strip()
        queryset = queryset.filter(
            Q(number__icontains=term) | Q(customer_name__icontains=term) | Q(customer_email__icontains=term)
        )
    return queryset


def shipping_condition(state: str) -> Q:
    """Orders by what Storelink's shipments cover: none, part, or everything.

    Pending and confirmed shipments count (a failed one shipped nothing the store knows of). A
    shipment records when it was made whether it left units unshipped (``is_partial``); an order
    with a shipment that left nothing is shipped, one whose shipments all left something is
    partially shipped. Orders the store itself marks shipped show in the status filter.
    """
    live = Shipment.objects.filter(
        order_id=OuterRef("pk"), state__in=[ShipmentState.PENDING, ShipmentState.CONFIRMED]
    )
    complete = live.filter(is_partial=False)
    if state == "unshipped":
        return ~Exists(live)
    if state == "partial":
        return Exists(live) & ~Exists(complete)
    if state == "shipped":
        return Exists(complete)
    return Q()


def _status_names(channel_rows: list[dict[str, Any]]) -> list[str]:
    """The status names the account's stores show, for the status filter's suggestions."""
    names = {
        str(status.get("name") or "").strip()
        for row in channel_rows
        for status in ((row["store_facts"] or {}).get("order_statuses") or [])
        if isinstance(status, dict)
    }
    return sorted(name for name in names if name)


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    """Newest orders first, 50 a page, with filters; pages follow a cursor, not a page number.

    The queries do not grow with the account: one for the channels (filter choices and status
    names), one for the page of orders with their channel's name. No count of all matching
    orders is made, and the channels' credentials are not read (nor decrypted) for the rows.
    """
    account = account_for(request)
    channel_rows = list(
        SalesChannel.objects.filter(account=account).order_by("name").values("pk", "name", "store_facts")
    )
    channels = [(str(row["pk"]), row["name"]) for row in channel_rows]
    form = OrderFilterForm(request.GET or None, channels=channels)
    orders = (
        _filtered(_orders_of(request), form).select_related("channel").only(*LIST_FIELDS, "channel__name")
    )
    page = keyset_page(
        orders,
        key="placed_at",
        descending=True,
        size=PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("after", None)
    query.pop("before", None)
    return render(
        request,
        "orders/list.html",
        _context(
            request,
            form=form,
            page=page,
            orders=page.rows,
            query=query.urlencode(),
            status_names=_status_names(channel_rows),
        ),
    )


def store_zone_for(order: Order) -> str | None:
    """The store's own zone, when the order's placed-at reads differently there than in the
    account's zone (the time a customer or the store's back office would quote); else ``None``.

    The zone the seller configured for the channel wins over the one the store reported.
    """
    channel = order.channel
    name = (channel.settings or {}).get("timezone") or (channel.store_facts or {}).get("timezone")
    if not is_time_zone(name):
        return None
    shown = timezone.localtime(order.placed_at)
    there = order.placed_at.astimezone(zoneinfo.ZoneInfo(name))
    if (there.utcoffset(), there.tzname()) == (shown.utcoffset(), shown.tzname()):
        return None
    return str(name)


@login_required
@require_http_methods(["GET", "POST"])
def order_detail(request: HttpRequest, order_id: Any) -> HttpResponse:
    order = get_object_or_404(_orders_of(request).select_related("channel", "account"), pk=order_id)
    remaining = unshipped_quantities(order)
    form = ShipmentForm(request.POST or None, order=order, remaining=remaining)
    if request.method == "POST":
        require_role(request, Role.MEMBER)
        if form.is_valid():
            try:
                record_shipment(
                    order,
                    actor=actor_for(request),
                    tracking_numbers=form.cleaned_data["tracking_numbers"],
                    carrier=form.cleaned_data.get("carrier", ""),
                    service=form.cleaned_data.get("service", ""),
                    lines=form.shipment_lines(),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    target = field if field in form.fields else None
                    for error in errors:
                        form.add_error(target, error)
            else:
                messages.success(request, "Shipment recorded; Storelink is confirming it to the store.")
                return redirect("orders:detail", order_id=order.pk)
    lines = list(order.lines.all())
    shipped = shipped_quantities(order)
    for line in lines:
        # Per line, what shipments (recorded or confirmed) cover and what is still to ship.
        line.shipped_units = min(line.quantity, shipped.get(line.external_line_id, 0))
        line.left_units = max(0, remaining.get(line.external_line_id, line.quantity))
    lines_total = sum((line.line_total for line in lines), start=order.total * 0)
    shipments = list(
        order.shipments.select_related("created_by", "created_by_api_key").order_by("-created_at")
    )
    names = {line.external_line_id: (line.sku, line.name) for line in lines}
    for shipment in shipments:
        # What a shipment holds, by SKU and name (the store's line ids mean nothing to a seller).
        shipment.items = [
            (item.get("quantity"), *names.get(str(item.get("external_line_id")), ("", "")))
            for item in shipment.lines or []
        ]
    context = _context(
        request,
        order=order,
        store_zone=store_zone_for(order),
        lines=lines,
        lines_total=lines_total,
        shipments=shipments,
        form=form,
        anything_left=any(qty > 0 for qty in remaining.values()) and not order.store_closed,
        raw_payload=json.dumps(order.raw, indent=2, sort_keys=True) if request.user.is_staff else None,
    )
    return render(request, "orders/detail.html", context)


@login_required
@require_POST
def shipment_retry(request: HttpRequest, shipment_id: Any) -> HttpResponse:
    shipment = get_object_or_404(
        Shipment.objects.filter(account=account_for(request)).select_related("account", "channel", "order"),
        pk=shipment_id,
    )
    require_role(request, Role.MEMBER)
    try:
        retry_shipment(shipment, actor=actor_for(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Shipment queued again for confirmation.")
    return redirect("orders:detail", order_id=shipment.order_id)
