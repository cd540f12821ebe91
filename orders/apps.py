from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Orders, lines and shipments downloaded from and confirmed to stores (sync engine)."""

    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from channels.models import SyncJob
        from channels.sync import register_job

        register_job(SyncJob.ORDERS, "orders.tasks.download_orders")
        register_job(SyncJob.SHIPMENTS, "orders.tasks.confirm_shipments")
