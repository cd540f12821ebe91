"""Seller UI URLs for orders and shipments (namespace ``orders``)."""

from django.urls import path

from orders import bulk_views, views

app_name = "orders"

urlpatterns = [
    path("orders/", views.order_list, name="list"),
    path("orders/export.csv", bulk_views.order_export, name="export"),
    path("orders/to-ship/", bulk_views.to_ship, name="to_ship"),
    path("orders/to-ship/csv/", bulk_views.shipment_csv, name="shipment_csv"),
    path("orders/<uuid:order_id>/", views.order_detail, name="detail"),
    path("shipments/<uuid:shipment_id>/retry/", views.shipment_retry, name="shipment_retry"),
]
