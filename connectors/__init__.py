"""Store connectors: pure Python, no Django.

Everything a Storelink worker knows about talking to OpenCart, X-Cart and 3DCart lives here, behind
the contract in :mod:`connectors.base`. The Django apps build connectors through
:func:`connectors.registry.build_connector` and never import a platform package directly.
"""
