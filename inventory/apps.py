from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """The seller's product master and listings on channels (stock and price push)."""

    name = "inventory"
    verbose_name = "Inventory"
