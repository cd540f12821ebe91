"""Fixtures for inventory tests (helpers live in :mod:`tests.inventory.stores`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Account
from channels import services as channels_services
from tests.inventory.stores import Store, start_store


@pytest.fixture
def sandbox_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Loopback store URLs allowed, quick retries, and no waiting on back-off meant for real stores."""
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.STORE_HTTP_TIMEOUT = 5.0
    settings.STORE_HTTP_MAX_RETRIES = 1
    real_options = channels_services.connector_options
    monkeypatch.setattr(
        channels_services,
        "connector_options",
        lambda platform="": dataclasses.replace(real_options(platform), backoff=0.01),
    )
    return settings


@pytest.fixture
def store_factory(sandbox_settings: Any) -> Iterator[Any]:
    """``store_factory(account, platform, options, products=..., **channel_settings)``; stops them all."""
    started: list[Store] = []

    def make(account: Account, platform: str, options: dict[str, Any] | None = None, **kwargs: Any) -> Store:
        store = start_store(account, platform, options or {}, sandbox_settings, **kwargs)
        started.append(store)
        return store

    yield make
    for store in started:
        store.server.stop()
