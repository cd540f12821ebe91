"""REST API v1 routes."""

from rest_framework.routers import SimpleRouter

from channels.api import ChannelViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("channels", ChannelViewSet, basename="channel")

urlpatterns = router.urls
