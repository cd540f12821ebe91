"""Seller UI for products and listings: the product list with inline edits, a product's page with
its listings per channel, the unmatched SKUs per channel, and "push now".

Thin views: rows are looked up through the request's account (another account's id is a 404),
every change goes through the inventory services (:mod:`inventory.catalog`,
:mod:`inventory.matching`, :mod:`inventory.prices`: role check, audit row, jobs on commit).
Inline edits answer HTMX with the re-rendered row and plain browsers with a redirect, so the page
works without JavaScript.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.tenancy import account_for, actor_for
from channels.models import SalesChannel, SyncJob, SyncRun
from channels.views import page_context
from inventory import availability, catalog, matching, prices
from inventory.forms import InlineProductForm, ListingOverridesForm, ProductForm, apply_errors
from inventory.models import Listing, Product

PAGE_SIZE = 50


def product_for_request(request: HttpRequest, product_id: Any) -> Product:
    """The request's own product, or 404 — for another account's id as much as a wrong one."""
    return get_object_or_404(Product.objects.filter(account=account_for(request)), pk=product_id)


def listing_for_request(request: HttpRequest, listing_id: Any) -> Listing:
    return get_object_or_404(
        Listing.objects.filter(account=account_for(request), channel__removed_at__isnull=True).select_related(
            "channel", "product"
        ),
        pk=listing_id,
    )


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return page_context(request, nav="products", **extra)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


# --------------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------------


@login_required
def product_list(request: HttpRequest) -> HttpResponse:
    account = account_for(request)
    query = (request.GET.get("q") or "").strip()
    # The listing count is a subquery per row, so only the page's 50 rows are counted (a JOIN and
    # GROUP BY would aggregate every listing of the account, and the page count would too).
    listings = (
        Listing.objects.filter(product_id=OuterRef("pk"), removed_at__isnull=True)
        .order_by()
        .values("product_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    products = Product.objects.filter(account=account).annotate(
        listing_count=Coalesce(Subquery(listings, output_field=IntegerField()), 0)
    )
    if query:
        products = products.filter(Q(sku__icontains=query) | Q(name__icontains=query))
    page = Paginator(products.order_by("sku"), PAGE_SIZE).get_page(request.GET.get("page"))
    channels = list(SalesChannel.objects.live().for_account(account).for_listing().order_by("name"))
    here = request.get_full_path()
    rows = [{"product": product, "form": _inline_form(product), "next": here} for product in page]
    return render(
        request,
        "inventory/product_list.html",
        _context(request, page=page, rows=rows, query=query, channels=channels, next=here),
    )


@login_required
@require_POST
def price_basis(request: HttpRequest) -> HttpResponse:
    """Save whether the product master's prices include tax (the account's one price setting)."""
    account = account_for(request)
    try:
        gross = prices.set_prices_include_tax(
            account, request.POST.get("prices_include_tax", ""), actor=actor_for(request)
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        kept = "include tax" if gross else "are net"
        messages.success(request, f"Saved: your product prices {kept}. Channels syncing prices follow.")
    return redirect(reverse("inventory:product_list") + "#price-basis")


def _inline_form(product: Product) -> InlineProductForm:
    return InlineProductForm(
        initial={"on_hand": product.on_hand, "price": product.price}, prefix=f"p-{product.pk}"
    )


@login_required
@require_http_methods(["GET", "POST"])
def product_create(request: HttpRequest) -> HttpResponse:
    account = account_for(request)
    form = ProductForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if Product.objects.filter(account=account, sku=form.cleaned_data["sku"].strip()).exists():
            form.add_error("sku", "You already have a product with this SKU.")
        else:
            try:
                product = catalog.save_product(
                    account, actor=actor_for(request), sku=form.cleaned_data["sku"], **form.service_values()
                )
            except catalog.ProductValidationError as exc:
                apply_errors(form, exc.errors)
            else:
                messages.success(request, f"Product {product.sku} added.")
                return redirect("inventory:product_detail", product_id=product.pk)
    return render(request, "inventory/product_form.html", _context(request, form=form))


@login_required
@require_http_methods(["GET", "POST"])
def product_detail(request: HttpRequest, product_id: Any) -> HttpResponse:
    product = product_for_request(request, product_id)
    account = product.account
    if request.method == "POST":
        form = ProductForm(request.POST)
        if form.is_valid():
            try:
                product = catalog.save_product(
                    account,
                    actor=actor_for(request),
                    sku=form.cleaned_data["sku"].strip(),
                    product=product,
                    **form.service_values(),
                )
            except catalog.ProductValidationError as exc:
                apply_errors(form, exc.errors)
            else:
                messages.success(request, "Saved. Your channels are being updated.")
                return redirect("inventory:product_detail", product_id=product.pk)
    else:
        form = ProductForm(
            initial={
                "sku": product.sku,
                "name": product.name,
                "on_hand": product.on_hand,
                "price": product.price,
                "tax_rate": product.tax_rate,
            }
        )
    listings = list(
        Listing.objects.filter(account=account, product=product, channel__removed_at__isnull=True)
        .select_related("channel")
        .defer("channel__credentials")  # a row per channel: never decrypt their secrets to show it
        .order_by("channel__name", "sku")
    )
    reserved = availability.reserved_by_sku(account, [product.sku]).get(product.sku, 0)
    rows = []
    for listing in listings:
        rows.append(
            {
                "listing": listing,
                "available": availability.available_quantity(
                    product.on_hand, reserved, listing.buffer, listing.max_quantity
                ),
                "price": _channel_price(listing, product, account),
                "form": _overrides_form(listing),
            }
        )
    missing = list(
        SalesChannel.objects.live()
        .for_account(account)
        .for_listing()
        .exclude(pk__in=[row["listing"].channel_id for row in rows if row["listing"].removed_at is None])
        .order_by("name")
    )
    return render(
        request,
        "inventory/product_detail.html",
        _context(request, product=product, form=form, rows=rows, reserved=reserved, missing_channels=missing),
    )


def _channel_price(listing: Listing, product: Product, account: Any) -> Any:
    if product.price is None:
        return None
    rule = prices.price_rule(listing.channel, account)
    return rule.price(product.price, product.tax_rate, listing.price_multiplier, listing.price_offset)


def _overrides_form(listing: Listing) -> ListingOverridesForm:
    return ListingOverridesForm(
        initial={
            "buffer": listing.buffer,
            "max_quantity": listing.max_quantity,
            "price_multiplier": listing.price_multiplier,
            "price_offset": listing.price_offset,
        },
        prefix=f"l-{listing.pk}",
    )


@login_required
@require_POST
def product_inline(request: HttpRequest, product_id: Any) -> HttpResponse:
    """Save on hand and price from the list; HTMX gets the row back, browsers a redirect."""
    product = product_for_request(request, product_id)
    form = InlineProductForm(request.POST, prefix=f"p-{product.pk}")
    error = ""
    if form.is_valid():
        try:
            product = catalog.save_product(
                product.account,
                actor=actor_for(request),
                sku=product.sku,
                on_hand=form.cleaned_data["on_hand"],
                price=form.cleaned_data.get("price"),
            )
        except catalog.ProductValidationError as exc:
            error = " ".join(" ".join(v) for v in exc.errors.values())
    else:
        error = " ".join(" ".join(v) for v in form.errors.values())
    if request.htmx:
        row_form = form if error else _inline_form(product)
        product.listing_count = product.listings.filter(removed_at__isnull=True).count()
        # 200 even for an error: htmx only swaps 2xx answers, and the row shows the error itself.
        return render(
            request,
            "inventory/_product_row.html",
            _context(
                request,
                row={"product": product, "form": row_form, "next": _safe_next(request, "")},
                saved=not error,
                row_error=error,
            ),
        )
    if error:
        messages.error(request, f"{product.sku}: {error}")
    else:
        messages.success(request, f"{product.sku} saved. Your channels are being updated.")
    return redirect(_safe_next(request, reverse("inventory:product_list")))


@login_required
@require_POST
def product_delete(request: HttpRequest, product_id: Any) -> HttpResponse:
    product = product_for_request(request, product_id)
    sku = product.sku
    catalog.delete_product(product, actor=actor_for(request))
    messages.success(
        request, f"Product {sku} deleted. Its listings stay on your stores and are no longer updated."
    )
    return redirect("inventory:product_list")


# --------------------------------------------------------------------------------------------------
# Listings and channels
# --------------------------------------------------------------------------------------------------


@login_required
@require_POST
def listing_update(request: HttpRequest, listing_id: Any) -> HttpResponse:
    listing = listing_for_request(request, listing_id)
    form = ListingOverridesForm(request.POST, prefix=f"l-{listing.pk}")
    fallback = (
        reverse("inventory:product_detail", args=[listing.product_id])
        if listing.product_id
        else reverse("inventory:unmatched")
    )
    if form.is_valid():
        try:
            matching.update_listing_overrides(listing, actor=actor_for(request), **form.cleaned_data)
        except catalog.ProductValidationError as exc:
            messages.error(request, f"{listing.sku}: " + " ".join(" ".join(v) for v in exc.errors.values()))
        else:
            messages.success(request, f"Overrides of {listing.sku} on {listing.channel.name} saved.")
    else:
        messages.error(request, f"{listing.sku}: " + " ".join(" ".join(v) for v in form.errors.values()))
    return redirect(_safe_next(request, fallback))


#: Rows per side of one channel's unmatched SKUs; more follow page by page.
UNMATCHED_PAGE_SIZE = 100


@login_required
def unmatched(request: HttpRequest) -> HttpResponse:
    """Listings by channel: a summary line per channel, and one channel's unmatched SKUs on both
    sides (store items whose SKU is not a product, products the store does not list), a page at
    a time.

    The queries do not grow with the number of channels or listings: one for the channels, one
    that counts every channel's listings in a single pass, one count of products, then a page of
    each side and the last runs for the channel shown. Credentials are never read.
    """
    account = account_for(request)
    channels = list(SalesChannel.objects.live().for_account(account).for_listing().order_by("name"))
    counts = {
        row["channel_id"]: row
        for row in Listing.objects.present()
        .filter(account=account)
        .values("channel_id")
        .annotate(
            listings=Count("id"),
            store_only=Count("id", filter=Q(product__isnull=True)),
            products=Count("product_id", distinct=True),
        )
        .order_by()
    }
    products = Product.objects.filter(account=account).count() if channels else 0
    summary = []
    for channel in channels:
        row = counts.get(channel.pk, {})
        summary.append(
            {
                "channel": channel,
                "listing_count": row.get("listings", 0),
                "store_only_count": row.get("store_only", 0),
                "master_only_count": max(0, products - row.get("products", 0)),
            }
        )
    wanted = request.GET.get("channel", "")
    chosen = [row for row in summary if str(row["channel"].pk) == wanted]
    selected = (chosen or summary or [None])[0]
    section = _unmatched_section(request, selected) if selected else None
    return render(
        request,
        "inventory/unmatched.html",
        _context(request, summary=summary, section=section, many_channels=len(summary) > 1),
    )


def _unmatched_section(request: HttpRequest, row: dict[str, Any]) -> dict[str, Any]:
    """One channel's page of unmatched SKUs on both sides, with its last stock and price pushes."""
    from config.keyset import keyset_page

    channel = row["channel"]
    store_only = keyset_page(
        Listing.objects.unmatched().filter(channel=channel).only("id", "sku", "name", "remote_variant_id"),
        key="sku",
        descending=False,
        size=UNMATCHED_PAGE_SIZE,
        after=request.GET.get("store_after"),
        before=request.GET.get("store_before"),
        parse_key=str,
    )
    master_only = keyset_page(
        matching.products_without_listing(channel).only("id", "sku", "name"),
        key="sku",
        descending=False,
        size=UNMATCHED_PAGE_SIZE,
        after=request.GET.get("master_after"),
        before=request.GET.get("master_before"),
        parse_key=str,
    )
    runs = [
        run
        for job in (SyncJob.STOCK, SyncJob.PRICES)
        if (run := SyncRun.objects.filter(channel=channel, job=job).order_by("-created_at").first())
    ]
    return {
        **row,
        "store_only": store_only,
        "master_only": master_only,
        "runs": runs,
        "here": f"{reverse('inventory:unmatched')}?{urlencode({'channel': channel.pk})}",
    }


@login_required
@require_POST
def import_listings(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """Add the channel's unmatched store items to the products (store quantity and price)."""
    account = account_for(request)
    channel = get_object_or_404(SalesChannel.objects.live().for_account(account), pk=channel_id)
    result = matching.create_products_from_listings(channel, actor=actor_for(request))
    if result.ok:
        messages.success(request, f"{result.created} product(s) added from {channel.name}.")
    else:
        messages.error(request, f"{len(result.errors)} store item(s) could not be added; nothing was saved.")
    return redirect(
        reverse("inventory:unmatched") + "?" + urlencode({"channel": channel.pk}) + f"#channel-{channel.pk}"
    )


@login_required
@require_POST
def push_now(request: HttpRequest, channel_id: Any) -> HttpResponse:
    account = account_for(request)
    channel = get_object_or_404(SalesChannel.objects.live().for_account(account), pk=channel_id)
    try:
        jobs = matching.push_now(channel, actor=actor_for(request))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        jobs = []
    if jobs:
        messages.success(
            request,
            f"Re-reading {channel.name} and pushing {' and '.join(jobs)} now; results appear below shortly.",
        )
    else:
        messages.warning(
            request,
            f"{channel.name} is paused or updates neither stock nor prices, so nothing was pushed.",
        )
    return redirect(
        _safe_next(request, reverse("inventory:unmatched") + "?" + urlencode({"channel": channel.pk}))
    )
