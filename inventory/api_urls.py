"""REST API v1 routes for products and listings (mounted under ``/api/v1/``)."""

from rest_framework.routers import SimpleRouter

from inventory.api import ListingViewSet, ProductViewSet


class OptionalSlashRouter(SimpleRouter):
    """``/api/v1/products/bulk`` and ``/api/v1/products/bulk/`` both work.

    ``SimpleRouter(trailing_slash=...)`` only knows "/" or nothing (any truthy value becomes "/"),
    and a client that POSTs without the slash must not get a 404 or a redirect that drops its body.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("products", ProductViewSet, basename="product")
router.register("listings", ListingViewSet, basename="listing")

urlpatterns = router.urls
