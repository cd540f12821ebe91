"""A fourth platform that exists only in the test suite, to prove a platform is one package.

``connector.py`` declares everything the product needs and ``store.py`` is its store; nothing
outside this package names it. ``test_example_platform.py`` registers it and takes it through the
wizard, an order download and a stock push.
"""
