"""Products as CSV: export the master (SKU, name, on hand, price, tax rate) and import it back.

An import is checked and written by :func:`inventory.catalog.upsert_products`, the bulk API's own
function, so a file obeys exactly the API's rules (a new SKU needs its quantity, no negative stock,
price decimals ...) and is all or nothing. The preview runs that same function in a transaction
that is always rolled back (its stock and price jobs, registered for after commit, go with it):
what it shows is what applying does. An empty cell leaves that field as it is.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Role
from accounts.tenancy import account_for, actor_for, require_role
from channels.views import page_context
from config import csvio
from inventory import catalog
from inventory.models import Product

EXPORT_HEADER = ("sku", "name", "on_hand", "price", "tax_rate")
#: Header names (letters only, lower case) accepted for each product field.
HEADERS = {
    "sku": {"sku", "productsku", "itemsku"},
    "name": {"name", "productname", "title"},
    "on_hand": {"onhand", "quantity", "qty", "stock", "quantityonhand"},
    "price": {"price", "unitprice"},
    "tax_rate": {"taxrate", "tax", "vatrate", "vat"},
}
#: Rows shown in a preview; counts cover every row.
PREVIEW_ROWS = 200


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return page_context(request, nav="products", **extra)


@login_required
@require_GET
def product_export(request: HttpRequest) -> HttpResponse:
    """The account's products (those matching the list's search, if one is given), streamed from
    a server-side cursor (constant memory)."""
    products = Product.objects.filter(account=account_for(request))
    query = (request.GET.get("q") or "").strip()
    if query:
        products = products.filter(Q(sku__icontains=query) | Q(name__icontains=query))
    rows = products.order_by("sku").values_list(*EXPORT_HEADER).iterator(chunk_size=2000)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csvio.stream_csv(f"products-{stamp}.csv", EXPORT_HEADER, rows)


class ProductCsvForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="A header row naming sku and any of name, on_hand, price, tax_rate (the export's columns). "
        "An empty cell keeps what is stored.",
    )
    csv = forms.CharField(
        required=False,
        label="Or paste the rows",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )


def items_from_csv(text: str) -> tuple[list[dict[str, str]], list[int], list[str]]:
    """The file's rows as bulk-API items (only the non-empty cells), their line numbers, and the
    header cells that were ignored; :class:`config.csvio.CsvError` when the file is unusable."""
    records = csvio.read_rows(text, max_rows=catalog.MAX_BULK_ITEMS + 1)
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(records[0].cells):
        key = csvio.header_key(cell)
        name = next((field for field, accepted in HEADERS.items() if key in accepted), None)
        if name is None or name in columns:
            if cell:
                ignored.append(cell)
            continue
        columns[name] = index
    if "sku" not in columns:
        raise csvio.CsvError(
            "The first row must name the columns, with a sku column (export your products to see the format)."
        )
    if len(columns) == 1:
        raise csvio.CsvError(
            "The header row names no column to change: add name, on_hand, price or tax_rate."
        )
    if len(records) == 1:
        raise csvio.CsvError("The file has a header row but no products.")
    items: list[dict[str, str]] = []
    lines: list[int] = []
    for record in records[1:]:
        item: dict[str, str] = {}
        for name, index in columns.items():
            value = record.cells[index].strip() if index < len(record.cells) else ""
            if value or name == "sku":
                item[name] = value
        items.append(item)
        lines.append(record.line)
    return items, lines, ignored


def _changes(items: list[dict[str, str]], lines: list[int], account: Any) -> list[dict[str, Any]]:
    """What each row would change, for the preview (one query for the shown rows)."""
    shown = list(zip(lines, items, strict=True))[:PREVIEW_ROWS]
    stored = {
        product.sku: product
        for product in Product.objects.filter(
            account=account, sku__in=[item.get("sku", "") for _, item in shown]
        )
    }
    rows = []
    for line, item in shown:
        product = stored.get(item.get("sku", ""))
        changes = []
        for name in ("name", "on_hand", "price", "tax_rate"):
            if name not in item:
                continue
            new = item[name]
            old = getattr(product, name) if product is not None else None
            if product is None or _differs(old, new):
                changes.append((name.replace("_", " "), "" if old is None else old, new))
        rows.append({"line": line, "sku": item.get("sku", ""), "new": product is None, "changes": changes})
    return rows


def _differs(old: Any, new: str) -> bool:
    if isinstance(old, Decimal):
        try:
            return Decimal(new) != old
        except ArithmeticError:
            return True
    return str(old) != new


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def product_import(request: HttpRequest) -> HttpResponse:
    """Upload or paste a products CSV; refused before reading when it is too large."""
    if request.method == "POST" and csvio.too_large(request):
        return render(
            request,
            "inventory/product_import.html",
            _context(request, form=ProductCsvForm(), file_error=csvio.too_large_message()),
            status=413,
        )
    return _product_import(request)


@csrf_protect
def _product_import(request: HttpRequest) -> HttpResponse:
    account = account_for(request)
    if request.method != "POST":
        return render(request, "inventory/product_import.html", _context(request, form=ProductCsvForm()))
    require_role(request, Role.MEMBER)
    try:
        text = csvio.text_from_request(request)
        items, lines, ignored = items_from_csv(text)
    except csvio.CsvError as exc:
        return render(
            request,
            "inventory/product_import.html",
            _context(request, form=ProductCsvForm(request.POST), file_error=str(exc)),
            status=400,
        )
    apply = request.POST.get("action") == "apply"
    changes = [] if apply else _changes(items, lines, account)
    with transaction.atomic():
        result = catalog.upsert_products(account, items, actor=actor_for(request))
        if not apply or not result.ok:
            transaction.set_rollback(True)
    if apply and result.ok:
        messages.success(
            request,
            f"Imported: {result.created} new, {result.updated} changed, {result.unchanged} unchanged. "
            "Channels that sync stock or prices are being updated.",
        )
        return redirect("inventory:product_list")
    errors = [
        {"line": lines[error.index], "sku": error.sku, "messages": _messages(error.errors, lines)}
        for error in result.errors
    ]
    return render(
        request,
        "inventory/product_import.html",
        _context(
            request,
            form=ProductCsvForm(initial={"csv": text}),
            result=result,
            errors=errors[:PREVIEW_ROWS],
            more_errors=max(0, len(errors) - PREVIEW_ROWS),
            changes=changes,
            more_rows=max(0, len(items) - len(changes)),
            ignored=ignored,
            text=text,
        ),
    )


_ITEM_REFERENCE = re.compile(r"\bitem (\d+) of this request\b")


def _messages(errors: dict[str, list[str]], lines: list[int]) -> list[str]:
    """The bulk API's messages for one row, in a file's terms: "item 3 of this request" (a position
    in the list) becomes the line of the file."""
    labels = {"non_field_errors": "", "on_hand": "on hand: ", "tax_rate": "tax rate: "}

    def line_of(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return f"on line {lines[index]}" if 0 <= index < len(lines) else match.group(0)

    return [
        f"{labels.get(name, name + ': ')}{_ITEM_REFERENCE.sub(line_of, message)}"
        for name, values in errors.items()
        for message in values
    ]
