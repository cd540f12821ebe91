"""REST API for products and listings: thin views over :mod:`inventory.catalog` and
:mod:`inventory.matching`.

Rows are scoped by :class:`~accounts.api.AccountScopedViewSet` (another account's id is a 404).
The bulk upsert does not run a DRF serializer per item: 10,000 serializers cost seconds, and the
service validates every item anyway, returning each item's errors by position. The serializers
below describe the item for the OpenAPI schema.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import (
    QUERY_TEXT,
    AccountScopedViewSet,
    StrictCursorPagination,
    bool_param,
    datetime_param,
    text_param,
)
from accounts.tenancy import account_for, actor_for
from channels.models import SalesChannel
from channels.serializers import ErrorSerializer, StrictSerializer
from config import parsers
from config.middleware import max_body_bytes
from inventory import availability, catalog, matching
from inventory.models import Listing, Product


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields: ClassVar = ["id", "sku", "name", "on_hand", "price", "tax_rate", "created_at", "updated_at"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^\d{1,10}(?:\.\d{1,4})?$"})
class PriceField(serializers.DecimalField):
    """A price as the service accepts it: not negative, at most ten digits and four decimals."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=14, decimal_places=4, min_value=0, **kwargs)


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^(?:100(?:\.0{1,4})?|\d{1,2}(?:\.\d{1,4})?)$"}
)
class TaxRateField(serializers.DecimalField):
    """A tax rate in percent, 0 to 100, at most four decimals."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=7, decimal_places=4, min_value=0, max_value=100, **kwargs)


class ProductItemSerializer(serializers.Serializer):
    """One item of a bulk upsert: ``sku`` plus any fields to set (fields left out keep their value)."""

    sku = serializers.CharField(max_length=128)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    on_hand = serializers.IntegerField(
        min_value=0,
        max_value=catalog.MAX_QUANTITY,
        required=False,
        help_text="Required when the SKU is new.",
    )
    price = PriceField(
        required=False,
        allow_null=True,
        help_text="Net of tax; null means Storelink does not manage this product's price.",
    )
    tax_rate = TaxRateField(required=False, help_text="Percent, 0 to 100.")


class BulkRequestSerializer(serializers.Serializer):
    items = ProductItemSerializer(many=True, help_text=f"At most {catalog.MAX_BULK_ITEMS} items.")


class ItemErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    sku = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class BulkErrorSerializer(ErrorSerializer):
    errors = ItemErrorSerializer(many=True, required=False)  # absent when the body itself is malformed


class ListingSerializer(serializers.ModelSerializer):
    channel = serializers.UUIDField(source="channel_id", read_only=True)
    product = serializers.UUIDField(source="product_id", read_only=True, allow_null=True)
    available = serializers.SerializerMethodField(help_text="What Storelink would offer on this channel now.")

    class Meta:
        model = Listing
        fields: ClassVar = [
            "id",
            "channel",
            "product",
            "sku",
            "remote_id",
            "remote_variant_id",
            "name",
            "store_enabled",
            "store_quantity",
            "store_price",
            "available",
            "last_pushed_quantity",
            "last_pushed_at",
            "last_error",
            "last_pushed_price",
            "last_price_pushed_at",
            "last_price_error",
            "buffer",
            "max_quantity",
            "price_multiplier",
            "price_offset",
            "seen_at",
            "removed_at",
        ]
        read_only_fields = fields

    def get_available(self, listing: Listing) -> int | None:
        if listing.product is None:
            return None
        reserved = self.context.get("reserved", {})
        return availability.available_quantity(
            listing.product.on_hand, reserved.get(listing.sku, 0), listing.buffer, listing.max_quantity
        )


class ListingOverridesSerializer(StrictSerializer):
    buffer = serializers.IntegerField(min_value=0, max_value=catalog.MAX_QUANTITY, required=False)
    max_quantity = serializers.IntegerField(
        min_value=0, max_value=catalog.MAX_QUANTITY, required=False, allow_null=True
    )
    price_multiplier = serializers.DecimalField(max_digits=10, decimal_places=4, min_value=0, required=False)
    price_offset = serializers.DecimalField(max_digits=14, decimal_places=4, required=False)


class PushRequestSerializer(StrictSerializer):
    channel = serializers.UUIDField()


#: 10,000 items with 255-character names are ~4 MB of JSON; Django's default cap for a request
#: body (``DATA_UPLOAD_MAX_MEMORY_SIZE``, 2.5 MB) is sized for forms, not for a warehouse feed.
#: The API's middleware answers 413 above it before the body is read.
BULK_MAX_BYTES = 16 * 1024 * 1024


class SkuPagination(StrictCursorPagination):
    ordering = ("sku", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(ErrorSerializer, description="The request is malformed or a value is invalid."),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid API key."),
    403: OpenApiResponse(ErrorSerializer, description="Your role does not allow this."),
    404: OpenApiResponse(ErrorSerializer, description="Not found in your account."),
}


@extend_schema_view(
    list=extend_schema(
        summary="List products",
        parameters=[
            OpenApiParameter("search", QUERY_TEXT, description="Part of the SKU or name."),
            OpenApiParameter("sku", QUERY_TEXT, description="Exact SKU."),
            OpenApiParameter("updated_since", OpenApiTypes.DATETIME, description="ISO 8601 date-time."),
        ],
        responses={200: ProductSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="Get a product", responses={200: ProductSerializer, **ERRORS}),
)
class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """The product master (SKU, on hand, net price) of the account."""

    scoped_queryset: ClassVar[QuerySet[Any]] = Product.objects.all()
    serializer_class = ProductSerializer
    pagination_class = SkuPagination

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.action != "list":
            return queryset
        params = self.request.query_params
        sku = text_param(params, "sku")
        if sku:
            queryset = queryset.filter(sku=sku)
        search = text_param(params, "search")
        if search:
            term = search.strip()
            queryset = queryset.filter(Q(sku__icontains=term) | Q(name__icontains=term))
        since = datetime_param(params, "updated_since")
        if since is not None:
            queryset = queryset.filter(updated_at__gte=since)
        return queryset

    @extend_schema(
        summary="Create or update products by SKU (up to 10,000 per call)",
        description=(
            'Send a JSON list of items (or `{"items": [...]}`). Each item has `sku` and any of '
            "`name`, `on_hand`, `price`, `tax_rate`; fields left out keep their stored value, and a "
            "new SKU needs `on_hand`. All or nothing: when any item is invalid, nothing is saved and "
            "`errors` lists every invalid item by its position. Stock and price updates to your "
            "channels start as soon as the change is saved."
        ),
        request=BulkRequestSerializer,
        responses={
            **ERRORS,
            200: BulkResultSerializer,
            400: OpenApiResponse(BulkErrorSerializer, description="Invalid items; nothing was saved."),
            409: OpenApiResponse(
                BulkErrorSerializer,
                description="Every item is well formed, but some name a SKU that does not exist yet without "
                "`on_hand` (a new product needs its quantity); nothing was saved.",
            ),
        },
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    @max_body_bytes(BULK_MAX_BYTES)
    def bulk(self, request: Request) -> Response:
        data, suspect = _bulk_body(request)
        items = data.get("items") if isinstance(data, dict) else data
        if isinstance(data, dict) and set(data) - {"items"}:
            unknown = sorted(str(key) for key in data if key != "items")
            return Response(
                {
                    "message": f"Unknown field(s): {', '.join(unknown)}; send only items.",
                    "code": "invalid",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        if not isinstance(items, list):
            return Response(
                {
                    "message": "Send a JSON list of products, or an object with an items list.",
                    "code": "invalid",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        unstorable = _unstorable_items(data, items) if suspect else []
        if unstorable:
            return _invalid_items(unstorable)
        try:
            result = catalog.upsert_products(account_for(request), items, actor=actor_for(request))
        except catalog.ProductError as exc:
            return Response({"message": str(exc), "code": "invalid"}, status=status.HTTP_400_BAD_REQUEST)
        if not result.ok:
            return _invalid_items([error.as_dict() for error in result.errors], conflict=result.conflict)
        return Response({"created": result.created, "updated": result.updated, "unchanged": result.unchanged})


def _invalid_items(errors: list[dict[str, Any]], *, conflict: bool = False) -> Response:
    count = len(errors)
    items = f"{count} item{'s' if count != 1 else ''}"
    if conflict:
        return Response(
            {
                "message": f"{items} name{'s' if count == 1 else ''} a SKU you do not have yet without its "
                "quantity on hand; nothing was saved.",
                "code": "unknown_sku",
                "errors": errors,
            },
            status=status.HTTP_409_CONFLICT,
        )
    return Response(
        {"message": f"{items} not valid; nothing was saved.", "code": "invalid", "errors": errors},
        status=status.HTTP_400_BAD_REQUEST,
    )


def _bulk_body(request: Request) -> tuple[Any, bool]:
    """The bulk call's JSON, parsed by the API's guarded parser (depth limit, clear messages), and
    whether it may hold NUL or lone surrogates, left to :func:`_unstorable_items` to report per item."""
    raw = request._request
    if getattr(raw, "_read_started", False):  # already parsed by someone else: use that
        return request.data, False
    if "json" not in (raw.content_type or ""):
        raise exceptions.UnsupportedMediaType(raw.content_type or "")
    body = raw.read(BULK_MAX_BYTES + 1)
    if len(body) > BULK_MAX_BYTES:  # the middleware checked Content-Length; this is a second net
        raise exceptions.ValidationError(f"Send at most {BULK_MAX_BYTES} bytes per call (split the items).")
    encoding = raw.encoding or "utf-8"
    data = parsers.loads(body or b"null", encoding, check_text=False)
    return data, parsers.may_hold_bad_text(body, encoding)


def _unstorable_items(data: Any, items: list[Any]) -> list[dict[str, Any]]:
    """Per-item errors for text no database can store (NUL, half a surrogate pair), by position."""
    prefix = ("items",) if isinstance(data, dict) else ()
    by_index: dict[int, dict[str, list[str]]] = {}
    for path in parsers.bad_text_paths(data):
        if path[: len(prefix)] != prefix or len(path) <= len(prefix):
            raise exceptions.ParseError(f"{parsers.describe_path(path)} {parsers.BAD_TEXT}.")
        index, rest = path[len(prefix)], path[len(prefix) + 1 :]
        field = str(rest[0]) if rest else "non_field_errors"
        by_index.setdefault(int(index), {})[parsers.safe_text(field)] = [
            "Contains a control, zero-width or text-direction character, or half of a surrogate pair."
        ]
    errors = []
    for index, fields in sorted(by_index.items()):
        item = items[index]
        sku = item.get("sku") if isinstance(item, dict) else None
        errors.append(
            {"index": index, "sku": parsers.safe_text(sku) if isinstance(sku, str) else "", "errors": fields}
        )
    return errors


def _channel_of(request: Request, value: Any) -> SalesChannel:
    """The request's own live channel, or 404 (another account's id is not found)."""
    try:
        channel_id = uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound("No such channel in your account.") from None
    channel = SalesChannel.objects.live().filter(account=account_for(request), pk=channel_id).first()
    if channel is None:
        raise exceptions.NotFound("No such channel in your account.")
    return channel


@extend_schema_view(
    list=extend_schema(
        summary="List listings (products and variants on your channels)",
        parameters=[
            OpenApiParameter("channel", OpenApiTypes.UUID, description="Channel id."),
            OpenApiParameter("sku", QUERY_TEXT, description="Exact SKU."),
            OpenApiParameter(
                "unmatched", bool, description="Only store items whose SKU is not in your product master."
            ),
            OpenApiParameter("include_removed", bool, description="Also items the store no longer lists."),
        ],
        responses={200: ListingSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="Get a listing", responses={200: ListingSerializer, **ERRORS}),
)
class ListingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Listings: what each channel sells, matched to products by SKU, with push results."""

    scoped_queryset: ClassVar[QuerySet[Any]] = Listing.objects.all()
    serializer_class = ListingSerializer
    pagination_class = SkuPagination
    http_method_names: ClassVar[list[str]] = ["get", "post", "patch", "head", "options"]

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.filter(channel__removed_at__isnull=True).select_related("product")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if params.get("channel"):
            queryset = queryset.filter(channel=_channel_of(self.request, params["channel"]))
        sku = text_param(params, "sku")
        if sku:
            queryset = queryset.filter(sku=sku)
        if not bool_param(params, "include_removed"):
            queryset = queryset.filter(removed_at__isnull=True)
        if bool_param(params, "unmatched"):
            queryset = queryset.filter(product__isnull=True)
        return queryset

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["reserved"] = getattr(self, "_reserved", {})
        return context

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = list(page) if page is not None else list(queryset)
        self._reserved = availability.reserved_by_sku(account_for(request), [row.sku for row in rows])
        serializer = self.get_serializer(rows, many=True)
        if page is not None:
            return self.get_paginated_response(serializer.data)
        return Response(serializer.data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        listing = self.get_object()
        self._reserved = availability.reserved_by_sku(account_for(request), [listing.sku])
        return Response(self.get_serializer(listing).data)

    @extend_schema(
        summary="Change a listing's overrides (buffer, max quantity, price rule)",
        request=ListingOverridesSerializer,
        responses={200: ListingSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        listing = self.get_object()
        incoming = ListingOverridesSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        listing = matching.update_listing_overrides(
            listing, actor=actor_for(request), **incoming.validated_data
        )
        return self.retrieve(request, pk=pk)

    @extend_schema(
        summary="Push stock and prices of a channel now",
        description="Re-reads the channel's listings and pushes every difference (failed items included).",
        request=PushRequestSerializer,
        responses={202: None, **ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="push")
    def push(self, request: Request) -> Response:
        incoming = PushRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        channel = _channel_of(request, incoming.validated_data["channel"])
        jobs = matching.push_now(channel, actor=actor_for(request))
        return Response({"jobs": jobs}, status=status.HTTP_202_ACCEPTED)
