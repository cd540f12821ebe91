"""Product (SKU master) and Listing live here; the sync engine adds them (DESIGN.md §3)."""
