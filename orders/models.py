"""Order, OrderLine and Shipment live here; the sync engine adds them (DESIGN.md §3)."""
