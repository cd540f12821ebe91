"""Shared helpers for the 3DCart tests: wire fixtures and a connector pointed at respx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

from connectors.base import ConnectorOptions
from connectors.threedcart.connector import ThreeDCartConnector

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "threedcart"
API = "https://apirest.3dcart.com/3dCartWebAPI/v2"
STORE_URL = "https://demo-store.3dcartstores.com"
PRIVATE_KEY = "0123456789abcdef0123456789abcdef"
PUBLIC_KEY = "PUBLICKEY32HEX"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def options(**overrides: Any) -> ConnectorOptions:
    values: dict[str, Any] = {
        "allow_private_hosts": True,
        "max_retries": 1,
        "backoff": 0.0,
        "timeout": 2.0,
        "app_keys": {"threedcart_private_key": PRIVATE_KEY, "threedcart_public_key": PUBLIC_KEY},
    }
    values.update(overrides)
    return ConnectorOptions(**values)


def fresh_token() -> str:
    """A token per test: the client-side bucket is per token and process-wide."""
    return uuid.uuid4().hex


def make_connector(token: str | None = None, **settings: Any) -> ThreeDCartConnector:
    base = {
        "currency": "USD",
        "timezone": "America/New_York",
        "processed_status": "4",
        "import_statuses": ["1", "2", "3", "4"],
        "order_lookback_days": 7,
    }
    connector = ThreeDCartConnector(
        STORE_URL, {"access_token": token or fresh_token()}, base | settings, options=options()
    )
    connector.client.http.sleep = lambda _seconds: None
    return connector


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def connector() -> Iterator[ThreeDCartConnector]:
    built = make_connector()
    yield built
    built.close()
