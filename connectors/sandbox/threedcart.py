"""A wire-faithful stand-in for 3DCart's REST API (one store behind ``/3dCartWebAPI/v2``).

It reproduces what 3DCart's API documentation and recorded replies of live stores show a client must survive:

- header auth (``SecureURL`` + ``PrivateKey`` + ``Token``; 401 otherwise, or when the token expired),
- a leaky bucket per token (50 requests, leaking 2 per second) answering 429,
- 1-based ``offset``/``limit`` paging (limits silently clamped to 300 orders / 200 products), 404
  when nothing matches, 400 "Offset amount exceeds the total number of records" past the end,
  ``countonly=1`` → ``{"TotalCount": n}``, lists sorted by id and not by date,
- single GETs as an array of one, PascalCase members, naive store-local timestamps,
- ``lastupdatestart`` honoured to the *date* only (as documented), ``datestart`` to the second,
- writes answered with ``[{"Key","Value","Status","Message"}]`` per item, 206 when some failed,
- collection-replace semantics: an order PUT carrying ``ShipmentList``/``OrderItemList`` or a
  product PUT carrying ``AdvancedOptionList`` deletes every existing row and keeps only those sent,
- ``ShipmentMethodName`` outside ``[A-Za-z0-9 .()-]`` → 400, variant stock must be an integer,
- ``GET /Orders/{n}`` by *invoice number* (as documented) and ``GET /Orders?orderid=`` by OrderID
  (as recorded), so a client that mixes the two reads the wrong order,
- bundle component lines (``Bundle Item: X<br>Product name<br>…``) in about a quarter of orders,
- ``errors_as_200``: every error answered with HTTP 200 and the error array, as recorded live.

The seller side is here too: :meth:`ThreeDCartSandbox.post_callback` plays the store posting the
AUTHORIZE / REMOVE callback to Storelink (also as ``POST /admin/rest-api/authorize``).
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from connectors.sandbox.core import Faults, SandboxApp, SandboxRequest, SandboxResponse, seeded_sku

API_PREFIXES = ("/3dcartwebapi/v2/", "/3dcartwebapi/v1/")
ORDER_PAGE_MAX = 300
PRODUCT_PAGE_MAX = 200
OTHER_PAGE_MAX = 500
DEFAULT_LIMIT = 10
OFFSET_PAST_END = "Offset amount exceeds the total number of records"
TIMESTAMP = "%Y-%m-%dT%H:%M:%S"
CENT = Decimal("0.01")
#: The store's sales tax (percent). ``Price`` is net: 3DCart has no tax-inclusive price field and adds
#: ``SalesTax`` to the order.
SALES_TAX_RATE = Decimal("7")

STATUS_TABLE: tuple[tuple[int, str, bool], ...] = (
    (1, "New", True),
    (2, "Processing", True),
    (3, "Partial", True),
    (4, "Shipped", True),
    (5, "Cancel", True),
    (6, "Hold", True),
    (7, "Not Completed", False),
    (8, "Custom 1", False),
    (9, "Custom 2", False),
    (10, "Custom 3", False),
    (11, "Unpaid", True),
)
SEED_STATUSES = (1, 1, 1, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 11)
_METHOD_NAME_OK = re.compile(r"[A-Za-z0-9 .()\-]*")
_QUERY_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")

SHIPMENT_FIELDS = (
    "ShipmentBoxes",
    "ShipmentInternalComment",
    "ShipmentOrderStatus",
    "ShipmentAddress",
    "ShipmentAddress2",
    "ShipmentAlias",
    "ShipmentCity",
    "ShipmentCompany",
    "ShipmentCost",
    "ShipmentCountry",
    "ShipmentEmail",
    "ShipmentFirstName",
    "ShipmentLastName",
    "ShipmentMethodID",
    "ShipmentMethodName",
    "ShipmentShippedDate",
    "ShipmentPhone",
    "ShipmentState",
    "ShipmentZipCode",
    "ShipmentTax",
    "ShipmentWeight",
    "ShipmentTrackingCode",
    "ShipmentUserID",
    "ShipmentNumber",
    "ShipmentAddressTypeID",
)
ORDER_SCALARS = (
    "InternalComments",
    "CustomerComments",
    "ExternalComments",
    "AlternateOrderID",
    "SalesPerson",
)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _num(value: Any) -> int | float:
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _result(key: str, value: Any, status: int, message: str) -> dict[str, str]:
    return {"Key": key, "Value": str(value), "Status": str(status), "Message": message}


def _error(status: int, message: str) -> SandboxResponse:
    return SandboxResponse.json([_result("Error", "", status, message)], status)


def _as_200_error_array(response: SandboxResponse) -> SandboxResponse:
    """The same error with HTTP 200: ``[{"Key": "Error", "Value": "", "Status": "<code>", "Message": …}]``."""
    message = ""
    try:
        body = json.loads(response.body.decode("utf-8")) if response.body else None
    except ValueError:
        body = None
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        message = str(body.get("Message") or "")
    if not message:
        message = {404: "Not Found", 401: "Authorization has been denied for this request."}.get(
            response.status, "The request is invalid."
        )
    headers = {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
    return SandboxResponse.json([_result("Error", "", response.status, message)], 200, headers)


def _store_key(url: str) -> str:
    text = url.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text)
    return text.split("/")[0].removeprefix("www.")


class _BadRequest(Exception):
    pass


class ThreeDCartSandbox(SandboxApp):
    """One 3DCart store in SQLite, served the way ``apirest.3dcart.com`` serves it."""

    platform = "threedcart"

    def __init__(
        self,
        db_path: str = ":memory:",
        faults: Faults | None = None,
        *,
        timezone: str = "America/New_York",
        secure_url: str = "",
        currency: str = "USD",
        bucket_size: int | str = 50,
        leak_rate: float | str = 2.0,
        public_key: str = "",
        private_key: str = "",
        token: str = "",
        errors_as_200: bool | str = False,
    ) -> None:
        self.zone = ZoneInfo(timezone)
        #: Answer every error with HTTP 200 and the error array as the body, as live 3DCart stores
        #: were recorded doing: a client must look at the body, not only at the status code.
        self.errors_as_200 = str(errors_as_200).lower() in ("1", "true", "yes")
        self.currency = currency
        self.bucket_size = int(bucket_size)
        self.leak_rate = float(leak_rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._replacements: list[dict[str, Any]] = []
        super().__init__(db_path, faults)
        with self.lock:
            suffix = secrets.token_hex(4)
            self.public_key = self._meta("public_key", public_key or secrets.token_hex(16))
            self.private_key = self._meta("private_key", private_key or secrets.token_hex(16))
            self.token = self._meta("token", token or secrets.token_hex(16))
            self.secure_url = self._meta(
                "secure_url", secure_url or f"https://sandbox-{suffix}.3dcartstores.com"
            )
            self.seeded_days = int(self._meta("seeded_days", "7"))

    # -- schema and meta ---------------------------------------------------------------------------

    def create_schema(self) -> None:
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS order_status (
                id INTEGER PRIMARY KEY, sorting INTEGER, definition TEXT, text TEXT, visible INTEGER);
            CREATE TABLE IF NOT EXISTS product (
                catalog_id INTEGER PRIMARY KEY, sku TEXT, name TEXT, price TEXT, cost TEXT,
                retail_price TEXT, stock TEXT, hide INTEGER DEFAULT 0, last_update TEXT,
                categories TEXT DEFAULT '[]');
            CREATE TABLE IF NOT EXISTS variant (
                catalog_id INTEGER, code TEXT, suffix TEXT, name TEXT, stock INTEGER, price TEXT,
                cost TEXT, weight TEXT, gtin TEXT DEFAULT '', PRIMARY KEY (catalog_id, code));
            CREATE TABLE IF NOT EXISTS orders (
                order_id INTEGER PRIMARY KEY, invoice_prefix TEXT, invoice_number INTEGER,
                order_date TEXT, last_update TEXT, status_id INTEGER, data TEXT);
            CREATE TABLE IF NOT EXISTS shipment (
                order_id INTEGER, shipment_id INTEGER, position INTEGER, data TEXT,
                PRIMARY KEY (order_id, shipment_id));
            CREATE TABLE IF NOT EXISTS item (
                order_id INTEGER, item_index_id INTEGER, position INTEGER, data TEXT,
                PRIMARY KEY (order_id, item_index_id));
            """
        )
        if not self.db.execute("SELECT 1 FROM order_status LIMIT 1").fetchone():
            for code, name, visible in STATUS_TABLE:
                self.db.execute(
                    "INSERT INTO order_status VALUES (?, ?, ?, ?, ?)", (code, code, name, name, int(visible))
                )

    def _meta(self, key: str, default: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row:
            return str(row["value"])
        self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, default))
        return default

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def local_now(self) -> datetime:
        """The store's wall clock (naive, in its own zone), skewed by the fault knob."""
        return datetime.fromtimestamp(self.now(), self.zone).replace(tzinfo=None, microsecond=0)

    def _stamp(self) -> str:
        return self.local_now().strftime(TIMESTAMP)

    # -- what a channel for this store is saved with -----------------------------------------------

    def connector_credentials(self) -> dict[str, Any]:
        return {"access_token": self.token}

    def connector_store_url(self) -> str:
        return self.secure_url

    def connector_options(self) -> dict[str, Any]:
        return {
            "api_base": f"{self.base_url}/3dCartWebAPI/v2",
            "app_keys": {
                "threedcart_private_key": self.private_key,
                "threedcart_public_key": self.public_key,
            },
        }

    def connector_settings(self) -> dict[str, Any]:
        seeded = sorted({str(code) for code, _, _ in STATUS_TABLE if str(code) != "7"}, key=int)
        return {
            "currency": self.currency,
            "timezone": self.zone.key,
            "processed_status": "4",
            "import_statuses": seeded,
            "order_lookback_days": min(90, max(7, self.seeded_days + 2)),
            "order_interval_minutes": 5,
            "stock_sync": True,
            "price_sync": True,
        }

    def rotate_token(self) -> str:
        """The seller removes and re-adds Storelink: a new token; the old one gets 401 from now on."""
        with self.lock:
            self.token = secrets.token_hex(16)
            self._set_meta("token", self.token)
        return self.token

    # -- the seller's side: the AUTHORIZE / REMOVE callback ------------------------------------------

    def revoke_token(self) -> None:
        """The merchant removes Storelink's app: the token is withdrawn and every request gets 401
        until the app is authorised again (:meth:`rotate_token`)."""
        with self.lock:
            self.token = ""
            self._set_meta("token", "")

    def callback_payload(
        self, action: str = "AUTHORIZE", *, timestamp: datetime | None = None, **overrides: str
    ) -> dict[str, str]:
        """The body 3DCart posts to an app's CallBackURL (TimeStamp in Eastern time, per the docs).

        ``timestamp`` (aware) replaces the store's clock; ``overrides`` replace members by name
        (``TokenKey=...``, ``SecureURL=...``), for playing a forged or garbled post.
        """
        moment = timestamp or datetime.fromtimestamp(self.now(), ZoneInfo("UTC"))
        eastern = moment.astimezone(ZoneInfo("America/New_York"))
        return {
            "PublicKey": self.public_key,
            "TimeStamp": eastern.strftime("%m-%d-%Y %H:%M:%S"),
            "TokenKey": self.token,
            "Action": action,
            "SecureURL": self.secure_url,
        } | overrides

    def post_callback(self, url: str, action: str = "AUTHORIZE", *, timeout: float = 5.0) -> httpx.Response:
        """POST the callback to ``url`` as 3DCart does when the seller clicks Authorize (or removes
        the app: the token is withdrawn first, so the old token really is refused afterwards)."""
        if action.upper() == "REMOVE":
            self.revoke_token()
        return httpx.post(url, json=self.callback_payload(action), timeout=timeout, follow_redirects=False)

    def _authorize_route(self, request: SandboxRequest) -> SandboxResponse:
        try:
            spec = request.json() if request.body else {}
        except ValueError:
            return _error(400, "Body must be JSON with callback_url")
        url = str(spec.get("callback_url", ""))
        if not url:
            return _error(400, "callback_url is required")
        try:
            reply = self.post_callback(url, str(spec.get("action", "AUTHORIZE")).upper())
        except httpx.HTTPError:
            return SandboxResponse.json({"Result": "Server not Responding"}, 502)
        if reply.status_code != 200:
            return SandboxResponse.json({"Result": "Server not Responding", "Status": reply.status_code}, 502)
        try:
            postback = reply.json().get("PostBackURL", "") if reply.content else ""
        except (ValueError, AttributeError):
            postback = ""
        return SandboxResponse.json({"Result": "Authorized", "PostBackURL": postback})

    # -- request entry -----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        response = self._handle(request)
        if self.errors_as_200 and response.status >= 400:
            return _as_200_error_array(response)
        return response

    def _handle(self, request: SandboxRequest) -> SandboxResponse:
        lowered = request.path.lower()
        if lowered.rstrip("/") == "/admin/rest-api/authorize" and request.method == "POST":
            return self._authorize_route(request)
        prefix = next((p for p in API_PREFIXES if lowered.startswith(p)), None)
        if prefix is None:
            return SandboxResponse.text(
                "<html><body><h2>404 - File or directory not found.</h2></body></html>", 404
            )
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        limited = self._take_from_bucket(request.header("Token"))
        if limited is not None:
            return limited
        segments = [s for s in request.path[len(prefix) :].split("/") if s]
        query = {key.lower(): values[0] for key, values in request.query.items() if values}
        with self.lock:
            try:
                return self._route(request.method, segments, query, request)
            except _BadRequest as exc:
                return _error(400, str(exc))

    def _authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        ok = (
            not self.faults.expired_token
            and bool(self.token)
            and secrets.compare_digest(request.header("PrivateKey"), self.private_key)
            and secrets.compare_digest(request.header("Token"), self.token)
            and _store_key(request.header("SecureURL")) == _store_key(self.secure_url)
        )
        if ok:
            return None
        return SandboxResponse.json({"Message": "Authorization has been denied for this request."}, 401)

    def _take_from_bucket(self, token: str) -> SandboxResponse | None:
        now = time.monotonic()
        with self.lock:
            level, updated = self._buckets.get(token, (0.0, now))
            level = max(0.0, level - (now - updated) * self.leak_rate)
            if level + 1 > self.bucket_size:
                self._buckets[token] = (level, now)
                wait = (level + 1 - self.bucket_size) / self.leak_rate
                response = _error(429, "Too many requests. Maximum 50 requests, leaking 2 per second.")
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
            self._buckets[token] = (level + 1, now)
        return None

    def _route(
        self, method: str, segments: list[str], query: dict[str, str], request: SandboxRequest
    ) -> SandboxResponse:
        names = [s.lower() for s in segments]
        head = names[0] if names else ""
        if head == "storesettings" and len(names) == 1 and method == "GET":
            return SandboxResponse.json(self._store_settings())
        if head == "orderstatus" and method == "GET":
            rows = [self._status_json(r) for r in self.db.execute("SELECT * FROM order_status ORDER BY id")]
            if len(names) == 2:
                rows = [r for r in rows if str(r["OrderStatusID"]) == segments[1]]
                return SandboxResponse.json(rows) if rows else SandboxResponse.empty(404)
            return self._page(rows, query, OTHER_PAGE_MAX)
        if head == "orders":
            return self._orders_route(method, segments, names, query, request)
        if head == "products":
            return self._products_route(method, segments, names, query, request)
        return SandboxResponse.json(
            {"Message": f"No HTTP resource was found that matches the request URI '{'/'.join(segments)}'."},
            404,
        )

    # -- paging ------------------------------------------------------------------------------------

    def _page(self, rows: Sequence[Any], query: Mapping[str, str], maximum: int) -> SandboxResponse:
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
            offset = int(query.get("offset", 1))
            countonly = int(query.get("countonly", 0) or 0)
        except ValueError:
            return _error(400, "The request is invalid.")
        if countonly:
            return SandboxResponse.json({"TotalCount": len(rows)})
        if not rows:
            return SandboxResponse.empty(404)
        limit = min(max(limit, 1), maximum)  # above the maximum: silently clamped (UNCONFIRMED)
        offset = max(offset, 1)  # offset 0 returns the first page too (recorded)
        if offset > len(rows):
            return _error(400, OFFSET_PAST_END)
        return SandboxResponse.json(list(rows[offset - 1 : offset - 1 + limit]))

    @staticmethod
    def _query_date(
        query: Mapping[str, str], name: str, *, end: bool = False, date_only: bool = False
    ) -> str:
        text = query.get(name, "").strip()
        if not text:
            return ""
        for pattern in _QUERY_DATE_FORMATS:
            try:
                moment = datetime.strptime(text, pattern)  # noqa: DTZ007 - store-local by contract
            except ValueError:
                continue
            if date_only or pattern == "%m/%d/%Y":
                moment = moment.replace(hour=0, minute=0, second=0)
                if end:
                    moment = moment.replace(hour=23, minute=59, second=59)
            return moment.strftime(TIMESTAMP)
        raise _BadRequest(f"Invalid date format for {name}: {text}")

    # -- orders ------------------------------------------------------------------------------------

    def _orders_route(
        self,
        method: str,
        segments: list[str],
        names: list[str],
        query: dict[str, str],
        request: SandboxRequest,
    ) -> SandboxResponse:
        if len(names) == 1:
            if method == "GET":
                return self._list_orders(query)
            if method == "PUT":
                body = self._body(request)
                items = body if isinstance(body, list) else [body]
                return self._write_reply([self._update_order(item, None) for item in items])
            return _error(405, "The requested resource does not support this method.")
        order_id = self._int(segments[1])
        if len(names) == 2:
            if method == "GET":
                # The docs name this path parameter "the invoice number of the order to retrieve",
                # while every write under /Orders/{id} takes the OrderID: the two differ on a store.
                row = self.db.execute(
                    "SELECT * FROM orders WHERE invoice_number = ? ORDER BY order_id", (order_id,)
                ).fetchone()
                return SandboxResponse.json([self._order_json(row)]) if row else SandboxResponse.empty(404)
            if method == "PUT":
                body = self._body(request)
                body = body[0] if isinstance(body, list) and len(body) == 1 else body
                if not isinstance(body, Mapping):
                    raise _BadRequest("The request is invalid.")
                if not self._order_exists(order_id):
                    return SandboxResponse.empty(404)
                return self._write_reply([self._update_order(body, order_id)])
        if len(names) >= 3 and names[2] == "shipments":
            if not self._order_exists(order_id):
                return SandboxResponse.empty(404)
            if len(names) == 3 and method == "GET":
                rows = self._shipments(order_id)
                return SandboxResponse.json(rows) if rows else SandboxResponse.empty(404)
            if len(names) == 3 and method == "PUT":
                body = self._body(request)
                items = body if isinstance(body, list) else [body]
                results = [
                    self._update_shipment(order_id, self._int(str(item.get("ShipmentID", ""))), item)
                    for item in items
                    if isinstance(item, Mapping)
                ]
                return self._write_reply(results)
            if len(names) == 4 and method == "PUT":
                shipment_id = self._int(segments[3])
                body = self._body(request)
                body = body[0] if isinstance(body, list) and len(body) == 1 else body
                if not isinstance(body, Mapping):
                    raise _BadRequest("The request is invalid.")
                if not self._shipment_exists(order_id, shipment_id):
                    return SandboxResponse.empty(404)
                result = self._update_shipment(order_id, shipment_id, body)
                if result["Status"] == "400":
                    return SandboxResponse.json([result], 400)
                return self._write_reply([result])
        if len(names) == 3 and names[2] == "items" and method == "GET":
            rows = self._items(order_id)
            return SandboxResponse.json(rows) if rows else SandboxResponse.empty(404)
        return _error(405, "The requested resource does not support this method.")

    def _list_orders(self, query: dict[str, str]) -> SandboxResponse:
        clauses: list[str] = ["1=1"]
        params: list[Any] = []
        for name, column, op, end, date_only in (
            ("datestart", "order_date", ">=", False, False),
            ("dateend", "order_date", "<=", True, False),
            ("lastupdatestart", "last_update", ">=", False, True),  # documented: date only
            ("lastupdateend", "last_update", "<=", True, True),
        ):
            value = self._query_date(query, name, end=end, date_only=date_only)
            if value:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        filters = (("orderstatus", "status_id"), ("invoicenumber", "invoice_number"), ("orderid", "order_id"))
        for name, column in filters:  # orderid: the recorded client read one order this way
            if query.get(name, "0") not in ("", "0"):
                clauses.append(f"{column} = ?")
                params.append(self._int(query[name]))
        if query.get("invoiceprefix"):
            clauses.append("invoice_prefix = ?")
            params.append(query["invoiceprefix"])
        sql = f"SELECT * FROM orders WHERE {' AND '.join(clauses)} ORDER BY order_id"
        rows = self.db.execute(sql, params).fetchall()
        if query.get("countonly", "0") not in ("", "0"):
            with self.lock:
                self.probe_count += 1  # an order count: a poll's "anything new?" or a pass's check
            return SandboxResponse.json({"TotalCount": len(rows)})
        return self._page(_LazyOrders(self, rows), query, ORDER_PAGE_MAX)

    def _order_exists(self, order_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone() is not None

    def _shipment_exists(self, order_id: int, shipment_id: int) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM shipment WHERE order_id = ? AND shipment_id = ?", (order_id, shipment_id)
            ).fetchone()
            is not None
        )

    def _shipments(self, order_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM shipment WHERE order_id = ? ORDER BY position, shipment_id", (order_id,)
        ).fetchall()
        return [{"ShipmentID": row["shipment_id"], **json.loads(row["data"])} for row in rows]

    def _items(self, order_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM item WHERE order_id = ? ORDER BY position, item_index_id", (order_id,)
        ).fetchall()
        return [{"ItemIndexID": row["item_index_id"], **json.loads(row["data"])} for row in rows]

    def _order_json(self, row: Any) -> dict[str, Any]:
        data = json.loads(row["data"])
        order: dict[str, Any] = {
            "InvoiceNumberPrefix": row["invoice_prefix"],
            "InvoiceNumber": row["invoice_number"],
            "OrderID": row["order_id"],
            "CustomerID": data.get("CustomerID", 0),
            "OrderDate": row["order_date"],
            "OrderStatusID": row["status_id"],
            "LastUpdate": row["last_update"],
        }
        order.update({k: v for k, v in data.items() if k not in order and not k.startswith("_")})
        shipments = self._shipments(row["order_id"])
        for shipment in shipments:
            for key in ("ShipmentCost", "ShipmentTax", "ShipmentWeight"):
                shipment[key] = _num(shipment.get(key, 0))
        items = self._items(row["order_id"])
        for item in items:
            for key in ("ItemUnitPrice", "ItemOptionPrice", "ItemUnitCost", "ItemWeight", "ItemQuantity"):
                item[key] = _num(item.get(key, 0))
        order["ShipmentList"] = shipments
        order["OrderItemList"] = items
        for key in ("OrderDiscount", "SalesTax", "SalesTax2", "SalesTax3", "OrderAmount"):
            order[key] = _num(data.get(key, 0))
        return order

    def _update_order(self, body: Mapping[str, Any], order_id: int | None) -> dict[str, str]:
        if order_id is None:
            try:
                order_id = int(str(body.get("OrderID", "")))
            except ValueError:
                return _result("OrderID", body.get("OrderID", ""), 400, "OrderID is required")
        row = self.db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return _result("OrderID", order_id, 404, "Order not found")
        data = json.loads(row["data"])
        status = row["status_id"]
        now = self._stamp()
        if "OrderStatusID" in body:
            try:
                status = int(str(body["OrderStatusID"]))
            except ValueError:
                return _result("OrderID", order_id, 400, "OrderStatusID is invalid")
            if not self.db.execute("SELECT 1 FROM order_status WHERE id = ?", (status,)).fetchone():
                return _result("OrderID", order_id, 400, "OrderStatusID is invalid")
            self.record_write("status", order_id, str(status))
        for key in ORDER_SCALARS:
            if key in body:
                data[key] = str(body[key] or "")
                self.record_write("history", order_id, data[key])
        with self.transaction() as db:
            if "ShipmentList" in body:  # replaces the whole collection (the docs' warning)
                db.execute("DELETE FROM shipment WHERE order_id = ?", (order_id,))
                self._replacements.append({"collection": "ShipmentList", "key": str(order_id)})
                for position, shipment in enumerate(body.get("ShipmentList") or []):
                    sid = int(str(shipment.get("ShipmentID", position) or position))
                    fields = {k: shipment.get(k) for k in SHIPMENT_FIELDS if k in shipment}
                    fields["ShipmentLastUpdate"] = now
                    db.execute(
                        "INSERT OR REPLACE INTO shipment VALUES (?, ?, ?, ?)",
                        (order_id, sid, position, json.dumps(fields)),
                    )
                    if fields.get("ShipmentTrackingCode"):
                        self.record_write("tracking", order_id, str(fields["ShipmentTrackingCode"]))
            if "OrderItemList" in body:
                db.execute("DELETE FROM item WHERE order_id = ?", (order_id,))
                self._replacements.append({"collection": "OrderItemList", "key": str(order_id)})
                for position, item in enumerate(body.get("OrderItemList") or []):
                    index = int(str(item.get("ItemIndexID", 0) or 0)) or self._next_id(
                        "item", "item_index_id"
                    )
                    fields = {k: v for k, v in item.items() if k != "ItemIndexID"}
                    db.execute(
                        "INSERT OR REPLACE INTO item VALUES (?, ?, ?, ?)",
                        (order_id, index, position, json.dumps(fields)),
                    )
            db.execute(
                "UPDATE orders SET status_id = ?, data = ?, last_update = ? WHERE order_id = ?",
                (status, json.dumps(data), now, order_id),
            )
        return _result("OrderID", order_id, 200, "updated successfully")

    def _update_shipment(self, order_id: int, shipment_id: int, body: Mapping[str, Any]) -> dict[str, str]:
        row = self.db.execute(
            "SELECT * FROM shipment WHERE order_id = ? AND shipment_id = ?", (order_id, shipment_id)
        ).fetchone()
        if row is None:
            return _result("ShipmentID", shipment_id, 404, "Shipment not found")
        method = body.get("ShipmentMethodName")
        if method is not None and not _METHOD_NAME_OK.fullmatch(str(method)):
            return _result(
                "ShipmentID", shipment_id, 400, "Bad Request: invalid characters in ShipmentMethodName"
            )
        code = body.get("ShipmentTrackingCode")
        if code is not None and len(str(code)) > 100:
            return _result("ShipmentID", shipment_id, 400, "ShipmentTrackingCode is too long")
        if "ShipmentOrderStatus" in body:
            try:
                int(str(body["ShipmentOrderStatus"]))
            except ValueError:
                return _result("ShipmentID", shipment_id, 400, "ShipmentOrderStatus is invalid")
        data = json.loads(row["data"])
        now = self._stamp()
        for key in SHIPMENT_FIELDS:
            if key in body:
                data[key] = body[key]
        data["ShipmentLastUpdate"] = now
        if code is not None:
            self.record_write("tracking", order_id, str(code))
        if "ShipmentOrderStatus" in body:
            self.record_write(
                "status", f"{order_id}:shipment:{shipment_id}", str(body["ShipmentOrderStatus"])
            )
        with self.transaction() as db:
            db.execute(
                "UPDATE shipment SET data = ? WHERE order_id = ? AND shipment_id = ?",
                (json.dumps(data), order_id, shipment_id),
            )
            db.execute("UPDATE orders SET last_update = ? WHERE order_id = ?", (now, order_id))
        return _result("ShipmentID", shipment_id, 200, "updated successfully")

    # -- products ----------------------------------------------------------------------------------

    def _products_route(
        self,
        method: str,
        segments: list[str],
        names: list[str],
        query: dict[str, str],
        request: SandboxRequest,
    ) -> SandboxResponse:
        if len(names) == 1:
            if method == "GET":
                rows = self._product_rows(query)
                if query.get("countonly", "0") not in ("", "0"):
                    return SandboxResponse.json({"TotalCount": len(rows)})
                return self._page([self._product_json(r) for r in rows], query, PRODUCT_PAGE_MAX)
            if method == "PUT":
                body = self._body(request)
                items = body if isinstance(body, list) else [body]
                return self._write_reply([self._update_product(item, None) for item in items])
            return _error(405, "The requested resource does not support this method.")
        if names[1] == "skuinfo" and len(names) == 2 and method == "GET":
            rows = self._product_rows(query)
            return self._page([self._sku_info(r) for r in rows], query, PRODUCT_PAGE_MAX)
        catalog_id = self._int(segments[1])
        product = self.db.execute("SELECT * FROM product WHERE catalog_id = ?", (catalog_id,)).fetchone()
        if product is None:
            return SandboxResponse.empty(404)
        if len(names) == 2:
            if method == "GET":
                return SandboxResponse.json([self._product_json(product)])
            if method == "PUT":
                body = self._body(request)
                body = body[0] if isinstance(body, list) and len(body) == 1 else body
                if not isinstance(body, Mapping):
                    raise _BadRequest("The request is invalid.")
                return self._write_reply([self._update_product(body, catalog_id)])
        if len(names) >= 3 and names[2] == "advancedoptions":
            if len(names) == 3 and method == "GET":
                rows = self._variants_json(catalog_id)
                return self._page(rows, query, OTHER_PAGE_MAX) if rows else SandboxResponse.empty(404)
            if len(names) == 3 and method == "PUT":
                body = self._body(request)
                items = body if isinstance(body, list) else [body]
                return self._write_reply(
                    [self._update_variant(catalog_id, str(i.get("AdvancedOptionCode", "")), i) for i in items]
                )
            if len(names) == 4 and method == "PUT":
                body = self._body(request)
                body = body[0] if isinstance(body, list) and len(body) == 1 else body
                if not isinstance(body, Mapping):
                    raise _BadRequest("The request is invalid.")
                code = segments[3]
                if not self.db.execute(
                    "SELECT 1 FROM variant WHERE catalog_id = ? AND code = ?", (catalog_id, code)
                ).fetchone():
                    return SandboxResponse.empty(404)
                return self._write_reply([self._update_variant(catalog_id, code, body)])
        return _error(405, "The requested resource does not support this method.")

    def _product_rows(self, query: Mapping[str, str]) -> list[Any]:
        clauses: list[str] = ["1=1"]
        params: list[Any] = []
        if query.get("sku"):
            clauses.append("lower(sku) = lower(?)")  # exact vs partial match UNCONFIRMED: exact here
            params.append(query["sku"])
        if query.get("catalogid", "0") not in ("", "0"):
            clauses.append("catalog_id = ?")
            params.append(self._int(query["catalogid"]))
        sql = f"SELECT * FROM product WHERE {' AND '.join(clauses)} ORDER BY catalog_id"
        return self.db.execute(sql, params).fetchall()

    def _sku_info(self, row: Any) -> dict[str, Any]:
        return {
            "CatalogID": row["catalog_id"],
            "SKU": row["sku"],
            "Name": row["name"],
            "Cost": _num(row["cost"]),
            "Price": _num(row["price"]),
            "Currency": "$",
            "RetailPrice": _num(row["retail_price"]),
            "SalePrice": 0,
            "OnSale": False,
            "Stock": _num(row["stock"]),
        }

    def _variants_json(self, catalog_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM variant WHERE catalog_id = ? ORDER BY rowid", (catalog_id,)
        ).fetchall()
        return [
            {
                "AdvancedOptionCode": row["code"],
                "AdvancedOptionSufix": row["suffix"],
                "AdvancedOptionName": row["name"],
                "AdvancedOptionCost": _num(row["cost"]),
                "AdvancedOptionStock": int(row["stock"]),
                "AdvancedOptionWeight": _num(row["weight"]),
                "AdvancedOptionPrice": _num(row["price"]),
                "AdvancedOptionGTIN": row["gtin"],
            }
            for row in rows
        ]

    def _product_json(self, row: Any) -> dict[str, Any]:
        return {
            "SKUInfo": self._sku_info(row),
            "MFGID": "",
            "ShortDescription": "",
            "Hide": bool(row["hide"]),
            "InventoryControl": -1,
            "NonTaxable": False,
            "LastUpdate": row["last_update"],
            "CategoryList": json.loads(row["categories"] or "[]"),
            "OptionSetList": [],
            "AdvancedOptionList": self._variants_json(row["catalog_id"]),
        }

    def _update_product(self, body: Any, catalog_id: int | None) -> dict[str, str]:
        if not isinstance(body, Mapping):
            return _result("CatalogID", "", 400, "The request is invalid.")
        sku_info_value = body.get("SKUInfo")
        sku_info = sku_info_value if isinstance(sku_info_value, Mapping) else {}
        if catalog_id is None:
            try:
                catalog_id = int(str(sku_info.get("CatalogID", body.get("CatalogID", ""))))
            except ValueError:
                return _result("CatalogID", "", 400, "CatalogID is required")
        row = self.db.execute("SELECT * FROM product WHERE catalog_id = ?", (catalog_id,)).fetchone()
        if row is None:
            return _result("CatalogID", catalog_id, 404, "Product not found")
        changes: dict[str, Any] = {}
        try:
            if "Stock" in sku_info:
                changes["stock"] = str(Decimal(str(sku_info["Stock"])))  # parent stock: a decimal
            for key, column in (("Price", "price"), ("Cost", "cost"), ("RetailPrice", "retail_price")):
                if key in sku_info:
                    changes[column] = str(_dec(sku_info[key]))
        except (InvalidOperation, ValueError):
            return _result("CatalogID", catalog_id, 400, "Invalid number in SKUInfo")
        for key, column in (("Name", "name"), ("SKU", "sku")):
            if key in sku_info:
                changes[column] = str(sku_info[key])
        if "Hide" in body:
            changes["hide"] = int(bool(body["Hide"]))
        now = self._stamp()
        with self.transaction() as db:
            for column, value in changes.items():
                db.execute(f"UPDATE product SET {column} = ? WHERE catalog_id = ?", (value, catalog_id))
            db.execute("UPDATE product SET last_update = ? WHERE catalog_id = ?", (now, catalog_id))
            if "AdvancedOptionList" in body:  # replaces every variant row (the docs' warning)
                db.execute("DELETE FROM variant WHERE catalog_id = ?", (catalog_id,))
                self._replacements.append({"collection": "AdvancedOptionList", "key": str(catalog_id)})
                for option in body.get("AdvancedOptionList") or []:
                    db.execute(
                        "INSERT OR REPLACE INTO variant VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            catalog_id,
                            str(option.get("AdvancedOptionCode", "")),
                            str(option.get("AdvancedOptionSufix", "")),
                            str(option.get("AdvancedOptionName", "")),
                            int(option.get("AdvancedOptionStock", 0) or 0),
                            str(_dec(option.get("AdvancedOptionPrice", 0) or 0)),
                            str(_dec(option.get("AdvancedOptionCost", 0) or 0)),
                            str(option.get("AdvancedOptionWeight", 0) or 0),
                            str(option.get("AdvancedOptionGTIN", "") or ""),
                        ),
                    )
            if "CategoryList" in body:
                db.execute(
                    "UPDATE product SET categories = ? WHERE catalog_id = ?",
                    (json.dumps(body.get("CategoryList") or []), catalog_id),
                )
                self._replacements.append({"collection": "CategoryList", "key": str(catalog_id)})
        sku = changes.get("sku", row["sku"])
        if "stock" in changes:
            stock = Decimal(changes["stock"])
            self.record_write("stock", sku, int(stock) if stock == stock.to_integral_value() else str(stock))
        if "price" in changes:
            self.record_write("price", sku, Decimal(changes["price"]))
        return _result("CatalogID", catalog_id, 200, "updated successfully")

    def _update_variant(self, catalog_id: int, code: str, body: Any) -> dict[str, str]:
        if not isinstance(body, Mapping):
            return _result("AdvancedOptionCode", code, 400, "The request is invalid.")
        row = self.db.execute(
            "SELECT * FROM variant WHERE catalog_id = ? AND code = ?", (catalog_id, code)
        ).fetchone()
        if row is None:
            return _result("AdvancedOptionCode", code, 404, "Advanced option not found")
        changes: dict[str, Any] = {}
        if "AdvancedOptionStock" in body:
            stock = body["AdvancedOptionStock"]
            if isinstance(stock, bool) or not (
                isinstance(stock, int) or (isinstance(stock, str) and stock.strip().lstrip("-").isdigit())
            ):
                return _result("AdvancedOptionCode", code, 400, "AdvancedOptionStock must be an integer")
            changes["stock"] = int(stock)
        try:
            if "AdvancedOptionPrice" in body:
                changes["price"] = str(_dec(body["AdvancedOptionPrice"]))
            if "AdvancedOptionCost" in body:
                changes["cost"] = str(_dec(body["AdvancedOptionCost"]))
        except (InvalidOperation, ValueError):
            return _result("AdvancedOptionCode", code, 400, "Invalid number")
        for key, column in (("AdvancedOptionSufix", "suffix"), ("AdvancedOptionName", "name")):
            if key in body:
                changes[column] = str(body[key])
        with self.transaction() as db:
            for column, value in changes.items():
                db.execute(
                    f"UPDATE variant SET {column} = ? WHERE catalog_id = ? AND code = ?",
                    (value, catalog_id, code),
                )
            db.execute("UPDATE product SET last_update = ? WHERE catalog_id = ?", (self._stamp(), catalog_id))
        sku = changes.get("suffix", row["suffix"]) or f"{catalog_id}:{code}"
        if "stock" in changes:
            self.record_write("stock", sku, changes["stock"])
        if "price" in changes:
            self.record_write("price", sku, Decimal(changes["price"]))
        return _result("AdvancedOptionCode", code, 200, "updated successfully")

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _body(request: SandboxRequest) -> Any:
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise _BadRequest("The request is invalid.") from None

    @staticmethod
    def _int(text: str) -> int:
        try:
            return int(str(text).strip())
        except ValueError:
            raise _BadRequest(f"The value '{text}' is not valid.") from None

    @staticmethod
    def _write_reply(results: list[dict[str, str]]) -> SandboxResponse:
        failed = [r for r in results if not r["Status"].startswith("2")]
        if not failed:
            return SandboxResponse.json(results, 200)
        if len(failed) < len(results):
            return SandboxResponse.json(results, 206)
        return SandboxResponse.json(results, int(failed[0]["Status"]) if len(results) == 1 else 400)

    def _store_settings(self) -> dict[str, Any]:
        offset = (datetime(2025, 1, 15, tzinfo=self.zone).utcoffset() or timedelta()).total_seconds() / 3600
        return {
            "StoreInformation": {
                "StoreName": "Storelink Sandbox",
                "StoreURL": self.secure_url.replace("https://", "http://"),
                "StoreSecureURL": self.secure_url,
                "StoreEmail": "ops@example.com",
            },
            "MerchantInformation": {"Company": "Sandbox LLC", "Country": "US"},
            "StoreStandards": {
                "StoreTimeZone": f"{offset:g}",
                "CurrencySymbol": "$",
                "DecimalPlacesOnPrice": "2",
                "CurrencyCode": self.currency,
            },
        }

    @staticmethod
    def _status_json(row: Any) -> dict[str, Any]:
        return {
            "OrderStatusID": row["id"],
            "Sorting": row["sorting"],
            "StatusDefinition": row["definition"],
            "StatusText": row["text"],
            "Visible": bool(row["visible"]),
        }

    def _next_id(self, table: str, column: str, floor: int = 1) -> int:
        row = self.db.execute(f"SELECT MAX({column}) AS top FROM {table}").fetchone()
        return max(int(row["top"] or 0) + 1, floor)

    # -- seeding -----------------------------------------------------------------------------------

    def seed(self, products: int, orders: int, days: int, rng_seed: int = 0) -> None:
        rng = random.Random(rng_seed)
        with self.lock:
            self.seeded_days = max(self.seeded_days, int(days))
            self._set_meta("seeded_days", str(self.seeded_days))
            first = self._next_id("product", "catalog_id", 11)
            now = self._stamp()
            for number in range(first, first + products):
                sku = seeded_sku(number - first + 1, f"SB-{number:04d}", self.shared_skus)
                price = _dec(rng.randint(500, 9999) / 100)
                with self.transaction() as db:
                    db.execute(
                        "INSERT INTO product VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '[]')",
                        (
                            number,
                            sku,
                            f"Sandbox product {number}",
                            str(price),
                            str(_dec(price * Decimal("0.4"))),
                            str(_dec(price * Decimal("1.25"))),
                            str(rng.randint(0, 120)),
                            now,
                        ),
                    )
                    if number % 3 == 0:
                        for position, size in enumerate(("S", "M", "L")):
                            db.execute(
                                "INSERT INTO variant VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
                                (
                                    number,
                                    str(number * 10 + position),
                                    f"{sku}-{size}",
                                    size,
                                    rng.randint(0, 40),
                                    str(price),
                                    str(_dec(price * Decimal("0.4"))),
                                    "0.5",
                                ),
                            )
            horizon = max(1, int(days)) * 86400 - 3600
            for _ in range(orders):
                placed = self.local_now() - timedelta(seconds=rng.randint(600, max(601, horizon)))
                self._create_order(rng, placed=placed, status=rng.choice(SEED_STATUSES))

    def add_order(self, **kwargs: Any) -> str:
        """A new order placed now (``status``, ``placed_at`` (naive store-local), ``shipments``)."""
        rng = random.Random(kwargs.get("rng_seed"))
        with self.lock:
            if not self.db.execute("SELECT 1 FROM product LIMIT 1").fetchone():
                self.seed(3, 0, 1, 0)
            return str(
                self._create_order(
                    rng,
                    placed=kwargs.get("placed_at") or self.local_now(),
                    status=int(kwargs.get("status", 1)),
                    shipments=kwargs.get("shipments"),
                    last_update=kwargs.get("last_update"),
                    bundle=kwargs.get("bundle"),
                )
            )

    def _create_order(
        self,
        rng: random.Random,
        *,
        placed: datetime,
        status: int,
        shipments: int | None = None,
        last_update: datetime | None = None,
        bundle: bool | None = None,
    ) -> int:
        order_id = self._next_id("orders", "order_id", 5001)
        # About a quarter of recorded lines were bundle components: the bundle marker comes first,
        # the product's own name after the first <br>.
        in_bundle = bundle if bundle is not None else order_id % 4 == 0
        invoice = self._next_id("orders", "invoice_number", 1001)
        products = self.db.execute("SELECT * FROM product ORDER BY catalog_id").fetchall()
        picks = rng.sample(products, k=min(len(products), rng.randint(1, 3)))
        lines: list[dict[str, Any]] = []
        for product in picks:
            variants = self.db.execute(
                "SELECT * FROM variant WHERE catalog_id = ? ORDER BY rowid", (product["catalog_id"],)
            ).fetchall()
            quantity = rng.randint(1, 3)
            if variants:
                variant = rng.choice(variants)
                sku, price, options = variant["suffix"], variant["price"], f",{variant['code']}"
                description = f"{product['name']}<br><b>Size:</b>&nbsp;{variant['name']}"
            else:
                sku, price, options = product["sku"], product["price"], ""
                description = product["name"]
            if in_bundle and not lines:
                description = f"Bundle Item: BUNDLE{product['catalog_id']}<br>{description}"
            lines.append(
                {
                    "CatalogID": product["catalog_id"],
                    "ItemID": sku,
                    "ItemQuantity": quantity,
                    "ItemWarehouseID": 0,
                    "ItemDescription": description,
                    "ItemUnitPrice": str(price),
                    "ItemWeight": "0.5",
                    "ItemOptionPrice": "0",
                    "ItemAdditionalField1": "",
                    "ItemAdditionalField2": "",
                    "ItemAdditionalField3": "",
                    "ItemPageAdded": f"p_{product['catalog_id']}.html",
                    "ItemDateAdded": (placed - timedelta(minutes=5)).strftime(TIMESTAMP),
                    "ItemUnitCost": str(product["cost"]),
                    "ItemUnitStock": 0,
                    "ItemOptions": options,
                    "ItemCatalogIDOptions": "",
                }
            )
        subtotal = sum((Decimal(line["ItemUnitPrice"]) * line["ItemQuantity"] for line in lines), Decimal(0))
        shipping = Decimal(rng.choice(("0", "4.95", "7.50", "12.00")))
        tax = _dec(subtotal * SALES_TAX_RATE / 100)
        discount = Decimal("5.00") if order_id % 6 == 0 and subtotal > 10 else Decimal("0.00")
        total = subtotal + shipping + tax - discount
        first, last = rng.choice(("Ann", "Bo", "Cy", "Di")), rng.choice(("Lee", "Ng", "Ortiz", "Smith"))
        data = {
            "CustomerID": 0,
            "UserID": "",
            "SalesPerson": "",
            "ContinueURL": f"{self.secure_url}/continue_order.asp?orderkey=SANDBOX",
            "AlternateOrderID": "",
            "OrderType": "",
            "PaymentTokenID": 0,
            "BillingFirstName": first,
            "BillingLastName": last,
            "BillingCompany": "",
            "BillingAddress": f"{rng.randint(1, 999)} Test Street",
            "BillingAddress2": "",
            "BillingCity": "Springfield",
            "BillingState": "IL",
            "BillingZipCode": "62701",
            "BillingCountry": "US",
            "BillingPhoneNumber": "555-0100",
            "BillingEmail": f"{first.lower()}.{last.lower()}@example.com",
            "BillingPaymentMethod": "Credit Card",
            "BillingOnLinePayment": True,
            "BillingPaymentMethodID": "2",
            "PromotionList": [],
            "OrderDiscount": str(discount),
            "OrderDiscountCoupon": str(discount),
            "OrderDiscountPromotion": "0",
            "SalesTax": str(tax),
            "SalesTax2": "0",
            "SalesTax3": "0",
            "OrderAmount": str(total),
            "AffiliateCommission": "0",
            "TransactionList": [],
            "QuestionList": [],
            "Referer": "",
            "IP": "203.0.113.5",
            "CustomerComments": "",
            "InternalComments": "",
            "ExternalComments": "",
        }
        count = shipments if shipments is not None else (2 if order_id % 5 == 0 and len(lines) > 1 else 1)
        if count > 1:
            base = self._next_id("shipment", "shipment_id", 7001)
            shipment_ids = [base + n for n in range(count)]
        else:
            shipment_ids = [0]
        now = self.local_now()
        updated = last_update or min(now, placed + timedelta(minutes=rng.randint(0, 600)))
        with self.transaction() as db:
            db.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    order_id,
                    "AB-",
                    invoice,
                    placed.strftime(TIMESTAMP),
                    updated.strftime(TIMESTAMP),
                    status,
                    json.dumps(data),
                ),
            )
            for position, sid in enumerate(shipment_ids):
                shipped = status == 4
                fields = {
                    "ShipmentLastUpdate": updated.strftime(TIMESTAMP),
                    "ShipmentBoxes": 1,
                    "ShipmentInternalComment": "",
                    "ShipmentOrderStatus": status,
                    "ShipmentAddress": data["BillingAddress"],
                    "ShipmentAddress2": "",
                    "ShipmentAlias": "",
                    "ShipmentCity": "Springfield",
                    "ShipmentCompany": "",
                    "ShipmentCost": str(shipping if position == 0 else Decimal("0")),
                    "ShipmentCountry": "US",
                    "ShipmentEmail": "",
                    "ShipmentFirstName": first,
                    "ShipmentLastName": last,
                    "ShipmentMethodID": 0,
                    "ShipmentMethodName": "USPS Priority Mail",
                    "ShipmentShippedDate": placed.strftime("%m/%d/%Y") if shipped else "",
                    "ShipmentPhone": "555-0100",
                    "ShipmentState": "IL",
                    "ShipmentZipCode": "62701",
                    "ShipmentTax": "0",
                    "ShipmentWeight": 1,
                    "ShipmentTrackingCode": f"SEED{order_id}{position}" if shipped else "",
                    "ShipmentUserID": "",
                    "ShipmentNumber": position + 1,
                    "ShipmentAddressTypeID": 0,
                }
                db.execute(
                    "INSERT INTO shipment VALUES (?, ?, ?, ?)", (order_id, sid, position, json.dumps(fields))
                )
            for position, line in enumerate(lines):
                line["ItemShipmentID"] = shipment_ids[min(position, len(shipment_ids) - 1)]
                index = self._next_id("item", "item_index_id", 9001)
                db.execute(
                    "INSERT INTO item VALUES (?, ?, ?, ?)", (order_id, index, position, json.dumps(line))
                )
        return order_id

    # -- inspection API (the store's point of view) --------------------------------------------------

    def order_count(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT COUNT(*) FROM orders WHERE status_id != 7").fetchone()[0])

    def stock_of(self, sku: str) -> int:
        with self.lock:
            row = self.db.execute("SELECT stock FROM product WHERE sku = ?", (sku,)).fetchone()
            if row is not None:
                return int(Decimal(row["stock"]).to_integral_value(rounding=ROUND_FLOOR))
            row = self.db.execute("SELECT stock FROM variant WHERE suffix = ?", (sku,)).fetchone()
            if row is None:
                raise KeyError(sku)
            return int(row["stock"])

    def tax_rate_of(self, sku: str) -> Decimal:
        self.price_of(sku)  # an unknown SKU is a KeyError here too
        return SALES_TAX_RATE

    def checkout_price_of(self, sku: str) -> Decimal:
        """``Price`` has no tax-inclusive form: the order adds ``SalesTax`` on top of it."""
        return self.with_tax(self.price_of(sku), self.tax_rate_of(sku))

    def price_of(self, sku: str) -> Decimal:
        with self.lock:
            row = self.db.execute("SELECT price FROM product WHERE sku = ?", (sku,)).fetchone()
            if row is None:
                row = self.db.execute("SELECT price FROM variant WHERE suffix = ?", (sku,)).fetchone()
            if row is None:
                raise KeyError(sku)
            return Decimal(row["price"])

    def tracking_numbers(self, order_external_id: str) -> list[str]:
        with self.lock:
            codes: list[str] = []
            for shipment in self._shipments(int(order_external_id)):
                codes.extend(
                    part.strip()
                    for part in re.split(r"[,;\s]+", str(shipment.get("ShipmentTrackingCode") or ""))
                    if part.strip()
                )
            return codes

    def order_status(self, order_external_id: str) -> str:
        with self.lock:
            row = self.db.execute(
                "SELECT status_id FROM orders WHERE order_id = ?", (int(order_external_id),)
            ).fetchone()
            if row is None:
                raise KeyError(order_external_id)
            return str(row["status_id"])

    def shipments_of(self, order_external_id: str) -> list[dict[str, Any]]:
        """The order's shipment rows as the API shows them (tests look at per-shipment status)."""
        with self.lock:
            return self._shipments(int(order_external_id))

    def items_of(self, order_external_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return self._items(int(order_external_id))

    def replacements(self) -> list[dict[str, Any]]:
        """Every collection a client wiped by sending it inside an order or product PUT."""
        with self.lock:
            return list(self._replacements)

    def set_order_status(self, order_external_id: str, status: int) -> None:
        """What the seller's admin does on a status change (cancel, hold, ship), however old the
        order: the order's status and its ``LastUpdate`` move, its shipments stay as they are."""
        with self.transaction() as db:
            updated = db.execute(
                "UPDATE orders SET status_id = ?, last_update = ? WHERE order_id = ?",
                (int(status), self._stamp(), int(order_external_id)),
            )
            if updated.rowcount == 0:
                raise KeyError(order_external_id)

    def set_invoice_number(self, order_external_id: str, number: int) -> None:
        """Give an order another invoice number (the seller's numbering can reach any OrderID)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE orders SET invoice_number = ? WHERE order_id = ?",
                (int(number), int(order_external_id)),
            )

    def set_order_times(self, order_external_id: str, *, placed: datetime, updated: datetime) -> None:
        """Move an order in time (naive store-local), e.g. to put one inside a DST fold."""
        with self.transaction() as db:
            db.execute(
                "UPDATE orders SET order_date = ?, last_update = ? WHERE order_id = ?",
                (placed.strftime(TIMESTAMP), updated.strftime(TIMESTAMP), int(order_external_id)),
            )

    def state(self) -> dict[str, Any]:
        return {**super().state(), "secure_url": self.secure_url, "replacements": len(self.replacements())}


class _LazyOrders(Sequence[dict[str, Any]]):
    """Order rows rendered to JSON only for the requested page (seeded stores hold thousands)."""

    def __init__(self, app: ThreeDCartSandbox, rows: list[Any]) -> None:
        self.app = app
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.app._order_json(row) for row in self.rows[index]]
        return self.app._order_json(self.rows[index])
