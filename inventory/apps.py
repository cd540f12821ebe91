from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """The seller's product master and listings on channels (stock and price push)."""

    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        # Orders and channels announce moved reservations; the stock queue acts on them.
        from channels.events import reservations_moved, settings_described
        from channels.models import SyncJob
        from channels.sync import register_job
        from inventory.prices import on_settings_described
        from inventory.stock_queue import on_reservations_moved

        reservations_moved.connect(on_reservations_moved, dispatch_uid="inventory.stock_queue")
        settings_described.connect(on_settings_described, dispatch_uid="inventory.prices")
        register_job(SyncJob.STOCK, "inventory.tasks.push_stock")
        register_job(SyncJob.PRICES, "inventory.tasks.push_prices")
