"""The example platform's store: a small JSON API on loopback with a write log.

``GET /api/shop`` (facts), ``GET /api/orders?since=<iso>`` (orders changed since), ``GET
/api/products``, ``PUT /api/products/<id>`` (``{"quantity": n}`` or ``{"price": "1.00"}``) and
``POST /api/orders/<id>/shipments``. Every request needs ``X-Example-Key``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "example-key-0123456789"


class ExampleStore:
    def __init__(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        self.products: dict[str, dict[str, Any]] = {
            "501": {"id": "501", "sku": "MUG-1", "name": "Mug", "quantity": 40, "price": "9.50"},
            "502": {"id": "502", "sku": "CAP-1", "name": "Cap", "quantity": 12, "price": "15.00"},
        }
        self.orders: dict[str, dict[str, Any]] = {
            "9001": {
                "id": "9001",
                "number": "EX-9001",
                "status": "paid",
                "placed_at": now,
                "updated_at": now,
                "currency": "EUR",
                "email": "ann@example.com",
                "lines": [
                    {"id": "1", "product_id": "501", "sku": "MUG-1", "name": "Mug", "qty": 3, "price": "9.50"}
                ],
                "shipping": "4.50",
                "total": "33.00",
            }
        }
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("X-Example-Key") == API_KEY:
                    return True
                self._reply(401, {"error": "bad key"})
                return False

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                url = urlsplit(self.path)
                with store.lock:
                    if url.path == "/api/shop":
                        self._reply(
                            200,
                            {
                                "version": "1.0",
                                "currency": "EUR",
                                "statuses": ["paid", "shipped", "cancelled"],
                            },
                        )
                    elif url.path == "/api/orders":
                        since = (parse_qs(url.query).get("since") or [""])[0]
                        rows = [o for o in store.orders.values() if not since or o["updated_at"] > since]
                        self._reply(200, rows)
                    elif url.path == "/api/products":
                        self._reply(200, list(store.products.values()))
                    else:
                        self._reply(404, {"error": "not found"})

            def do_PUT(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                product_id = urlsplit(self.path).path.rsplit("/", 1)[-1]
                with store.lock:
                    product = store.products.get(product_id)
                    if product is None:
                        self._reply(404, {"error": "no such product"})
                        return
                    product.update({key: body[key] for key in ("quantity", "price") if key in body})
                    store.writes.append(("PUT", self.path, body))
                    self._reply(200, product)

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                order_id = urlsplit(self.path).path.split("/")[3]
                with store.lock:
                    order = store.orders.get(order_id)
                    if order is None:
                        self._reply(404, {"error": "no such order"})
                        return
                    order["status"] = "shipped"
                    store.writes.append(("POST", self.path, body))
                    self._reply(201, {"shipment": len(store.writes)})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ExampleStore:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
