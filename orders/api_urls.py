"""REST API v1 routes for orders, shipments, sync runs and "sync now" (mounted under ``/api/v1/``)."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from orders.api import ChannelSyncViewSet, OrderViewSet, ShipmentViewSet, SyncRunViewSet

router = SimpleRouter()
# Both ``/shipments`` and ``/shipments/`` (DRF turns any truthy ``trailing_slash`` argument into "/").
router.trailing_slash = "/?"
router.register("orders", OrderViewSet, basename="order")
router.register("shipments", ShipmentViewSet, basename="shipment")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")

urlpatterns = [
    re_path(
        r"^channels/(?P<pk>[^/.]+)/sync/?$",
        ChannelSyncViewSet.as_view({"post": "sync"}),
        name="channel-sync",
    ),
    *router.urls,
]
