from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Orders, lines and shipments downloaded from and confirmed to stores (sync engine)."""

    name = "orders"
    verbose_name = "Orders"
