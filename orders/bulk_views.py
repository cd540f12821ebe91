"""Seller UI for work on many orders at once: the to-ship queue (pick orders, record their
shipments in one go), a warehouse's shipment CSV (preview, per-row errors, then apply), and the
orders list as a CSV download.

Every shipment goes through :mod:`orders.shipment_batch`, which records it with the same service
as the API and the order page, all or nothing. Every order is looked up through the account of the
request: another account's order number is simply "not found".
"""

from __future__ import annotations

from datetime import timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Role
from accounts.tenancy import account_for, actor_for, current_membership, has_role, require_role
from channels.models import SalesChannel
from config import csvio
from connectors.base import currency_places
from orders import shipment_batch
from orders.models import Order, OrderLine, ShipmentState

PAGE_SIZE = 100

AGE_CHOICES = [
    ("", "Any age"),
    ("1", "Older than 1 day"),
    ("2", "Older than 2 days"),
    ("3", "Older than 3 days"),
    ("7", "Older than a week"),
]
PARTIAL_CHOICES = [
    ("", "Shipped in part or not at all"),
    ("partial", "Partially shipped"),
    ("none", "Nothing shipped yet"),
]

#: Units of an order that pending or confirmed shipments cover (their ``lines`` JSON summed).
_SHIPPED_UNITS_SQL = (
    "SELECT COALESCE(SUM((item->>'quantity')::int), 0) FROM orders_shipment s "
    "CROSS JOIN LATERAL jsonb_array_elements("
    "CASE WHEN jsonb_typeof(s.lines) = 'array' THEN s.lines ELSE '[]'::jsonb END) item "
    "WHERE s.order_id = orders_order.id AND s.state IN (%s, %s)"
)


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "account": account_for(request),
        "membership": current_membership(request),
        "nav": "to_ship",
        "can_ship": has_role(request, Role.MEMBER),
        **extra,
    }


def _channel_choices(request: HttpRequest) -> list[tuple[str, str]]:
    channels = SalesChannel.objects.live().filter(account=account_for(request)).order_by("name")
    return [(str(pk), name) for pk, name in channels.values_list("pk", "name")]


class QueueFilterForm(forms.Form):
    channel = forms.ChoiceField(required=False, label="Channel")
    age = forms.ChoiceField(required=False, label="Age", choices=AGE_CHOICES)
    shipped = forms.ChoiceField(required=False, label="Shipped so far", choices=PARTIAL_CHOICES)

    def __init__(self, *args: Any, channels: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", "All channels"), *channels]


def to_ship_orders(account: Any) -> QuerySet[Order]:
    """Orders that need shipping: open (on a live channel, not closed on the store, not at the
    channel's "shipped" status) with units no pending or confirmed shipment covers; annotated with
    ``units`` and ``shipped_units``, oldest first."""
    units = (
        OrderLine.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    processed = Coalesce(KeyTextTransform("processed_status", "channel__settings"), Value(""))
    return (
        Order.objects.filter(account=account, channel__removed_at__isnull=True, store_closed=False)
        .exclude(status_code=processed)
        .annotate(
            units=Coalesce(Subquery(units, output_field=IntegerField()), 0),
            shipped_units=RawSQL(  # noqa: S611 (constant SQL, states passed as parameters)
                _SHIPPED_UNITS_SQL,
                (ShipmentState.PENDING, ShipmentState.CONFIRMED),
                output_field=IntegerField(),
            ),
        )
        .filter(units__gt=Coalesce("shipped_units", 0))
        .select_related("channel")
        .order_by("placed_at", "id")
    )


def _queue_filtered(queryset: QuerySet[Order], form: QueueFilterForm) -> QuerySet[Order]:
    if not form.is_bound:
        return queryset
    form.is_valid()
    data = form.cleaned_data
    if data.get("channel"):
        queryset = queryset.filter(channel_id=data["channel"])
    if data.get("age"):
        queryset = queryset.filter(placed_at__lte=timezone.now() - timedelta(days=int(data["age"])))
    if data.get("shipped") == "partial":
        queryset = queryset.filter(shipped_units__gt=0)
    elif data.get("shipped") == "none":
        queryset = queryset.filter(shipped_units=0)
    return queryset


@login_required
@require_http_methods(["GET", "POST"])
def to_ship(request: HttpRequest) -> HttpResponse:
    """The queue; a POST records a shipment of every unit left for each order ticked, with the
    carrier and tracking number typed on its row (or the carrier chosen for all)."""
    account = account_for(request)
    form = QueueFilterForm(request.GET or None, channels=_channel_choices(request))
    orders = _queue_filtered(to_ship_orders(account), form)
    entered: dict[str, dict[str, str]] = {}
    errors: dict[str, list[str]] = {}
    general_error = ""
    if request.method == "POST":
        require_role(request, Role.MEMBER)
        default_carrier = request.POST.get("default_carrier", "").strip()
        picked = [value for value in request.POST.getlist("order") if value]
        rows = []
        for index, order_id in enumerate(picked[:PAGE_SIZE], start=1):
            entered[order_id] = {
                "carrier": request.POST.get(f"carrier-{order_id}", "").strip(),
                "tracking": request.POST.get(f"tracking-{order_id}", "").strip(),
            }
            rows.append(
                shipment_batch.BatchRow(
                    line=index,
                    order_number=request.POST.get(f"number-{order_id}", "")[:64],
                    carrier=entered[order_id]["carrier"] or default_carrier,
                    tracking=entered[order_id]["tracking"],
                    order_id=_uuid_or_none(order_id),
                )
            )
        result = shipment_batch.run_batch(account, rows, actor=actor_for(request), apply=True)
        if result.applied:
            messages.success(request, _recorded_message(result))
            return redirect(request.get_full_path())
        by_line = {index: order_id for index, order_id in enumerate(picked, start=1)}
        for error in result.errors:
            if error.line in by_line:
                errors.setdefault(by_line[error.line], []).append(error.message)
            else:
                general_error = error.message
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    for order in page.object_list:
        order.left_units = order.units - (order.shipped_units or 0)
        order.entered = entered.get(str(order.pk), {})
        order.errors = errors.get(str(order.pk), [])
        order.picked = str(order.pk) in entered
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "orders/to_ship.html",
        _context(
            request,
            form=form,
            page=page,
            orders=page.object_list,
            query=query.urlencode(),
            general_error=general_error,
            had_errors=bool(errors or general_error),
            default_carrier=request.POST.get("default_carrier", "") if request.method == "POST" else "",
            # Its own ids: the queue's filter form has a "channel" field too.
            csv_form=ShipmentCsvForm(channels=_channel_choices(request), auto_id="csv_%s"),
        ),
    )


def _uuid_or_none(value: str) -> Any:
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # an id that names no order: reported as not found


def _recorded_message(result: shipment_batch.BatchResult) -> str:
    new, repeated = result.new_count, result.repeated_count
    text = f"Recorded {new} shipment{'s' if new != 1 else ''}; Storelink is confirming them to the stores."
    if repeated:
        text += f" {repeated} had already been recorded and were left as they were."
    return text


class ShipmentCsvForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="Columns: order number, carrier, tracking number, and optionally SKU and quantity "
        f"(one row per line shipped). A header row is optional; a channel column is allowed. At most "
        f"{shipment_batch.MAX_ROWS} rows.",
    )
    csv = forms.CharField(
        required=False,
        label="Or paste the rows",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )
    channel = forms.ChoiceField(
        required=False,
        label="Channel",
        help_text="Only needed when the same order number exists on several channels.",
    )

    def __init__(self, *args: Any, channels: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", "Any channel"), *channels]


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def shipment_csv(request: HttpRequest) -> HttpResponse:
    """Upload or paste a shipment CSV; refused before reading when it is too large."""
    if request.method == "POST" and csvio.too_large(request):
        form = ShipmentCsvForm(channels=_channel_choices(request))
        return render(
            request,
            "orders/shipment_csv.html",
            _context(request, form=form, file_error=csvio.too_large_message()),
            status=413,
        )
    return _shipment_csv(request)


@csrf_protect
def _shipment_csv(request: HttpRequest) -> HttpResponse:
    """``action=preview`` checks every row and shows what would be recorded (nothing is); ``apply``
    records them all in one transaction, or none when a row has an error."""
    account = account_for(request)
    channels = _channel_choices(request)
    if request.method != "POST":
        return render(
            request, "orders/shipment_csv.html", _context(request, form=ShipmentCsvForm(channels=channels))
        )
    require_role(request, Role.MEMBER)
    form = ShipmentCsvForm(request.POST, request.FILES, channels=channels)
    form.is_valid()
    channel_id = form.cleaned_data.get("channel") or ""
    channel = (
        SalesChannel.objects.live().filter(account=account, pk=channel_id).first() if channel_id else None
    )
    try:
        text = csvio.text_from_request(request)
        rows = shipment_batch.rows_from_csv(text)
    except csvio.CsvError as exc:
        return render(
            request,
            "orders/shipment_csv.html",
            _context(request, form=form, file_error=str(exc)),
            status=400,
        )
    apply = request.POST.get("action") == "apply"
    result = shipment_batch.run_batch(account, rows, actor=actor_for(request), channel=channel, apply=apply)
    if result.applied:
        messages.success(request, _recorded_message(result))
        return redirect("orders:to_ship")
    # The text goes back in the box: a bad row can be fixed right there and previewed again.
    form = ShipmentCsvForm(initial={"csv": text, "channel": channel_id}, channels=channels)
    return render(
        request,
        "orders/shipment_csv.html",
        _context(request, form=form, result=result, rows=rows, text=text, channel_id=channel_id),
    )


# --------------------------------------------------------------------------------------------------
# Orders list as CSV
# --------------------------------------------------------------------------------------------------

ORDER_EXPORT_HEADER = (
    "order number",
    "channel",
    "placed at",
    "store status",
    "customer",
    "customer email",
    "currency",
    "order total",
    "sku",
    "item",
    "quantity",
    "unit price",
    "line tax",
    "line total",
)


def export_rows(orders: QuerySet[Order], tz: tzinfo) -> Any:
    """One row per order line (an order without lines gets one row), read with a server-side
    cursor in chunks: the export's memory does not grow with the number of orders.

    Times are written in ``tz`` with their offset. It is passed in, not read here, because the rows
    are produced while the response streams, after the request's zone is no longer active.
    """
    quanta: dict[str, Decimal] = {}

    def money(amount: Decimal | None, currency: str) -> str:
        # What ``money_text`` writes, with the currency's quantum looked up once per currency.
        if amount is None:
            return ""
        quantum = quanta.get(currency)
        if quantum is None:
            quantum = quanta[currency] = Decimal(1).scaleb(-currency_places(currency))
        return f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):f}"

    values = (
        orders.order_by("-placed_at", "-id", "lines__position")
        .values_list(
            "number",
            "channel__name",
            "placed_at",
            "status_name",
            "status_code",
            "customer_name",
            "customer_email",
            "currency",
            "total",
            "lines__sku",
            "lines__name",
            "lines__quantity",
            "lines__unit_price",
            "lines__tax",
            "lines__line_total",
        )
        .iterator(chunk_size=2000)
    )
    for (
        number,
        channel,
        placed_at,
        status_name,
        status_code,
        customer,
        email,
        currency,
        total,
        sku,
        name,
        quantity,
        unit_price,
        tax,
        line_total,
    ) in values:
        yield (
            number,
            channel,
            placed_at.astimezone(tz).isoformat(timespec="seconds"),
            status_name or status_code,
            customer,
            email,
            currency,
            money(total, currency),
            sku or "",
            name or "",
            "" if quantity is None else quantity,
            money(unit_price, currency),
            money(tax, currency),
            money(line_total, currency),
        )


@login_required
@require_GET
def order_export(request: HttpRequest) -> HttpResponse:
    """The orders list with the same filters (channel, status, dates, flag, search), as CSV."""
    from orders import views as order_views

    account = account_for(request)
    form = order_views.OrderFilterForm(request.GET or None, channels=_all_channel_choices(account))
    orders = order_views._filtered(Order.objects.filter(account=account), form)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    rows = export_rows(orders, timezone.get_current_timezone())
    return csvio.stream_csv(f"orders-{stamp}.csv", ORDER_EXPORT_HEADER, rows)


def _all_channel_choices(account: Any) -> list[tuple[str, str]]:
    return [
        (str(pk), name) for pk, name in SalesChannel.objects.filter(account=account).values_list("pk", "name")
    ]
