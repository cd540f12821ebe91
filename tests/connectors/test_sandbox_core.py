"""The sandbox server itself: real HTTP on loopback, faults applied before the platform code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.sandbox.core import Faults, SandboxApp, SandboxRequest, SandboxResponse, SandboxServer


class EchoStore(SandboxApp):
    """The smallest store: one table, one route, enough to exercise the server and the knobs."""

    platform = "echo"

    def create_schema(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS item (sku TEXT PRIMARY KEY, qty INTEGER)")

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "PUT":
            payload = request.json()
            with self.transaction() as db:
                db.execute("INSERT OR REPLACE INTO item VALUES (?, ?)", (payload["sku"], payload["qty"]))
            self.record_write("stock", payload["sku"], payload["qty"])
        rows = [dict(r) for r in self.db.execute("SELECT * FROM item ORDER BY sku")]
        return SandboxResponse.json({"items": rows, "q": request.arg("q")})

    def seed(self, products: int, orders: int, days: int, rng_seed: int = 0) -> None:
        for i in range(products):
            self.db.execute("INSERT OR REPLACE INTO item VALUES (?, ?)", (f"SKU-{i}", i))

    def connector_credentials(self) -> dict[str, Any]:
        return {}

    def add_order(self, **kwargs: Any) -> str:
        return "0"

    def stock_of(self, sku: str) -> int:
        row = self.db.execute("SELECT qty FROM item WHERE sku = ?", (sku,)).fetchone()
        return int(row["qty"])

    def price_of(self, sku: str) -> Decimal:
        return Decimal("0")

    def tracking_numbers(self, order_external_id: str) -> list[str]:
        return []

    def order_status(self, order_external_id: str) -> str:
        return ""

    def order_count(self) -> int:
        return 0


@pytest.fixture
def server():
    with SandboxServer(EchoStore(faults=Faults(seed=1))) as srv:
        yield srv


def test_serves_real_http_and_records_writes(server: SandboxServer) -> None:
    server.app.seed(2, 0, 1)
    reply = httpx.put(f"{server.url}/x?q=1", json={"sku": "SKU-9", "qty": 4})
    assert reply.status_code == 200
    assert reply.json()["q"] == "1"
    assert server.app.stock_of("SKU-9") == 4
    assert server.app.writes() == [{"kind": "stock", "key": "SKU-9", "value": 4}]


def test_rate_limit_knob_answers_429_with_retry_after(server: SandboxServer) -> None:
    httpx.post(f"{server.url}/__sandbox__/faults", json={"rate_limit_every": 2, "retry_after": 3})
    first = httpx.get(f"{server.url}/a")
    second = httpx.get(f"{server.url}/a")
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "3"


def test_error_rate_one_fails_every_request_and_control_paths_never(server: SandboxServer) -> None:
    server.app.faults.update({"error_rate": 1.0, "kinds": ["500"]})
    assert httpx.get(f"{server.url}/a").status_code == 500
    assert httpx.get(f"{server.url}/__sandbox__/state").status_code == 200


def test_timeout_fault_drops_the_connection(server: SandboxServer) -> None:
    server.app.faults.update({"error_rate": 1.0, "kinds": ["timeout"], "timeout_seconds": 0.2})
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/a", timeout=2)


def test_truncated_fault_halves_the_body(server: SandboxServer) -> None:
    server.app.seed(5, 0, 1)
    whole = httpx.get(f"{server.url}/a").content
    server.app.faults.update({"error_rate": 1.0, "kinds": ["truncated"]})
    half = httpx.get(f"{server.url}/a").content
    assert half == whole[: len(whole) // 2]


def test_unknown_fault_knob_is_refused(server: SandboxServer) -> None:
    reply = httpx.post(f"{server.url}/__sandbox__/faults", json={"nonsense": 1})
    assert reply.status_code == 400
    assert "nonsense" in reply.json()["error"]


def test_drop_reply_after_write_applies_the_write_and_answers_nothing(server: SandboxServer) -> None:
    server.app.faults.update({"drop_reply_after_write": 1})
    assert httpx.get(f"{server.url}/a").status_code == 200  # reads are not counted
    with pytest.raises(httpx.HTTPError):
        httpx.put(f"{server.url}/x", json={"sku": "SKU-7", "qty": 3}, timeout=2)
    assert server.app.stock_of("SKU-7") == 3, "the write must have taken effect"
    assert httpx.put(f"{server.url}/x", json={"sku": "SKU-7", "qty": 5}).status_code == 200
    assert server.app.faults.drop_reply_after_write == 0
