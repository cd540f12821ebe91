"""Settings every test gets, whatever its app.

- Static files: production uses whitenoise's manifest storage, which needs ``collectstatic`` first;
  tests render templates straight from ``static/`` instead, so a fresh clone can run them.
- Cache: with ``REDIS_URL`` set every pytest worker shares one Redis; a key prefix per test keeps
  throttle counters and the like from leaking between tests and workers. The per-store gates get a
  prefix of their own for the same reason, and each test starts with fresh process gates: a store's
  ``Retry-After`` in one test must not hold up the next test's requests to the same host.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_test_settings(request: pytest.FixtureRequest) -> None:
    if "django" not in request.config.pluginmanager.list_name_plugin().__repr__():
        return
    settings: Any = request.getfixturevalue("settings")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    caches = {name: dict(config) for name, config in settings.CACHES.items()}
    for config in caches.values():
        config["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches
    settings.STORE_GATE_KEY_PREFIX = f"test-{uuid.uuid4().hex[:12]}:store-gate:"


@pytest.fixture(autouse=True)
def _fresh_store_gates() -> None:
    from connectors import http

    with http._gates_lock:
        http._gates.clear()
