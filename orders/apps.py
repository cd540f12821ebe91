from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Orders, lines and shipments downloaded from and confirmed to stores (sync engine)."""

    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from channels.events import product_master_changed
        from channels.models import SyncJob
        from channels.sync import register_job
        from orders.product_master import on_product_master_changed

        # Inventory announces product master changes; orders judge their unknown-SKU flags again.
        product_master_changed.connect(on_product_master_changed, dispatch_uid="orders.unknown_sku")

        register_job(SyncJob.ORDERS, "orders.tasks.download_orders")
        register_job(SyncJob.SHIPMENTS, "orders.tasks.confirm_shipments")
