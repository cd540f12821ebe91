"""The sandbox answers exactly like storelink-bridge.php: same data in, byte-for-byte same JSON out.

For each schema family a MariaDB store and a sandbox store are seeded from the same generator with
the same clock, and every read action is compared whole (only the server's own clock and URL differ).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.http import StoreHttp
from connectors.opencart.bridge_client import BridgeClient
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import OpenCartSandbox, store_timezone
from tests.bridge.harness import SEED_DAYS, SEED_ORDERS, SEED_PRODUCTS, SEED_RNG, get_farm

pytestmark = pytest.mark.php


def client_for(url: str, credentials: dict[str, str]) -> BridgeClient:
    http = StoreHttp(url, platform="opencart", allow_private_hosts=True, timeout=10)
    return BridgeClient(http, credentials["api_username"], credentials["api_key"])


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in keys}


@pytest.mark.parametrize(
    ("family", "prefix"), [("2.3", "oc_"), ("3.0.3", "shop7_"), ("4.0", "oc_"), ("4.1", "shop7_")]
)
def test_sandbox_replies_match_the_php_bridge(family: str, prefix: str) -> None:
    now_local = datetime.now(ZoneInfo(store_timezone(family))).replace(tzinfo=None, microsecond=0)
    now_local -= timedelta(minutes=5)
    php = get_farm().store(family, prefix, "parity", now_local=now_local)
    app = OpenCartSandbox(family=family, prefix=prefix, rng_seed=SEED_RNG)
    app.seed(SEED_PRODUCTS, SEED_ORDERS, SEED_DAYS, SEED_RNG, now_local=now_local)
    with SandboxServer(app) as server:
        real = client_for(php.url, php.credentials())
        emulated = client_for(server.url, app.connector_credentials())

        def both(action: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
            return real.call("GET", action, params), emulated.call("GET", action, params)

        real_info, emulated_info = both("info")
        for info in (real_info, emulated_info):
            info.pop("server_time")
            info["stores"][0].pop("url")
        assert real_info == emulated_info
        assert (
            real_info["schema_family"] == {"2.3": "2.x", "3.0.3": "3.0", "4.0": "4.0", "4.1": "4.1"}[family]
        )

        assert both("statuses")[0] == both("statuses")[1]

        real_products, emulated_products = both("products", {"after": 0, "limit": 500})
        assert real_products == emulated_products
        assert any(product["options"] for product in real_products["products"])

        query = {"since": "2000-01-01 00:00:00", "limit": 250}
        real_orders, emulated_orders = both("orders", query)
        assert without(real_orders, "until") == without(emulated_orders, "until")
        assert len(real_orders["orders"]) == app.order_count()

        cursor_query = {"cursor": real_orders["orders"][20]["change_time"] + "|0", "limit": 9}
        first, second = both("orders", cursor_query)
        assert without(first, "until") == without(second, "until")

        for order_id in (3, 4, 12):
            real_order, emulated_order = both("order", {"id": order_id})
            assert real_order == emulated_order
            assert real_order["order"]["history"]
