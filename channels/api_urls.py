"""REST API v1 routes."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from channels.api import ChannelSyncViewSet, ChannelViewSet, SyncRunViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("channels", ChannelViewSet, basename="channel")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")

urlpatterns = [
    re_path(
        r"^channels/(?P<pk>[^/.]+)/sync/?$",
        ChannelSyncViewSet.as_view({"post": "sync"}),
        name="channel-sync",
    ),
    *router.urls,
]
