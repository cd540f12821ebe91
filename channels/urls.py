"""Seller UI URLs for sales channels (namespace ``channels``); the dashboard is the home page."""

from django.urls import path

from channels import progress, views, wizard_views

app_name = "channels"

urlpatterns = [
    path("channels/", views.channel_list, name="list"),
    path("channels/add/", wizard_views.wizard_choose, name="add"),
    path("channels/add/cancel/", wizard_views.wizard_cancel, name="add_cancel"),
    path("channels/add/<slug:platform>/", wizard_views.wizard_name, name="add_name"),
    path("channels/add/<slug:platform>/connection/", wizard_views.wizard_connection, name="add_connection"),
    path("channels/add/<slug:platform>/settings/", wizard_views.wizard_settings, name="add_settings"),
    path("channels/opencart/storelink-bridge.php", views.opencart_bridge, name="opencart_bridge"),
    path("channels/<uuid:channel_id>/", views.channel_detail, name="detail"),
    path("channels/<uuid:channel_id>/toggle/", views.channel_toggle, name="toggle"),
    path("channels/<uuid:channel_id>/state/", views.channel_state, name="state"),
    path("channels/<uuid:channel_id>/progress/", progress.channel_progress, name="progress"),
    path("channels/<uuid:channel_id>/test/", views.channel_test, name="test"),
    path("channels/<uuid:channel_id>/sync/", views.channel_sync_now, name="sync_now"),
    path("channels/<uuid:channel_id>/reauthorise/", views.channel_reauthorise, name="reauthorise"),
    path("channels/<uuid:channel_id>/remove/", views.channel_remove, name="remove"),
]
