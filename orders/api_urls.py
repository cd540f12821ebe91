"""REST API v1 routes for orders and shipments (mounted under ``/api/v1/``)."""

from rest_framework.routers import SimpleRouter

from orders.api import OrderViewSet, ShipmentViewSet

router = SimpleRouter()
# Both ``/shipments`` and ``/shipments/`` (DRF turns any truthy ``trailing_slash`` argument into "/").
router.trailing_slash = "/?"
router.register("orders", OrderViewSet, basename="order")
router.register("shipments", ShipmentViewSet, basename="shipment")

urlpatterns = router.urls
