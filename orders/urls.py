"""Seller UI URLs for orders and shipments (namespace ``orders``)."""

from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("orders/", views.order_list, name="list"),
    path("orders/<uuid:order_id>/", views.order_detail, name="detail"),
    path("shipments/<uuid:shipment_id>/retry/", views.shipment_retry, name="shipment_retry"),
]
