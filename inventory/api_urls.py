"""REST API v1 routes for products and listings (mounted under ``/api/v1/``)."""

from rest_framework.routers import SimpleRouter

from inventory.api import ListingViewSet, ProductViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("products", ProductViewSet, basename="product")
router.register("listings", ListingViewSet, basename="listing")

urlpatterns = router.urls
