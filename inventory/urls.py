"""Seller UI URLs for products and listings (namespace ``inventory``)."""

from django.urls import path

from inventory import csv_views, views

app_name = "inventory"

urlpatterns = [
    path("products/", views.product_list, name="product_list"),
    path("products/new/", views.product_create, name="product_create"),
    path("products/export.csv", csv_views.product_export, name="product_export"),
    path("products/import/", csv_views.product_import, name="product_import"),
    path("products/price-basis/", views.price_basis, name="price_basis"),
    path("products/unmatched/", views.unmatched, name="unmatched"),
    path("products/<uuid:product_id>/", views.product_detail, name="product_detail"),
    path("products/<uuid:product_id>/inline/", views.product_inline, name="product_inline"),
    path("products/<uuid:product_id>/delete/", views.product_delete, name="product_delete"),
    path("listings/<uuid:listing_id>/", views.listing_update, name="listing_update"),
    path("channels/<uuid:channel_id>/push/", views.push_now, name="push_now"),
    path("channels/<uuid:channel_id>/import-listings/", views.import_listings, name="import_listings"),
]
