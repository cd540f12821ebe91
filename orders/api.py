"""REST API for orders and shipments: thin views over :mod:`orders.shipments`, scoped by
:class:`~accounts.api.AccountScopedViewSet` (another account's id is a 404, never data).

Shipments are what warehouse systems POST, often from a queue that repeats itself: the
``Idempotency-Key`` header (or an ``idempotency_key`` per item) makes a repeated POST answer the
shipment the first one created instead of shipping twice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import (
    QUERY_TEXT,
    AccountScopedViewSet,
    StrictCursorPagination,
    datetime_param,
    text_param,
    uuid_value,
)
from accounts.tenancy import account_for, actor_for
from channels.serializers import ErrorSerializer, StrictSerializer
from orders.models import Order, OrderLine, Shipment, ShipmentState, money_text
from orders.shipments import MAX_TRACKING_NUMBERS, IdempotencyKeyReused, record_shipment, retry_shipment

MAX_BULK_SHIPMENTS = 500


ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input."),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid API key."),
    403: OpenApiResponse(ErrorSerializer, description="Your role does not allow this."),
    404: OpenApiResponse(ErrorSerializer, description="Not found in your account."),
}


# --------------------------------------------------------------------------------------------------
# Serializers
# --------------------------------------------------------------------------------------------------


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields: ClassVar = [
            "external_line_id",
            "sku",
            "name",
            "options",
            "quantity",
            "unit_price",
            "tax",
            "line_total",
        ]
        read_only_fields = fields


class ShipmentSerializer(serializers.ModelSerializer):
    order = serializers.UUIDField(source="order_id", read_only=True)
    channel = serializers.UUIDField(source="channel_id", read_only=True)

    class Meta:
        model = Shipment
        fields: ClassVar = [
            "id",
            "order",
            "channel",
            "carrier",
            "service",
            "tracking_numbers",
            "lines",
            "is_partial",
            "state",
            "attempts",
            "last_error",
            "next_attempt_at",
            "idempotency_key",
            "store_reference",
            "confirmed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


ORDER_MONEY = ("subtotal", "shipping", "tax", "discount", "total")
LINE_MONEY = ("unit_price", "tax", "line_total")


class OrderSerializer(serializers.ModelSerializer):
    """Amounts are decimal strings in the order currency's own decimals (``"12.345"`` KWD,
    ``"1200"`` JPY, ``"45.00"`` EUR): stored with four, shown as the store and the customer saw them."""

    channel = serializers.UUIDField(source="channel_id", read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)
    flags = serializers.ListField(child=serializers.CharField(), read_only=True)

    def to_representation(self, instance: Order) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name in ORDER_MONEY:
            data[name] = money_text(getattr(instance, name), instance.currency)
        for line, shown in zip(instance.lines.all(), data.get("lines") or [], strict=False):
            for name in LINE_MONEY:
                shown[name] = money_text(getattr(line, name), instance.currency)
        return data

    class Meta:
        model = Order
        fields: ClassVar = [
            "id",
            "channel",
            "external_id",
            "number",
            "placed_at",
            "status_code",
            "status_name",
            "currency",
            "subtotal",
            "shipping",
            "tax",
            "discount",
            "total",
            "prices_include_tax",
            "customer_name",
            "customer_email",
            "billing_address",
            "shipping_address",
            "shipping_method",
            "total_mismatch",
            "unknown_sku",
            "held_unmapped_status",
            "flags",
            "lines",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    shipments = ShipmentSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields: ClassVar = [*OrderSerializer.Meta.fields, "shipments"]
        read_only_fields = fields


class ShipmentLineInSerializer(StrictSerializer):
    external_line_id = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1)


class ShipmentCreateSerializer(StrictSerializer):
    order = serializers.UUIDField(help_text="The Storelink order id.")
    tracking_numbers = serializers.ListField(
        child=serializers.CharField(max_length=100),
        min_length=1,
        max_length=MAX_TRACKING_NUMBERS,
    )
    carrier = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    service = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    lines = ShipmentLineInSerializer(
        many=True,
        required=False,
        help_text="Lines and quantities shipped; leave out to ship everything left.",
    )
    idempotency_key = serializers.CharField(
        max_length=255,
        required=False,
        allow_null=True,
        help_text="Repeating a key answers the shipment it created. The Idempotency-Key header also works.",
    )


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    created = serializers.BooleanField()
    shipment = ShipmentSerializer(required=False)
    errors = serializers.DictField(required=False)


class BulkShipmentResultSerializer(serializers.Serializer):
    results = BulkItemResultSerializer(many=True)


# --------------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------------


class UpdatedCursorPagination(StrictCursorPagination):
    """Stable pages by last change, so a client can poll ``updated_since`` and follow ``next``."""

    ordering = ("updated_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


ORDER_FLAGS = ["total_mismatch", "unknown_sku", "held_unmapped_status"]


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        parameters=[
            OpenApiParameter("channel", OpenApiTypes.UUID, description="Only this channel's orders."),
            OpenApiParameter("status", QUERY_TEXT, description="Store status code."),
            OpenApiParameter(
                "updated_since",
                OpenApiTypes.DATETIME,
                description="ISO 8601 time; orders changed at or after it.",
            ),
            OpenApiParameter(
                "flag",
                str,
                enum=ORDER_FLAGS,
                description="total_mismatch, unknown_sku or held_unmapped_status.",
            ),
        ],
        responses={200: OrderSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="Get an order", responses={200: OrderDetailSerializer, **ERRORS}),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Orders downloaded from the account's channels (including removed channels' history)."""

    scoped_queryset: ClassVar[QuerySet[Any]] = Order.objects.all()
    serializer_class = OrderSerializer
    pagination_class = UpdatedCursorPagination

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return OrderDetailSerializer if self.action == "retrieve" else OrderSerializer

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        params = self.request.query_params
        if "channel" in params:
            queryset = queryset.filter(channel_id=uuid_value(params["channel"], "channel"))
        status_code = text_param(params, "status")
        if status_code:
            queryset = queryset.filter(status_code=status_code)
        since = datetime_param(params, "updated_since")
        if since is not None:
            queryset = queryset.filter(updated_at__gte=since)
        flag = params.get("flag")
        if flag:
            if flag not in ORDER_FLAGS:
                raise exceptions.ValidationError({"flag": ["Unknown flag."]})
            queryset = queryset.filter(**{flag: True})
        queryset = queryset.prefetch_related("lines")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("shipments")
        return queryset


# --------------------------------------------------------------------------------------------------
# Shipments
# --------------------------------------------------------------------------------------------------


def _errors_of(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
    return {"non_field_errors": list(exc.messages)}


@extend_schema_view(
    list=extend_schema(
        summary="List shipments",
        parameters=[
            OpenApiParameter("order", OpenApiTypes.UUID, description="Only this order's shipments."),
            OpenApiParameter(
                "state", str, enum=ShipmentState.values, description="pending, confirmed or failed."
            ),
        ],
        responses={200: ShipmentSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="Get a shipment", responses={200: ShipmentSerializer, **ERRORS}),
)
class ShipmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Shipments recorded for the account's orders and their confirmation state on the store."""

    scoped_queryset: ClassVar[QuerySet[Any]] = Shipment.objects.all()
    serializer_class = ShipmentSerializer
    pagination_class = UpdatedCursorPagination

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        params = self.request.query_params
        if "order" in params:
            queryset = queryset.filter(order_id=uuid_value(params["order"], "order"))
        state = text_param(params, "state", ShipmentState.values)
        if state:
            queryset = queryset.filter(state=state)
        return queryset

    def _create_one(self, data: Any, key: str | None) -> tuple[Shipment, bool]:
        incoming = ShipmentCreateSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        account = account_for(self.request)
        order = (
            Order.objects.filter(account=account, pk=values["order"])
            .select_related("channel", "account")
            .first()
        )
        if order is None:  # a 404 like any other id of another account or of nothing
            raise exceptions.NotFound("No such order in your account.")
        return record_shipment(
            order,
            actor=actor_for(self.request),
            tracking_numbers=values["tracking_numbers"],
            carrier=values.get("carrier", ""),
            service=values.get("service", ""),
            lines=[dict(line) for line in values.get("lines") or []],
            idempotency_key=values.get("idempotency_key") or key,
        )

    @extend_schema(
        summary="Record one shipment, or several (a JSON list)",
        description=(
            "The shipment is confirmed to the store in the background (state pending → confirmed or "
            "failed). Send `Idempotency-Key` to make retries safe; for a list, each item gets the "
            "header's key suffixed with `:<index>` unless it has its own `idempotency_key`. A list "
            "answers one result per item, in order, so some items can fail while others succeed."
        ),
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        request=ShipmentCreateSerializer,
        responses={
            201: ShipmentSerializer,
            200: OpenApiResponse(ShipmentSerializer, description="Replayed: the key's existing shipment."),
            207: BulkShipmentResultSerializer,
            422: OpenApiResponse(
                ErrorSerializer, description="The key was already used for a different shipment."
            ),
            **ERRORS,
        },
    )
    def create(self, request: Request) -> Response:
        header_key = (request.headers.get("Idempotency-Key") or "").strip() or None
        if isinstance(request.data, list):
            return self._create_bulk(request.data, header_key)
        try:
            shipment, created = self._create_one(request.data, header_key)
        except IdempotencyKeyReused as exc:
            errors = _errors_of(exc)
            message = errors["idempotency_key"][0]
            return Response(
                {"message": message, "code": "idempotency_key_reused", "errors": errors}, status=422
            )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(_errors_of(exc)) from None
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(ShipmentSerializer(shipment).data, status=code)

    def _create_bulk(self, items: list[Any], header_key: str | None) -> Response:
        if not items:
            raise exceptions.ValidationError({"non_field_errors": ["Send at least one shipment."]})
        if len(items) > MAX_BULK_SHIPMENTS:
            raise exceptions.ValidationError(
                {"non_field_errors": [f"Send at most {MAX_BULK_SHIPMENTS} shipments per request."]}
            )
        results: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            key = f"{header_key}:{index}" if header_key else None
            try:
                if not isinstance(item, dict):
                    raise exceptions.ValidationError({"non_field_errors": ["Each item must be an object."]})
                shipment, created = self._create_one(item, key)
            except exceptions.NotFound as exc:
                results.append({"index": index, "created": False, "errors": {"order": [str(exc.detail)]}})
            except exceptions.ValidationError as exc:
                detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
                errors = {
                    str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()
                }
                results.append({"index": index, "created": False, "errors": errors})
            except DjangoValidationError as exc:
                results.append({"index": index, "created": False, "errors": _errors_of(exc)})
            else:
                results.append(
                    {"index": index, "created": created, "shipment": ShipmentSerializer(shipment).data}
                )
        return Response({"results": results}, status=207)

    @extend_schema(
        summary="Retry a failed shipment", request=None, responses={200: ShipmentSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        shipment = self.get_object()
        try:
            shipment = retry_shipment(shipment, actor=actor_for(request))
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(_errors_of(exc)) from None
        return Response(ShipmentSerializer(shipment).data)


__all__ = ["OrderViewSet", "ShipmentViewSet"]
