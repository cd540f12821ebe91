"""REST API for channels, their sync runs and "sync now": thin views over :mod:`channels.services`
and :mod:`channels.sync`, scoped by the base viewset."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import AccountScopedViewSet, StrictCursorPagination, text_param, uuid_value
from accounts.models import Role
from accounts.tenancy import account_for, actor_for, require_role
from channels import services, sync
from channels.models import SalesChannel, SyncJob, SyncRun, SyncState
from channels.serializers import (
    CHANNEL_CREATE_SCHEMA,
    ChannelCreateSerializer,
    ChannelReauthoriseSerializer,
    ChannelSerializer,
    ChannelUpdateSerializer,
    ConnectionTestSerializer,
    ErrorSerializer,
    StrictSerializer,
    fits_another_platform,
    shape_errors,
)

ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid fields or the store refused the credentials."),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid API key."),
    403: OpenApiResponse(ErrorSerializer, description="Your role does not allow this."),
    404: OpenApiResponse(ErrorSerializer, description="No such channel in your account."),
}
STORE_ERRORS = {**ERRORS, 502: OpenApiResponse(ErrorSerializer, description="The store failed to answer.")}
#: Refusals of a well-formed request by the account's or the store's current state. ``errors``
#: names the fields.
CONFLICT_TEXT = (
    "The request fits the schema but not the current state: this store is already connected in your "
    "account (its orders would be downloaded twice, compared without case, default port, trailing "
    "slash or index.php), the name is taken, a status or currency is not one the store reported (or "
    "the store has not reported its currency yet), or the values only fit another platform's shape."
)
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description=CONFLICT_TEXT)}


def _own_shape(channel: SalesChannel, part: str, data: Any) -> None:
    """Refuse ``credentials``/``settings`` that are not the channel's platform's shape: 409 when
    they fit another platform's (the schema, which cannot know the channel, allows them), else 400."""
    errors = shape_errors(channel.platform, part, data, partial=True)
    if not errors:
        return
    if fits_another_platform(channel.platform, part, data):
        raise services.ChannelConflict(errors)
    raise services.ChannelError(errors)


@extend_schema_view(
    list=extend_schema(summary="List channels", responses={200: ChannelSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="Get a channel", responses={200: ChannelSerializer, **ERRORS}),
)
class ChannelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    AccountScopedViewSet,
):
    """Sales channels of the account (removed channels are not listed and answer 404)."""

    scoped_queryset: ClassVar[QuerySet[Any]] = SalesChannel.objects.live()
    serializer_class = ChannelSerializer
    http_method_names: ClassVar[list[str]] = ["get", "post", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("account").order_by("name")

    def _show(self, channel: SalesChannel, code: int = status.HTTP_200_OK) -> Response:
        return Response(ChannelSerializer(channel).data, status=code)

    @extend_schema(
        summary="Connect a store",
        description="Tests the connection first (except a 3DCart channel still waiting for its token).",
        request=CHANNEL_CREATE_SCHEMA,
        responses={201: ChannelSerializer, **STORE_ERRORS, **CONFLICT},
    )
    def create(self, request: Request) -> Response:
        incoming = ChannelCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        channel = services.add_channel(
            account_for(request),
            actor=actor_for(request),
            platform=data["platform"],
            name=data["name"],
            store_url=data["store_url"],
            credentials=data.get("credentials") or {},
            settings=data.get("settings") or {},
        )
        return self._show(channel, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rename a channel or change its settings",
        request=ChannelUpdateSerializer,
        responses={200: ChannelSerializer, **ERRORS, **CONFLICT},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        incoming = ChannelUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if "settings" in data:
            _own_shape(channel, "settings", data["settings"])
        channel = services.update_channel_settings(
            channel, actor=actor_for(request), settings=data.get("settings"), name=data.get("name")
        )
        return self._show(channel)

    @extend_schema(
        summary="Remove a channel",
        description="Soft delete: jobs stop, credentials are wiped, orders stay. Needs the admin role.",
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.remove_channel(self.get_object(), actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Enable a channel", request=None, responses={200: ChannelSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str | None = None) -> Response:
        return self._show(services.enable_channel(self.get_object(), actor=actor_for(request)))

    @extend_schema(summary="Disable a channel", request=None, responses={200: ChannelSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str | None = None) -> Response:
        return self._show(services.disable_channel(self.get_object(), actor=actor_for(request)))

    @extend_schema(
        summary="Test the connection with the stored credentials",
        description=(
            "On failure the channel's connection state is updated (needs_reauth for bad credentials)."
        ),
        request=None,
        responses={200: ConnectionTestSerializer, **STORE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        facts = services.check_channel_connection(channel, actor=actor_for(request))
        channel.refresh_from_db()
        body = {
            "ok": True,
            "connection_state": channel.connection_state,
            "store_facts": services.store_facts_to_dict(facts),
        }
        return Response(body)

    @extend_schema(
        summary="Reauthorise with new or confirmed credentials",
        description="Re-tests the store; nothing is saved if the test fails. Needs the admin role.",
        request=ChannelReauthoriseSerializer,
        responses={200: ChannelSerializer, **STORE_ERRORS, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reauthorise(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        incoming = ChannelReauthoriseSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        _own_shape(channel, "credentials", data.get("credentials") or {})
        channel = services.reauthorise_channel(
            channel,
            actor=actor_for(request),
            credentials=data.get("credentials") or {},
            store_url=data.get("store_url"),
        )
        return self._show(channel)


#: Sync runs and "sync now" take no credentials, so a 400 is only ever bad input.
SYNC_ERRORS: dict[int, OpenApiResponse] = {
    **ERRORS,
    400: OpenApiResponse(ErrorSerializer, description="Invalid input."),
    404: OpenApiResponse(ErrorSerializer, description="Not found in your account."),
}


class SyncRunSerializer(serializers.ModelSerializer):
    channel = serializers.UUIDField(source="channel_id", read_only=True)

    class Meta:
        model = SyncRun
        fields: ClassVar = [
            "id",
            "channel",
            "job",
            "state",
            "created_at",
            "started_at",
            "finished_at",
            "fetched",
            "created",
            "updated",
            "unchanged",
            "failed",
            "error",
            "attempt",
            "checks",
            "last_checked_at",
        ]
        read_only_fields = fields


class SyncRequestSerializer(StrictSerializer):
    jobs = serializers.ListField(
        child=serializers.ChoiceField(choices=[job for job in SyncJob.values if job != SyncJob.TEST]),
        required=False,
        help_text="Which jobs to run now; default: orders, shipments, and stock/prices where switched on.",
    )


class SyncResponseSerializer(serializers.Serializer):
    channel = serializers.UUIDField()
    jobs = serializers.ListField(child=serializers.CharField())


# --------------------------------------------------------------------------------------------------
# Sync runs and "sync now"
# --------------------------------------------------------------------------------------------------


class CreatedCursorPagination(StrictCursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        summary="List sync runs",
        description="Every run of every job, newest first, with counts and the error in words.",
        parameters=[
            OpenApiParameter("channel", OpenApiTypes.UUID, description="Only this channel's runs."),
            OpenApiParameter(
                "job", str, enum=SyncJob.values, description="orders, shipments, stock, prices or test."
            ),
            OpenApiParameter(
                "state", str, enum=SyncState.values, description="queued, running, succeeded or failed."
            ),
        ],
        responses={200: SyncRunSerializer(many=True), **SYNC_ERRORS},
    ),
    retrieve=extend_schema(summary="Get a sync run", responses={200: SyncRunSerializer, **SYNC_ERRORS}),
)
class SyncRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """What the background jobs did on the account's channels."""

    scoped_queryset: ClassVar[QuerySet[Any]] = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    pagination_class = CreatedCursorPagination

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        params = self.request.query_params
        if "channel" in params:
            queryset = queryset.filter(channel_id=uuid_value(params["channel"], "channel"))
        job = text_param(params, "job", SyncJob.values)
        if job:
            queryset = queryset.filter(job=job)
        state = text_param(params, "state", SyncState.values)
        if state:
            queryset = queryset.filter(state=state)
        return queryset


class ChannelSyncViewSet(AccountScopedViewSet):
    """``POST /api/v1/channels/{id}/sync``: run the channel's jobs now."""

    scoped_queryset: ClassVar[QuerySet[Any]] = SalesChannel.objects.live()
    serializer_class = SyncRequestSerializer

    @extend_schema(
        summary="Sync a channel now",
        description=(
            "Enqueues the channel's jobs at once (orders and pending shipments; stock and prices when "
            "switched on). Refused with 409 while the channel is disabled or needs reauthorising."
        ),
        request=SyncRequestSerializer,
        responses={202: SyncResponseSerializer, 409: ErrorSerializer, **SYNC_ERRORS},
    )
    def sync(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        require_role(request, Role.MEMBER)
        incoming = SyncRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        if not SalesChannel.objects.syncable().filter(pk=channel.pk).exists():
            reason = (
                "This channel needs reauthorising before it can sync."
                if channel.connection_state == "needs_reauth"
                else "This channel is disabled or not connected yet; enable it first."
            )
            return Response({"message": reason, "code": "not_syncable"}, status=status.HTTP_409_CONFLICT)
        jobs = sync.sync_now(channel, incoming.validated_data.get("jobs"))
        return Response({"channel": str(channel.pk), "jobs": jobs}, status=status.HTTP_202_ACCEPTED)
