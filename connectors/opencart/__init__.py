"""OpenCart 2.1–4.1: the core API for order history, the Storelink store bridge for the rest."""
