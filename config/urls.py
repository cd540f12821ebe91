"""Top-level URLs: the seller UI, the admin, the REST API with its schema, callbacks, health."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from channels.callbacks import threedcart_callback, threedcart_channel_callback
from config.views import api_not_found, healthz
from orders import dashboard

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("channels.api_urls")),
    path("api/v1/", include("orders.api_urls")),
    path("api/v1/", include("inventory.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path("callbacks/threedcart/", threedcart_callback, name="threedcart-callback"),
    path(
        "callbacks/threedcart/<str:secret>/", threedcart_channel_callback, name="threedcart-channel-callback"
    ),
    path("healthz", healthz, name="healthz"),
    # The signed-in home; the channel list it replaced is at /channels/ (old paging links redirect).
    path("", dashboard.dashboard, name="dashboard"),
    path("dashboard/progress/", dashboard.dashboard_progress, name="dashboard_progress"),
    path("", include("accounts.urls")),
    path("", include("channels.urls")),
    path("", include("orders.urls")),
    path("", include("inventory.urls")),
]

# A database outage outside a view answers 503 + Retry-After, not the 500 page.
handler500 = "config.views.server_error"
