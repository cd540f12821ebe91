"""A wire-faithful X-Cart store: the 5.4 REST API add-on, or the 5.5+ built-in API.

It answers the way a real X-Cart 5.4.1 + REST API add-on 5.4.0.10 answered when tried, quirks
included, because the connector's defences are only tested if the double misbehaves like the store:

- error replies have an *empty* body, ``Content-type: text/html; charset=UTF-8`` and the reason (if
  any) in ``X-REST-Error``; unknown ids answer 200 ``null``; a wrong ``target`` is a 302 to the
  admin login page; a page past the end is ``[]`` with ``X-Result-Count: 0``; there is no page cap;
- numbers are JSON numbers, with float noise where X-Cart computes them (``subtotal``);
- writes are not validated (``amount=abc`` stores 0, SKUs are cut to 32 characters);
- an unknown shipping status code renames the order's current status for the whole store;
- a tracking-number POST for an order id that does not exist creates an empty order.

``flavour="builtin"`` serves X-Cart 5.5's ``/api/...`` instead (``X-Auth-Token``, JSON errors, no
tracking-number writes). Every effect a client causes is recorded with :meth:`record_write`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from connectors.sandbox.core import SandboxApp, SandboxRequest, SandboxResponse, seeded_sku

SHIPPING_STATUSES = [
    ("N", "New", 10),
    ("P", "Processing", 20),
    ("S", "Shipped", 30),
    ("D", "Delivered", 40),
    ("WND", "Will not deliver", 50),
    ("R", "Returned", 60),
    ("WFA", "Waiting for approve", 70),
    ("NBA", "New/Backorder", 80),
    ("NF", "Not finished", 100),
]
PAYMENT_STATUSES = [
    ("Q", "Awaiting payment", 10),
    ("A", "Authorized", 20),
    ("PP", "Partially paid", 30),
    ("P", "Paid", 40),
    ("D", "Declined", 50),
    ("C", "Cancelled", 60),
    ("R", "Refunded", 70),
]
ENTITIES = {
    "order",
    "orderitem",
    "ordertrackingnumber",
    "order-status-shipping",
    "order-status-payment",
    "product",
    "xc-productvariants-productvariant",
    "profile",
    "person",
    "config",
}
COMPLEX_ENTITIES = {"order", "product", "profile", "person"}
JSON_TYPE = "application/json;charset=utf-8"
SKU_MAX = 32
CENT = Decimal("0.01")
#: The store's sales tax (percent). A product's ``price`` is the price before it: the tax module adds
#: it at checkout as a surcharge on top (``include = false``).
SALES_TAX_RATE = Decimal("8")

SCHEMA = """
CREATE TABLE IF NOT EXISTS status_shipping (
    id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT, position INT);
CREATE TABLE IF NOT EXISTS status_payment (
    id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT, position INT);
CREATE TABLE IF NOT EXISTS products (
    product_id INTEGER PRIMARY KEY, sku TEXT, name TEXT, price TEXT, amount INT,
    inventory_enabled INT DEFAULT 1, enabled INT DEFAULT 1, weight TEXT DEFAULT '0.5');
CREATE TABLE IF NOT EXISTS variants (
    id INTEGER PRIMARY KEY, product_id INT, variant_id TEXT, sku TEXT, price TEXT, default_price INT,
    amount INT, default_amount INT);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, order_number TEXT, date INT, last_renew INT, currency TEXT,
    payment_status_id INT, shipping_status_id INT, shipping_cost TEXT, tax TEXT, tax_included INT,
    discount TEXT, other TEXT, total TEXT, payment_method TEXT, shipping_method TEXT, email TEXT,
    firstname TEXT, lastname TEXT, street TEXT, city TEXT, state TEXT, zipcode TEXT, country TEXT,
    phone TEXT, notes TEXT, admin_notes TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS order_items (
    item_id INTEGER PRIMARY KEY, order_id INT, product_id INT, sku TEXT, name TEXT, price TEXT,
    amount INT, attributes TEXT);
CREATE TABLE IF NOT EXISTS config (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tracking (
    tracking_id INTEGER PRIMARY KEY, order_id INT, value TEXT, creation_date INT);
"""
#: The indexes X-Cart's own order table has for the columns the API sorts and filters on.
INDEXES = """
CREATE INDEX IF NOT EXISTS orders_date ON orders (date);
CREATE INDEX IF NOT EXISTS orders_last_renew ON orders (last_renew);
CREATE INDEX IF NOT EXISTS order_items_order ON order_items (order_id);
CREATE INDEX IF NOT EXISTS tracking_order ON tracking (order_id);
"""

FIRST_NAMES = ["Jane", "John", "Ana", "Luca", "Mei", "Omar", "Sara", "Tom"]
LAST_NAMES = ["Doe", "Smith", "Rossi", "Chen", "Haddad", "Berg", "Novak"]
CITIES = [("Springfield", "IL", "62701"), ("Austin", "TX", "73301"), ("Portland", "OR", "97201")]


# --------------------------------------------------------------------------------------------------
# PHP-ish request parsing
# --------------------------------------------------------------------------------------------------


def php_parse(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0]=x&a[c][]=y`` → nested dicts, as PHP builds ``$_GET``/``$_POST`` (numeric keys
    stay string keys; ``[]`` appends)."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        match = re.match(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$", name)
        if not match:
            result[name] = value
            continue
        keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = result
        for position, key in enumerate(keys):
            last = position == len(keys) - 1
            if key == "":
                key = str(sum(1 for k in node if k.isdigit())) if isinstance(node, dict) else "0"
            if last:
                node[key] = value
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = node[key] = {}
                node = child
    return result


def as_list(value: Any) -> list[Any]:
    """A PHP array with numeric keys (``{"0": …, "1": …}``) or a JSON list → a list in key order."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (not str(k).isdigit(), int(k) if str(k).isdigit() else 0, str(k)))
        return [value[k] for k in keys]
    return [] if value in (None, "") else [value]


def php_int(value: Any) -> int:
    """PHP's ``(int)`` cast: leading digits or 0 (``"abc"`` → 0, ``"12x"`` → 12)."""
    match = re.match(r"^\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else 0


def php_decimal(value: Any) -> Decimal:
    match = re.match(r"^\s*([+-]?\d+(?:\.\d+)?)", str(value))
    return Decimal(match.group(1)) if match else Decimal("0")


def php_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("", "0", "false")


def num(value: Any) -> float:
    """Money as X-Cart prints it: a JSON number."""
    return float(Decimal(str(value)))


def php_date_r(epoch: float) -> str:
    """PHP's ``date('r')`` in a UTC-configured PHP: ``Wed, 02 Dec 2026 06:22:02 +0000``."""
    return formatdate(epoch, usegmt=True).replace(" GMT", " +0000")


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class XCartSandbox(SandboxApp):
    """An X-Cart store; ``flavour`` is ``addon`` (5.4 + REST API add-on) or ``builtin`` (5.5+)."""

    platform = "xcart"

    def __init__(
        self,
        db_path: str = ":memory:",
        faults: Any = None,
        flavour: str = "addon",
        admin_script: str = "admin.php",
        currency: str = "USD",
        version: str | None = "5.4.1.23",
        key_from_body: bool = True,
    ) -> None:
        if flavour not in ("addon", "builtin"):
            raise ValueError(f"unknown X-Cart flavour {flavour!r} (addon or builtin)")
        self.flavour = flavour
        self.admin_script = admin_script
        self.currency = currency
        self.rw_key = ""  # set by create_schema from the store's own config table
        self.read_key = ""
        self.status_renames: list[tuple[str, str]] = []
        #: the core version in the ``config`` entity (category Version, name version); None = absent
        self.version = version
        #: False: this add-on reads ``_key`` only from the query string, never from a write's body
        self.key_from_body = key_from_body
        #: the request lines a web server's access log keeps (method, path and query string)
        self.access_log: list[str] = []
        #: SQLite virtual-machine steps (in hundreds) each order search took: the store's work
        self.order_search_steps: list[int] = []
        self._seeded_days = 7
        super().__init__(db_path=db_path, faults=faults)

    # -- schema and seed ---------------------------------------------------------------------------

    def create_schema(self) -> None:
        with self.lock:
            self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(orders)")}
            if "admin_notes" not in columns:  # a file-backed store made before staff notes
                self.db.execute("ALTER TABLE orders ADD COLUMN admin_notes TEXT DEFAULT ''")
            self.db.executescript(INDEXES)
            if not self.db.execute("SELECT 1 FROM status_shipping").fetchone():
                for index, (code, name, position) in enumerate(SHIPPING_STATUSES, start=1):
                    self.db.execute(
                        "INSERT INTO status_shipping VALUES (?,?,?,?)", (index, code, name, position)
                    )
                for index, (code, name, position) in enumerate(PAYMENT_STATUSES, start=1):
                    self.db.execute(
                        "INSERT INTO status_payment VALUES (?,?,?,?)", (index, code, name, position)
                    )
            # the keys live in the store, so a file-backed sandbox keeps them across restarts
            for name, prefix in (("rw_key", "xcrw-"), ("read_key", "xcro-")):
                self.db.execute(
                    "INSERT OR IGNORE INTO config (name, value) VALUES (?, ?)",
                    (name, prefix + secrets.token_hex(12)),
                )
            keys = dict(self.db.execute("SELECT name, value FROM config").fetchall())
            self.rw_key, self.read_key = keys["rw_key"], keys["read_key"]

    def seed(self, products: int, orders: int, days: int, rng_seed: int = 0) -> None:
        """``products`` products (every third with three size variants) and ``orders`` placed orders
        spread over ``days`` days, plus a few "not finished" (``NF``) ones that a client must skip."""
        rng = random.Random(rng_seed)
        self._seeded_days = max(1, days)
        now = int(self.now())
        with self.transaction() as db:
            base = db.execute("SELECT COALESCE(MAX(product_id), 0) FROM products").fetchone()[0]
            if orders and not products and not base:
                products = 3  # orders need something to sell (``seed --orders N`` on an empty store)
            for offset in range(1, products + 1):
                product_id = base + offset
                sku = seeded_sku(offset, f"XC-{product_id:04d}", self.shared_skus)
                price = Decimal(rng.randint(500, 9999)) / 100
                db.execute(
                    "INSERT INTO products (product_id, sku, name, price, amount) VALUES (?,?,?,?,?)",
                    (product_id, sku, f"Product {product_id}", str(price), rng.randint(0, 80)),
                )
                if offset % 3 == 0:
                    for size in ("S", "M", "L"):
                        own_price = size == "L"
                        db.execute(
                            "INSERT INTO variants (product_id, variant_id, sku, price, default_price, amount,"
                            " default_amount) VALUES (?,?,?,?,?,?,?)",
                            (
                                product_id,
                                secrets.token_hex(6),
                                f"{sku}-{size}",
                                str(price + 2 if own_price else price),
                                0 if own_price else 1,
                                rng.randint(0, 40),
                                0,
                            ),
                        )
            for _ in range(orders):
                date = now - rng.randint(120, self._seeded_days * 86400 - 60)
                payment = rng.choices(["P", "A", "Q"], weights=[7, 2, 1])[0]
                shipping = rng.choices(["N", "P"], weights=[4, 1])[0]
                self._insert_order(db, rng, date, payment, shipping)
            for _ in range(max(1, orders // 15) if orders else 0):
                date = now - rng.randint(120, self._seeded_days * 86400 - 60)
                self._insert_order(db, rng, date, "Q", "NF")

    def _status_id(self, db: Any, table: str, code: str) -> int:
        row = db.execute(f"SELECT id FROM {table} WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise ValueError(f"no {table} status {code!r}")
        return int(row[0])

    def _insert_order(
        self,
        db: Any,
        rng: random.Random,
        date: int,
        payment: str,
        shipping: str,
        *,
        lines: Sequence[tuple[str, int]] | None = None,
    ) -> int:
        """One order with 1–3 lines (or exactly ``lines``); about a third pay sales tax on top, a few
        have a coupon or a handling fee, so the totals exercise every surcharge kind."""
        sellables = db.execute(
            "SELECT p.product_id, p.sku, p.name, p.price, NULL AS size FROM products p "
            "UNION ALL SELECT v.product_id, v.sku, p.name, CASE WHEN v.default_price THEN p.price "
            "ELSE v.price END, substr(v.sku, -1) FROM variants v JOIN products p USING (product_id)"
        ).fetchall()
        if not sellables:
            raise ValueError("seed products before orders")
        number = db.execute("SELECT COUNT(*) FROM orders WHERE order_number IS NOT NULL").fetchone()[0] + 1
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, state, zipcode = rng.choice(CITIES)
        order_id = db.execute(
            "INSERT INTO orders (order_number, date, last_renew, currency, payment_status_id, "
            "shipping_status_id, payment_method, shipping_method, email, firstname, lastname, street, city,"
            " state, zipcode, country, phone, notes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                f"{number:05d}",
                date,
                # the last change is at or after placement, never in the store's future
                min(date + rng.randint(0, 600), max(date, int(self.now()))),
                self.currency,
                self._status_id(db, "status_payment", payment),
                self._status_id(db, "status_shipping", shipping),
                "Credit card",
                "UPS Ground",
                f"{first.lower()}.{last.lower()}{number}@example.com",
                first,
                last,
                f"{rng.randint(1, 999)} Main St",
                city,
                state,
                zipcode,
                "US",
                "5551234",
                "",
            ),
        ).lastrowid
        lines_total = Decimal("0")
        if lines is None:
            picks = [
                (row, rng.randint(1, 3))
                for row in rng.sample(sellables, k=min(len(sellables), rng.randint(1, 3)))
            ]
        else:
            by_sku = {row[1]: row for row in sellables}
            unknown = [sku for sku, _quantity in lines if sku not in by_sku]
            if unknown:
                raise ValueError(f"no product with SKU {', '.join(unknown)}")
            picks = [(by_sku[sku], int(quantity)) for sku, quantity in lines]
        for (product_id, sku, name, price, size), quantity in picks:
            attributes = json.dumps({"Size": size} if size else [])
            db.execute(
                "INSERT INTO order_items (order_id, product_id, sku, name, price, amount, attributes) "
                "VALUES (?,?,?,?,?,?,?)",
                (order_id, product_id, sku, name, price, quantity, attributes),
            )
            lines_total += Decimal(price) * quantity
        shipping_cost = Decimal(rng.choice(["0", "1.5", "4.99", "7.5"]))
        discount = Decimal("-3") if rng.random() < 0.2 else Decimal("0")
        other: dict[str, Any] = {}
        if rng.random() < 0.1:
            other["HANDLING"] = {"name": "Handling fee", "value": "1.25"}
        included = rng.random() < 0.15
        rate = SALES_TAX_RATE / 100 if rng.random() < 0.35 or included else Decimal("0")
        taxable = lines_total + discount
        tax = (taxable * rate / (1 + rate) if included else taxable * rate).quantize(CENT, ROUND_HALF_UP)
        total = lines_total + shipping_cost + discount + sum(Decimal(s["value"]) for s in other.values())
        if not included:
            total += tax
        db.execute(
            "UPDATE orders SET shipping_cost=?, tax=?, tax_included=?, discount=?, other=?, total=? "
            "WHERE order_id=?",
            (
                str(shipping_cost),
                str(tax),
                int(included),
                str(discount),
                json.dumps(other),
                str(total),
                order_id,
            ),
        )
        return int(order_id)

    # -- inspection API ----------------------------------------------------------------------------

    def connector_credentials(self) -> dict[str, Any]:
        return {"api_key": self.rw_key}

    def connector_settings(self) -> dict[str, Any]:
        return {
            "api_flavour": "auto",
            "currency": self.currency,
            "processed_status": "S",
            "import_statuses": ["P", "A", "Q"],
            "order_lookback_days": min(90, self._seeded_days + 1),
            "stock_sync": True,
            "price_sync": True,
        }

    def add_order(self, **kwargs: Any) -> str:
        """A new paid order placed now (``payment``/``shipping`` codes may be given; ``lines`` as
        ``[(sku, quantity), ...]`` sells exactly those instead of 1–3 random products)."""
        rng = random.Random(kwargs.get("rng_seed"))
        with self.transaction() as db:
            order_id = self._insert_order(
                db,
                rng,
                int(self.now()),
                kwargs.get("payment", "P"),
                kwargs.get("shipping", "N"),
                lines=kwargs.get("lines"),
            )
        return str(order_id)

    def set_order_status(
        self,
        order_external_id: str,
        *,
        payment: str | None = None,
        shipping: str | None = None,
        dated: bool = True,
    ) -> None:
        """Change an order's statuses as the X-Cart admin does, however old the order is.

        Cancelling an order in the admin sets its *payment* status to ``C`` and leaves its shipping
        status and its ``date`` alone. ``dated`` moves ``lastRenewDate`` (what the API exposes as
        the last-change time) to now; which admin actions move it on a real store is not
        documented, so ``dated=False`` stands for a change the API does not date.
        """
        order_id = int(order_external_id)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone() is None:
                raise KeyError(order_external_id)
            for code, table, column in (
                (payment, "status_payment", "payment_status_id"),
                (shipping, "status_shipping", "shipping_status_id"),
            ):
                if code is not None:
                    db.execute(
                        f"UPDATE orders SET {column} = ? WHERE order_id = ?",
                        (self._status_id(db, table, code), order_id),
                    )
            if dated:
                db.execute("UPDATE orders SET last_renew = ? WHERE order_id = ?", (int(self.now()), order_id))

    def admin_notes(self, order_external_id: str) -> str:
        """The order's staff note ("Staff notes" in the X-Cart admin)."""
        with self.lock:
            row = self.db.execute(
                "SELECT admin_notes FROM orders WHERE order_id = ?", (int(order_external_id),)
            ).fetchone()
        if row is None:
            raise KeyError(order_external_id)
        return str(row[0] or "")

    def cancel_order(self, order_external_id: str, *, dated: bool = True) -> None:
        """Cancel in the admin: the payment status becomes Cancelled, the rest stays."""
        self.set_order_status(order_external_id, payment="C", dated=dated)

    def place_order(self, *, age_seconds: int, payment: str = "P", shipping: str = "N") -> str:
        """An order placed ``age_seconds`` ago (last changed then too)."""
        rng = random.Random(age_seconds)
        with self.transaction() as db:
            order_id = self._insert_order(db, rng, int(self.now()) - age_seconds, payment, shipping)
            db.execute("UPDATE orders SET last_renew = date WHERE order_id = ?", (order_id,))
        return str(order_id)

    def _effective(self, sku: str, column: str) -> Any:
        """What the store sells ``sku`` at: a variant's own value unless it uses its product's default."""
        with self.lock:
            row = (
                self.db.execute(
                    f"SELECT CASE WHEN v.default_{column} THEN p.{column} ELSE v.{column} END "
                    "FROM variants v JOIN products p USING (product_id) WHERE v.sku = ?",
                    (sku,),
                ).fetchone()
                or self.db.execute(f"SELECT {column} FROM products WHERE sku = ?", (sku,)).fetchone()
            )
        if row is None:
            raise KeyError(sku)
        return row[0]

    def stock_of(self, sku: str) -> int:
        return int(self._effective(sku, "amount"))

    def price_of(self, sku: str) -> Decimal:
        return Decimal(self._effective(sku, "price"))

    def tax_rate_of(self, sku: str) -> Decimal:
        self._effective(sku, "price")  # an unknown SKU is a KeyError here too
        return SALES_TAX_RATE

    def checkout_price_of(self, sku: str) -> Decimal:
        """The product's price plus the sales tax X-Cart adds on top of it."""
        return self.with_tax(self.price_of(sku), self.tax_rate_of(sku))

    def tracking_numbers(self, order_external_id: str) -> list[str]:
        with self.lock:
            rows = self.db.execute(
                "SELECT value FROM tracking WHERE order_id = ? ORDER BY tracking_id",
                (int(order_external_id),),
            ).fetchall()
        return [row[0] for row in rows]

    def order_status(self, order_external_id: str) -> str:
        """The order's *shipping* status code (what "processed" sets)."""
        with self.lock:
            row = self.db.execute(
                "SELECT s.code FROM orders o JOIN status_shipping s ON s.id = o.shipping_status_id "
                "WHERE o.order_id = ?",
                (int(order_external_id),),
            ).fetchone()
        if row is None:
            raise KeyError(order_external_id)
        return str(row[0])

    def payment_status(self, order_external_id: str) -> str:
        with self.lock:
            row = self.db.execute(
                "SELECT s.code FROM orders o JOIN status_payment s ON s.id = o.payment_status_id "
                "WHERE o.order_id = ?",
                (int(order_external_id),),
            ).fetchone()
        if row is None:
            raise KeyError(order_external_id)
        return str(row[0])

    def order_count(self) -> int:
        """Placed orders a full download returns: everything but "not finished" (``NF``) ones."""
        with self.lock:
            return int(
                self.db.execute(
                    "SELECT COUNT(*) FROM orders o JOIN status_shipping s ON s.id = o.shipping_status_id "
                    "WHERE s.code != 'NF'"
                ).fetchone()[0]
            )

    def shipping_codes(self) -> list[str]:
        with self.lock:
            return [row[0] for row in self.db.execute("SELECT code FROM status_shipping ORDER BY position")]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "flavour": self.flavour}

    # -- dispatch ----------------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        with self.lock:
            line = f"{request.method} {request.path}" + (
                f"?{request.query_string}" if request.query_string else ""
            )
            self.access_log.append(line)
            del self.access_log[:-5000]
        if request.path.startswith("/api/") or request.path == "/api":
            if self.flavour == "builtin":
                return self._builtin(request)
            return SandboxResponse.text("<html><body><h1>Page not found</h1></body></html>", 404)
        if request.path.rstrip("/").endswith("/" + self.admin_script):
            if self.flavour == "addon" and request.arg("target") == "RESTAPI":
                return self._addon(request)
            # any other admin target without a session (and RESTAPI on 5.5) goes to the login page
            return SandboxResponse(
                302,
                b"",
                {"Location": f"{self.admin_script}?target=login", "Content-Type": "text/html; charset=UTF-8"},
            )
        return SandboxResponse.text("<html><body><h1>Page not found</h1></body></html>", 404)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Set-Cookie": f"xid={secrets.token_hex(16)}; path=/; HttpOnly"}
        if self.flavour == "addon":
            # The add-on prints its own Date with PHP's date('r'): a numeric zone, not "GMT".
            headers["Date"] = php_date_r(self.now())
        elif self.faults.clock_skew_seconds:
            headers["Date"] = formatdate(self.now(), usegmt=True)
        return {**headers, **(extra or {})}

    # ------------------------------------------------------------------------------------------------
    # 5.x REST API add-on
    # ------------------------------------------------------------------------------------------------

    def _addon_error(self, status: int, reason: str = "") -> SandboxResponse:
        headers = {"X-REST-Error": reason} if reason else {}
        return SandboxResponse.empty(status, self._headers(headers))

    def _addon_ok(self, data: Any) -> SandboxResponse:
        body = json.dumps(data, separators=(",", ":")).encode()
        count = len(data) if isinstance(data, list) else 1
        headers = self._headers(
            {
                "Content-Type": JSON_TYPE,
                "X-Result-Count": str(count),
                "Allow": "GET,POST,PUT,DELETE",
                "ETag": hashlib.md5(body).hexdigest(),  # an ETag, not security
                "Accept-Ranges": "bytes",
            }
        )
        return SandboxResponse(200, body, headers)

    def _addon(self, request: SandboxRequest) -> SandboxResponse:
        query = php_parse(parse_qsl(request.query_string, keep_blank_values=True))
        body_fields: dict[str, Any] = {}
        json_model: Any = None
        content_type = request.header("content-type")
        if request.body and "application/json" in content_type:
            try:
                parsed = json.loads(request.body.decode("utf-8"))
            except ValueError:
                return self._addon_error(400, "Input data is incorrect")
            json_model = parsed.get("model", parsed) if isinstance(parsed, dict) else parsed
        elif request.body:
            body_fields = php_parse(
                parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            )
        if not self.key_from_body:
            body_fields.pop("_key", None)
        merged = {**body_fields, **query}
        method = str(
            merged.get("_method") or request.header("X-HTTP-Method-Override") or request.method
        ).upper()
        if method not in ("GET", "POST", "PUT", "DELETE"):
            method = "GET"
        path = str(merged.get("_path") or "").strip("/")
        entity, _, item = path.partition("/")
        entity = entity.lower()
        if not entity or entity not in ENTITIES:
            return self._addon_error(404)
        key = str(merged.get("_key") or "")
        full = bool(key) and key == self.rw_key and not self.faults.expired_token
        read = full or (bool(key) and key == self.read_key and not self.faults.expired_token)
        if not read or (method != "GET" and not full):
            return self._addon_error(403)
        schema = str(merged.get("_schema") or "default")
        if schema == "complex":
            if method != "GET":
                return self._addon_error(403)
            if entity not in COMPLEX_ENTITIES:
                return SandboxResponse.text(
                    "<html><body><b>Fatal error</b>: Uncaught Error: Class not found</body></html>", 500
                )
        model = json_model if json_model is not None else merged.get("model")
        cnd_value = merged.get("_cnd")
        cnd = cnd_value if isinstance(cnd_value, dict) else {}
        if isinstance(cnd.get("dateRange"), dict):
            return SandboxResponse.text(
                "<html><body><b>Fatal error</b>: trim(): Argument #1 must be of type string</body></html>",
                500,
            )
        with self.lock:
            try:
                data = self._addon_route(method, entity, item, schema, cnd, model, full)
            except _Rejected as exc:
                return self._addon_error(400, str(exc))
        return self._addon_ok(data)

    def _addon_route(
        self,
        method: str,
        entity: str,
        item: str,
        schema: str,
        cnd: dict[str, Any],
        model: Any,
        full_key: bool = True,
    ) -> Any:
        one = item != ""
        item_id = php_int(item) if one else 0
        if entity == "config":
            if method != "GET":
                raise _Rejected("The configuration is read-only in this sandbox")
            rows = self._config_rows(full_key)
            if one:
                return next((row for row in rows if row["config_id"] == item_id), None)
            limit_value = cnd.get("limit")
            limit = limit_value if isinstance(limit_value, dict) else {}
            start = max(0, php_int(limit.get("0", 0)))
            count = php_int(limit.get("1", 0))
            return rows[start : start + count] if count > 0 else rows[start:]
        if entity in ("order-status-shipping", "order-status-payment"):
            table = "status_shipping" if entity.endswith("shipping") else "status_payment"
            if method != "GET":
                raise _Rejected("Status dictionaries are read-only in this sandbox")
            if one:
                row = self.db.execute(f"SELECT * FROM {table} WHERE id = ?", (item_id,)).fetchone()
                if row is None:
                    return None
                return {
                    "id": row["id"],
                    "code": row["code"],
                    "position": row["position"],
                    "translations": [{"label_id": row["id"], "code": "en", "name": row["name"]}],
                }
            rows = self.db.execute(f"SELECT * FROM {table} ORDER BY position").fetchall()
            return [{"id": r["id"], "code": r["code"], "position": r["position"]} for r in rows]
        if entity == "order":
            return self._order_route(method, one, item_id, schema, cnd, model)
        if entity == "ordertrackingnumber":
            return self._tracking_route(method, one, item_id, model)
        if entity == "product":
            return self._product_route(method, one, item_id, schema, cnd, model)
        if entity == "xc-productvariants-productvariant":
            return self._variant_route(method, one, item_id, cnd, model)
        return [] if not one else None  # profiles and order items: nothing a client here needs

    def _config_rows(self, full_key: bool) -> list[dict[str, Any]]:
        """X-Cart's ``config`` entity: a few hundred options ordered by ``orderby``, the core version
        among them (category ``Version``), the add-on's own keys only for the read/write key."""
        rows: list[dict[str, Any]] = []

        def add(category: str, name: str, value: str, kind: str = "text") -> None:
            rows.append(
                {
                    "config_id": len(rows) + 1,
                    "name": name,
                    "category": category,
                    "type": kind,
                    "orderby": len(rows) * 10,
                    "value": value,
                    "translations": [],
                }
            )

        for n in range(1, 181):
            add("General", f"option_{n}", str(n))
        add("Company", "company_name", "Sandbox store")
        add("Email", "smtp_password", "smtp-secret", "password")
        if full_key:
            add("XC\\RESTAPI", "key", self.rw_key)
            add("XC\\RESTAPI", "key_read", self.read_key)
        for n in range(1, 41):
            add("Performance", f"option_{n}", "1", "checkbox")
        if self.version is not None:
            add("Version", "version", self.version, "")
        return rows

    # -- orders (add-on) ---------------------------------------------------------------------------

    def _order_route(
        self, method: str, one: bool, order_id: int, schema: str, cnd: dict[str, Any], model: Any
    ) -> Any:
        if method == "GET":
            if one:
                row = self._order_row(order_id)
                if row is None:
                    return None
                return self._complex_order(row) if schema == "complex" else self._default_order(row, True)
            rows = self._search_orders(cnd)
            limit = cnd.get("limit")
            if isinstance(limit, dict) and php_int(limit.get("1", 0)) == 1:
                with self.lock:
                    self.probe_count += 1  # a one-row read: "is there any such order?"
            if schema == "complex":
                return [self._complex_order(row) for row in rows]
            return [self._default_order(row, False) for row in rows]
        if method == "PUT":
            if one:
                if order_id <= 0 or self._order_row(order_id) is None:
                    return None
                self._apply_order_model(order_id, model if isinstance(model, dict) else {})
                return self._default_order(self._order_row(order_id), True)
            results: list[dict[str, Any] | None] = []
            for entry in as_list(model):
                entry_id = php_int(entry.get("order_id", 0)) if isinstance(entry, dict) else 0
                if entry_id <= 0 or self._order_row(entry_id) is None:
                    results.append(None)
                    continue
                self._apply_order_model(entry_id, entry)
                results.append(self._default_order(self._order_row(entry_id), True))
            return results
        raise _Rejected("This sandbox does not create or delete orders through the API")

    def _order_row(self, order_id: int) -> Any:
        return self.db.execute(
            "SELECT o.*, ps.code AS payment_code, ps.position AS payment_position, ss.code AS shipping_code, "
            "ss.position AS shipping_position FROM orders o "
            "JOIN status_payment ps ON ps.id = o.payment_status_id "
            "JOIN status_shipping ss ON ss.id = o.shipping_status_id WHERE o.order_id = ?",
            (order_id,),
        ).fetchone()

    def _search_orders(self, cnd: dict[str, Any]) -> list[Any]:
        where: list[str] = []
        args: list[Any] = []
        date = cnd.get("date")
        if isinstance(date, dict):
            start, end = php_int(date.get("0", 0)), php_int(date.get("1", 0))
            if start:
                where.append("o.date >= ?")
                args.append(start)
            if end:
                where.append("o.date <= ?")
                args.append(end)
        for name, alias in (("paymentStatus", "ps"), ("shippingStatus", "ss")):
            value = cnd.get(name)
            if value in (None, "", {}):
                continue
            codes = [str(v) for v in as_list(value)]
            column = "id" if all(c.isdigit() for c in codes) else "code"
            where.append(f"{alias}.{column} IN ({','.join('?' * len(codes))})")
            args.extend(int(c) if column == "id" else c for c in codes)
        if cnd.get("orderNumber"):
            where.append("o.order_number = ?")
            args.append(str(cnd["orderNumber"]))
        if cnd.get("orderId"):
            where.append("o.order_id = ?")
            args.append(php_int(cnd["orderId"]))
        order_sql = "o.order_id ASC"
        order_by = cnd.get("orderBy")
        if isinstance(order_by, dict):
            fields = {"o.date": "o.date", "o.order_id": "o.order_id", "o.lastRenewDate": "o.last_renew"}
            sort_column = fields.get(str(order_by.get("0", "")))
            if sort_column is None:
                raise _Rejected(f"[Semantical Error] Unknown sort field {order_by.get('0')!r}")
            direction = "DESC" if str(order_by.get("1", "ASC")).upper() == "DESC" else "ASC"
            order_sql = f"{sort_column} {direction}, o.order_id {direction}"
        sql = (
            "SELECT o.*, ps.code AS payment_code, ps.position AS payment_position, ss.code AS shipping_code, "
            "ss.position AS shipping_position FROM orders o "
            "JOIN status_payment ps ON ps.id = o.payment_status_id "
            "JOIN status_shipping ss ON ss.id = o.shipping_status_id"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_sql}"
        sql += _limit_sql(cnd, args)
        steps = [0]

        def tick() -> int:
            steps[0] += 1
            return 0

        self.db.set_progress_handler(tick, 100)
        try:
            rows = self.db.execute(sql, args).fetchall()
        finally:
            self.db.set_progress_handler(None, 100)
        self.order_search_steps.append(steps[0])
        return rows

    def _items(self, order_id: int) -> list[Any]:
        return self.db.execute(
            "SELECT * FROM order_items WHERE order_id = ? ORDER BY item_id", (order_id,)
        ).fetchall()

    def _tracking_rows(self, order_id: int) -> list[Any]:
        return self.db.execute(
            "SELECT * FROM tracking WHERE order_id = ? ORDER BY tracking_id", (order_id,)
        ).fetchall()

    def _complex_order(self, row: Any) -> dict[str, Any]:
        order_id = row["order_id"]
        total = num(row["total"] or 0)
        shipping_cost = num(row["shipping_cost"] or 0)
        items = []
        for item in self._items(order_id):
            subtotal = num(item["price"]) * item["amount"]  # float arithmetic, as PHP does: noise
            attributes = json.loads(item["attributes"] or "[]")
            items.append(
                {
                    "sku": item["sku"],
                    "productId": item["product_id"],
                    "name": item["name"],
                    "description": "",
                    "shortDescription": "",
                    "attributes": attributes,
                    "price": num(item["price"]),
                    "weight": 0.5,
                    "quantity": item["amount"],
                    "subtotal": subtotal,
                    "total": subtotal,
                    "releaseDate": row["date"],
                    "URL": f"{self.base_url}/cart.php?target=product&amp;product_id={item['product_id']}",
                    "enabled": True,
                    "freeShipping": False,
                }
            )
        other = json.loads(row["other"] or "{}")
        tracking = self._tracking_rows(order_id)
        address = {
            "firstname": row["firstname"],
            "lastname": row["lastname"],
            "address": row["street"],
            "city": row["city"],
            "state": row["state"],
            "zipcode": row["zipcode"],
            "country": row["country"],
            "phone": row["phone"],
            "isDefaultShippingAddress": True,
            "isDefaultBillingAddress": True,
        }
        return {
            "orderId": order_id,
            "orderNumber": row["order_number"],
            "total": total,
            "subtotal": total - shipping_cost,
            "shippingCost": shipping_cost,
            "taxAmount": num(row["tax"] or 0),
            "discountValue": num(row["discount"] or 0),
            "paymentFee": 0,
            "otherSurcharges": {
                code: {"name": s["name"], "value": num(s["value"])} for code, s in other.items()
            }
            or [],
            "currency": row["currency"],
            "items": items,
            "orderDate": iso(row["date"]),
            "updateDate": iso(row["last_renew"]),
            "trackingNumber": tracking[0]["value"] if tracking else "",
            "customerNotes": row["notes"] or "",
            "adminNotes": row["admin_notes"] or "",
            "coupon": [],
            "customerInfo": {
                "profileId": order_id + 1000,
                "isAnonymous": False,
                "login": row["email"],
                "email": row["email"],
                "status": "E",
                "isAdmin": False,
                "addedDate": row["date"],
                "membership": None,
                "firstname": row["firstname"],
                "lastname": row["lastname"],
            },
            "billingInfo": address,
            "shippingInfo": dict(address),
            "paymentMethod": row["payment_method"],
            "paymentStatus": row["payment_code"],
            "shippingMethod": row["shipping_method"],
            "shippingStatus": row["shipping_code"],
            "transactions": [],
            "details": [],
        }

    def _default_order(self, row: Any, with_associations: bool) -> dict[str, Any]:
        order_id = row["order_id"]
        data: dict[str, Any] = {
            "order_id": order_id,
            "orderNumber": row["order_number"],
            "date": row["date"],
            "lastRenewDate": row["last_renew"],
            "total": num(row["total"] or 0),
            "subtotal": num(row["total"] or 0) - num(row["shipping_cost"] or 0),
            "shipping_id": 1,
            "shipping_method_name": row["shipping_method"],
            "payment_method_name": row["payment_method"],
            "tracking": "",
            "notes": row["notes"] or "",
            "adminNotes": row["admin_notes"] or "",
            "recent": False,
            "stockStatus": "",
            "xcPendingExport": False,
            "mailchimpStoreId": "",
            "demo": False,
            "usedCoupons": [],
        }
        if not with_associations:
            return data
        data["profile"] = {
            "profile_id": order_id + 1000,
            "login": row["email"],
            "password": "$2y$10$" + "x" * 53,
        }
        data["paymentStatus"] = {
            "id": row["payment_status_id"],
            "code": row["payment_code"],
            "position": row["payment_position"],
        }
        data["shippingStatus"] = {
            "id": row["shipping_status_id"],
            "code": row["shipping_code"],
            "position": row["shipping_position"],
        }
        data["items"] = [
            {
                "item_id": item["item_id"],
                "name": item["name"],
                "sku": item["sku"],
                "price": num(item["price"]),
                "itemNetPrice": num(item["price"]),
                "discountedSubtotal": num(item["price"]) * item["amount"],
                "amount": item["amount"],
                "backorderedAmount": 0,
                "total": num(item["price"]) * item["amount"],
                "subtotal": num(item["price"]) * item["amount"],
            }
            for item in self._items(order_id)
        ]
        data["surcharges"] = self._surcharges(row)
        data["trackingNumbers"] = [
            {"tracking_id": t["tracking_id"], "value": t["value"], "creationDate": t["creation_date"]}
            for t in self._tracking_rows(order_id)
        ]
        data["currency"] = {"currency_id": 840, "code": row["currency"], "symbol": "$"}
        return data

    def _surcharges(self, row: Any) -> list[dict[str, Any]]:
        surcharges = []
        if row["shipping_cost"] is not None:
            surcharges.append(("shipping", "SHIPPING", "Shipping cost", row["shipping_cost"], False))
        if Decimal(row["tax"] or 0):
            surcharges.append(("tax", "CDEV.STAX.1", "Sales tax", row["tax"], bool(row["tax_included"])))
        if Decimal(row["discount"] or 0):
            surcharges.append(("discount", "DCOUPON", "Coupon discount", row["discount"], False))
        for code, other in json.loads(row["other"] or "{}").items():
            surcharges.append(("handling", code, other["name"], other["value"], False))
        return [
            {
                "id": index,
                "type": kind,
                "code": code,
                "class": "",
                "include": include,
                "available": True,
                "value": num(value),
                "name": name,
                "weight": 0,
            }
            for index, (kind, code, name, value, include) in enumerate(surcharges, start=1)
        ]

    def _apply_order_model(self, order_id: int, model: dict[str, Any]) -> None:
        """Status associations by code (or id), tracking rows and the staff note, the way X-Cart's
        loader does it: all of one PUT in one flush."""
        with self.transaction() as db:
            if isinstance(model.get("adminNotes"), str):
                db.execute(
                    "UPDATE orders SET admin_notes = ? WHERE order_id = ?", (model["adminNotes"], order_id)
                )
                self.record_write("note", order_id, model["adminNotes"])
            for name, table, column in (
                ("shippingStatus", "status_shipping", "shipping_status_id"),
                ("paymentStatus", "status_payment", "payment_status_id"),
            ):
                value = model.get(name)
                if not isinstance(value, dict):
                    continue  # a scalar for an association is silently ignored
                self._set_status(db, order_id, table, column, value)
            for entry in as_list(model.get("trackingNumbers")):
                if not isinstance(entry, dict) or "value" not in entry:
                    continue
                self._put_tracking(db, order_id, entry)

    def _set_status(self, db: Any, order_id: int, table: str, column: str, value: dict[str, Any]) -> None:
        current_id = db.execute(f"SELECT {column} FROM orders WHERE order_id = ?", (order_id,)).fetchone()[0]
        if "id" in value and php_int(value["id"]):
            row = db.execute(f"SELECT id, code FROM {table} WHERE id = ?", (php_int(value["id"]),)).fetchone()
        else:
            code = str(value.get("code", ""))
            row = db.execute(f"SELECT id, code FROM {table} WHERE code = ?", (code,)).fetchone()
            if row is None and code:
                # X-Cart's loader falls back to the order's current status object and rewrites its
                # code: the status is renamed for every order in the store.
                old = db.execute(f"SELECT code FROM {table} WHERE id = ?", (current_id,)).fetchone()[0]
                db.execute(f"UPDATE {table} SET code = ? WHERE id = ?", (code, current_id))
                self.status_renames.append((old, code))
                self.record_write("status", f"store:{table}:{old}", code)
                return
        if row is None or row["id"] == current_id:
            return
        db.execute(
            f"UPDATE orders SET {column} = ?, last_renew = ? WHERE order_id = ?",
            (row["id"], int(self.now()), order_id),
        )
        if table == "status_shipping":
            self.record_write("status", order_id, row["code"])
        else:
            self.record_write("history", order_id, f"payment status {row['code']}")

    def _put_tracking(self, db: Any, order_id: int, entry: dict[str, Any]) -> int:
        value = str(entry.get("value", ""))
        tracking_id = php_int(entry.get("tracking_id", 0))
        now = int(self.now())
        if (
            tracking_id
            and db.execute("SELECT 1 FROM tracking WHERE tracking_id = ?", (tracking_id,)).fetchone()
        ):
            db.execute(
                "UPDATE tracking SET value = ?, creation_date = ? WHERE tracking_id = ?",
                (value, now, tracking_id),
            )
        else:
            tracking_id = db.execute(
                "INSERT INTO tracking (order_id, value, creation_date) VALUES (?,?,?)", (order_id, value, now)
            ).lastrowid
        self.record_write("tracking", order_id, value)
        return int(tracking_id)

    def _tracking_route(self, method: str, one: bool, tracking_id: int, model: Any) -> Any:
        if method == "GET":
            if one:
                row = self.db.execute(
                    "SELECT * FROM tracking WHERE tracking_id = ?", (tracking_id,)
                ).fetchone()
                return self._tracking_out(row, True) if row else None
            return [
                self._tracking_out(r, False) for r in self.db.execute("SELECT * FROM tracking").fetchall()
            ]
        model = model if isinstance(model, dict) else {}
        if method == "POST" and one and tracking_id == 0:
            order_value = model.get("order")
            order = order_value if isinstance(order_value, dict) else {}
            order_id = php_int(order.get("order_id", 0))
            with self.transaction() as db:
                if (
                    order_id <= 0
                    or db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone() is None
                ):
                    # the quirk: the loader creates the order it cannot find — an empty one
                    order_id = (
                        db.execute(
                            "INSERT INTO orders (order_number, date, last_renew, currency, "
                            "payment_status_id, shipping_status_id, total, shipping_cost, tax, "
                            "tax_included, discount, other) "
                            "VALUES (NULL, ?, ?, ?, ?, ?, '0', '0', '0', 0, '0', '{}')",
                            (
                                int(self.now()),
                                int(self.now()),
                                self.currency,
                                self._status_id(db, "status_payment", "Q"),
                                self._status_id(db, "status_shipping", "N"),
                            ),
                        ).lastrowid
                        or 0
                    )
                    self.record_write("history", order_id, "empty order created by a tracking POST")
                new_id = self._put_tracking(db, int(order_id), {"value": model.get("value", "")})
                if isinstance(order.get("shippingStatus"), dict):
                    self._set_status(
                        db, int(order_id), "status_shipping", "shipping_status_id", order["shippingStatus"]
                    )
            row = self.db.execute("SELECT * FROM tracking WHERE tracking_id = ?", (new_id,)).fetchone()
            return self._tracking_out(row, True)
        if method == "PUT" and one:
            row = self.db.execute("SELECT * FROM tracking WHERE tracking_id = ?", (tracking_id,)).fetchone()
            if row is None:
                return None
            if "value" in model:
                with self.transaction() as db:
                    self._put_tracking(
                        db, row["order_id"], {"tracking_id": tracking_id, "value": model["value"]}
                    )
            row = self.db.execute("SELECT * FROM tracking WHERE tracking_id = ?", (tracking_id,)).fetchone()
            return self._tracking_out(row, True)
        raise _Rejected("This sandbox only creates tracking numbers one at a time")

    def _tracking_out(self, row: Any, with_order: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "tracking_id": row["tracking_id"],
            "value": row["value"],
            "creationDate": row["creation_date"],
        }
        if with_order:
            order = self._order_row(row["order_id"])
            data["order"] = self._default_order(order, False) if order else None
        return data

    # -- products and variants (add-on) ------------------------------------------------------------

    def _product_out(self, row: Any, with_associations: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "product_id": row["product_id"],
            "sku": row["sku"],
            "name": row["name"],
            "price": num(row["price"]),
            "amount": row["amount"],
            "inventoryEnabled": bool(row["inventory_enabled"]),
            "enabled": bool(row["enabled"]),
            "weight": num(row["weight"]),
            "arrivalDate": 0,
        }
        if with_associations:
            variants = self.db.execute(
                "SELECT * FROM variants WHERE product_id = ?", (row["product_id"],)
            ).fetchall()
            data["variants"] = [self._variant_out(v, False) for v in variants]
            data["quickData"] = []
            data["cleanURLs"] = []
            data["translations"] = [{"code": "en", "name": row["name"]}]
        return data

    def _variant_out(self, row: Any, with_product: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": row["id"],
            "variant_id": row["variant_id"],
            "sku": row["sku"],
            "price": num(row["price"]),
            "defaultPrice": bool(row["default_price"]),
            "amount": row["amount"],
            "defaultAmount": bool(row["default_amount"]),
            "weight": 0,
            "defaultWeight": True,
        }
        if with_product:
            product = self.db.execute(
                "SELECT * FROM products WHERE product_id = ?", (row["product_id"],)
            ).fetchone()
            data["product"] = self._product_out(product, False) if product else None
        return data

    def _product_route(
        self, method: str, one: bool, product_id: int, schema: str, cnd: dict[str, Any], model: Any
    ) -> Any:
        if method == "GET":
            if one:
                row = self.db.execute("SELECT * FROM products WHERE product_id = ?", (product_id,)).fetchone()
                return self._product_out(row, True) if row else None
            where, args = [], []
            if cnd.get("SKU"):
                where.append("sku LIKE ?")
                args.append(f"%{cnd['SKU']}%")
            if str(cnd.get("enabled", "")) == "1":
                where.append("enabled = 1")
            sql = "SELECT * FROM products" + (" WHERE " + " AND ".join(where) if where else "")
            order_by = cnd.get("orderBy")
            if isinstance(order_by, dict):
                columns = {"p.product_id": "product_id", "p.price": "price", "p.sku": "sku"}
                column = columns.get(str(order_by.get("0", "")))
                if column is None:
                    raise _Rejected(f"[Semantical Error] Unknown sort field {order_by.get('0')!r}")
                direction = "DESC" if str(order_by.get("1", "ASC")).upper() == "DESC" else "ASC"
                sql += f" ORDER BY {column} {direction}"
            else:
                sql += " ORDER BY product_id"
            sql += _limit_sql(cnd, args)
            rows = self.db.execute(sql, args).fetchall()
            if schema == "complex":
                return [
                    {
                        "sku": r["sku"],
                        "productId": r["product_id"],
                        "name": r["name"],
                        "price": num(r["price"]),
                        "quantity": r["amount"],
                        "enabled": bool(r["enabled"]),
                    }
                    for r in rows
                ]
            return [self._product_out(r, False) for r in rows]
        if method == "PUT":
            if one:
                if (
                    self.db.execute("SELECT 1 FROM products WHERE product_id = ?", (product_id,)).fetchone()
                    is None
                ):
                    return None
                self._apply_product(product_id, model if isinstance(model, dict) else {})
                row = self.db.execute("SELECT * FROM products WHERE product_id = ?", (product_id,)).fetchone()
                return self._product_out(row, True)
            results: list[dict[str, Any] | None] = []
            for entry in as_list(model):
                entry_id = php_int(entry.get("product_id", 0)) if isinstance(entry, dict) else 0
                if (
                    self.db.execute("SELECT 1 FROM products WHERE product_id = ?", (entry_id,)).fetchone()
                    is None
                ):
                    results.append(None)
                    continue
                self._apply_product(entry_id, entry)
                row = self.db.execute("SELECT * FROM products WHERE product_id = ?", (entry_id,)).fetchone()
                results.append(self._product_out(row, False))
            return results
        if method == "POST" and one and product_id == 0:
            model = model if isinstance(model, dict) else {}
            with self.transaction() as db:
                new_id = db.execute(
                    "INSERT INTO products (sku, name, price, amount) VALUES (?,?,?,?)",
                    (
                        str(model.get("sku", ""))[:SKU_MAX],
                        str(model.get("name", "")),
                        str(php_decimal(model.get("price", 0))),
                        max(0, php_int(model.get("amount", 0))),
                    ),
                ).lastrowid
            row = self.db.execute("SELECT * FROM products WHERE product_id = ?", (new_id,)).fetchone()
            return self._product_out(row, True)
        raise _Rejected("This sandbox does not delete products")

    def _apply_product(self, product_id: int, model: dict[str, Any]) -> None:
        """No validation, as in X-Cart: ``amount=abc`` is 0, negative stock is 0, long SKUs are cut."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM products WHERE product_id = ?", (product_id,)).fetchone()
            sku = row["sku"]
            if "sku" in model:
                sku = str(model["sku"])[:SKU_MAX]
                db.execute("UPDATE products SET sku = ? WHERE product_id = ?", (sku, product_id))
            if "amount" in model:
                amount = max(0, php_int(model["amount"]))
                db.execute("UPDATE products SET amount = ? WHERE product_id = ?", (amount, product_id))
                self.record_write("stock", sku, amount)
            if "price" in model:
                price = php_decimal(model["price"])
                db.execute("UPDATE products SET price = ? WHERE product_id = ?", (str(price), product_id))
                self.record_write("price", sku, price)
            for flag, column in (("enabled", "enabled"), ("inventoryEnabled", "inventory_enabled")):
                if flag in model:
                    db.execute(
                        f"UPDATE products SET {column} = ? WHERE product_id = ?",
                        (int(php_bool(model[flag])), product_id),
                    )
            for entry in as_list(model.get("variants")):
                if isinstance(entry, dict) and php_int(entry.get("id", 0)):
                    self._apply_variant(db, php_int(entry["id"]), entry)

    def _apply_variant(self, db: Any, variant_id: int, model: dict[str, Any]) -> bool:
        row = db.execute("SELECT * FROM variants WHERE id = ?", (variant_id,)).fetchone()
        if row is None:
            return False
        if "amount" in model:
            amount = max(0, php_int(model["amount"]))
            db.execute("UPDATE variants SET amount = ? WHERE id = ?", (amount, variant_id))
            self.record_write("stock", row["sku"], amount)
        if "price" in model:
            price = php_decimal(model["price"])
            db.execute("UPDATE variants SET price = ? WHERE id = ?", (str(price), variant_id))
            self.record_write("price", row["sku"], price)
        for flag, column in (("defaultAmount", "default_amount"), ("defaultPrice", "default_price")):
            if flag in model:
                db.execute(
                    f"UPDATE variants SET {column} = ? WHERE id = ?", (int(php_bool(model[flag])), variant_id)
                )
        if "sku" in model:
            db.execute("UPDATE variants SET sku = ? WHERE id = ?", (str(model["sku"])[:SKU_MAX], variant_id))
        return True

    def _variant_route(self, method: str, one: bool, variant_id: int, cnd: dict[str, Any], model: Any) -> Any:
        if method == "GET":
            if one:
                row = self.db.execute("SELECT * FROM variants WHERE id = ?", (variant_id,)).fetchone()
                return self._variant_out(row, True) if row else None
            sql, args = "SELECT * FROM variants", []
            if cnd.get("product") not in (None, ""):
                sql += " WHERE product_id = ?"
                args.append(php_int(cnd["product"]))
            sql += " ORDER BY id" + _limit_sql(cnd, args)
            return [self._variant_out(r, False) for r in self.db.execute(sql, args).fetchall()]
        if method == "PUT":
            entries = (
                [(variant_id, model)]
                if one
                else [(php_int(e.get("id", 0)) if isinstance(e, dict) else 0, e) for e in as_list(model)]
            )
            results = []
            for entry_id, entry in entries:
                with self.transaction() as db:
                    found = self._apply_variant(db, entry_id, entry if isinstance(entry, dict) else {})
                row = self.db.execute("SELECT * FROM variants WHERE id = ?", (entry_id,)).fetchone()
                results.append(self._variant_out(row, one) if found and row else None)
            return results[0] if one else results
        raise _Rejected("This sandbox does not create or delete variants")

    # ------------------------------------------------------------------------------------------------
    # 5.5+ built-in API
    # ------------------------------------------------------------------------------------------------

    def _api_json(self, data: Any, status: int = 200) -> SandboxResponse:
        return SandboxResponse.json(
            data, status, self._headers(), content_type="application/json; charset=utf-8"
        )

    def _api_problem(self, status: int, detail: str) -> SandboxResponse:
        return SandboxResponse.json(
            {
                "type": "https://tools.ietf.org/html/rfc2616#section-10",
                "title": "An error occurred",
                "detail": detail,
                "status": status,
            },
            status,
            self._headers(),
            content_type="application/problem+json; charset=utf-8",
        )

    def _builtin(self, request: SandboxRequest) -> SandboxResponse:
        token = request.header("X-Auth-Token")
        full = bool(token) and token == self.rw_key and not self.faults.expired_token
        read = full or (bool(token) and token == self.read_key and not self.faults.expired_token)
        if not read:
            return SandboxResponse.json(
                {"message": "Invalid credentials."}
                if token
                else {"message": "Full authentication is required."},
                401,
                self._headers(),
            )
        if request.method not in ("GET", "HEAD") and not full:
            return self._api_problem(403, "Access Denied.")
        parts = [p for p in request.path.split("/") if p][1:]  # drop "api"
        params = parse_qsl(request.query_string, keep_blank_values=True)
        body: Any = None
        if request.method in ("PUT", "POST", "PATCH"):
            try:
                body = json.loads(request.body.decode("utf-8") or "null")
            except ValueError:
                return self._api_problem(400, "Syntax error")
        with self.lock:
            try:
                return self._builtin_route(request.method, parts, params, body)
            except _Rejected as exc:
                return self._api_problem(400, str(exc))
            except _NotFound:
                return self._api_problem(404, "Not Found")

    def _builtin_route(
        self, method: str, parts: list[str], params: list[tuple[str, str]], body: Any
    ) -> SandboxResponse:
        if parts[:1] == ["orders"]:
            if len(parts) == 1 and method == "GET":
                return self._api_json(self._builtin_orders(params))
            if len(parts) == 3 and parts[1] == "by_number" and method == "GET":
                row = self.db.execute(
                    "SELECT order_id FROM orders WHERE order_number = ?", (parts[2],)
                ).fetchone()
                if row is None:
                    raise _NotFound
                return self._api_json(self._builtin_order(self._order_row(row[0])))
            if len(parts) >= 2 and parts[1].isdigit():
                order_id = int(parts[1])
                if len(parts) == 2 and method == "GET":
                    row = self._order_row(order_id)
                    if row is None:
                        raise _NotFound
                    return self._api_json(self._builtin_order(row))
                if len(parts) == 3 and parts[2] in ("shipping_status", "payment_status"):
                    return self._builtin_status(method, order_id, parts[2], body)
        if parts[:1] == ["products"]:
            return self._builtin_products(method, parts, params, body)
        raise _NotFound

    def _builtin_orders(self, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        payment: list[str] = []
        shipping: list[str] = []
        direction = "ASC"
        sort_column = "o.date"
        page, per_page = 1, 30
        operators = {"after": ">=", "strictly_after": ">", "before": "<=", "strictly_before": "<"}
        for name, value in params:
            match = re.fullmatch(r"date\[(\w+)\]", name)
            if match and match.group(1) in operators:
                epoch = _php_datetime(value)
                if epoch is not None:  # an unreadable date is silently ignored, as in X-Cart
                    where.append(f"o.date {operators[match.group(1)]} ?")
                    args.append(epoch)
            elif name in ("paymentStatus.code", "paymentStatus.code[]"):
                payment.append(value)
            elif name in ("shippingStatus.code", "shippingStatus.code[]"):
                shipping.append(value)
            elif name in ("order[date]", "order[lastRenewDate]"):
                direction = "DESC" if value.lower() == "desc" else "ASC"
                sort_column = "o.date" if name == "order[date]" else "o.last_renew"
            elif name == "page":
                page = max(1, php_int(value))
            elif name == "itemsPerPage":
                per_page = min(100, max(1, php_int(value)))
        if per_page == 1:
            with self.lock:
                self.probe_count += 1  # a one-row read: "is there any such order?"
        for codes, alias in ((payment, "ps"), (shipping, "ss")):
            if codes:
                where.append(f"{alias}.code IN ({','.join('?' * len(codes))})")
                args.extend(codes)
        sql = (
            "SELECT o.*, ps.code AS payment_code, ps.position AS payment_position, ss.code AS shipping_code, "
            "ss.position AS shipping_position FROM orders o "
            "JOIN status_payment ps ON ps.id = o.payment_status_id "
            "JOIN status_shipping ss ON ss.id = o.shipping_status_id"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {sort_column} {direction}, o.order_id {direction} LIMIT ? OFFSET ?"
        args.extend([per_page, (page - 1) * per_page])
        return [self._builtin_order(row) for row in self.db.execute(sql, args).fetchall()]

    def _status_out(self, table: str, code: str) -> dict[str, Any]:
        row = self.db.execute(f"SELECT * FROM {table} WHERE code = ?", (code,)).fetchone()
        return {"id": row["id"], "code": row["code"], "name": row["name"], "customer_name": row["name"]}

    def _builtin_order(self, row: Any) -> dict[str, Any]:
        order_id = row["order_id"]
        address = {
            "firstname": row["firstname"],
            "lastname": row["lastname"],
            "phone": row["phone"],
            "street": row["street"],
            "zipcode": row["zipcode"],
            "city": row["city"],
            "country_code": row["country"],
            "state": 1,
            "state_name": row["state"],
            "custom_fields": [],
        }
        lines_total = sum((Decimal(i["price"]) * i["amount"] for i in self._items(order_id)), Decimal("0"))
        return {
            "id": order_id,
            "order_number": row["order_number"],
            "total": num(row["total"] or 0),
            "sub_total": num(lines_total),
            "currency": row["currency"],
            "email": row["email"],
            "create_date": iso(row["date"]),
            "update_date": iso(row["last_renew"]),
            "payment_status": self._status_out("status_payment", row["payment_code"]),
            "shipping_status": self._status_out("status_shipping", row["shipping_code"]),
            "customer_id": order_id + 1000,
            "shipping_method_name": row["shipping_method"],
            "notes": row["notes"] or "",
            "admin_notes": row["admin_notes"] or "",
            "items": [
                {
                    "id": item["item_id"],
                    "product_id": item["product_id"],
                    "sku": item["sku"],
                    "name": item["name"],
                    "price": num(item["price"]),
                    "item_net_price": num(item["price"]),
                    "discounted_subtotal": num(item["price"]) * item["amount"],
                    "amount": item["amount"],
                    "backordered_amount": 0,
                    "surcharges": [],
                }
                for item in self._items(order_id)
            ],
            "billing_address": {**address, "is_billing": True, "is_shipping": False, "type": "b"},
            "shipping_address": {**address, "is_billing": False, "is_shipping": True, "type": "s"},
            "surcharges": [{k: v for k, v in s.items() if k != "id"} for s in self._surcharges(row)],
            "tracking_numbers": [
                {"id": t["tracking_id"], "date": iso(t["creation_date"]), "value": t["value"]}
                for t in self._tracking_rows(order_id)
            ],
        }

    def _builtin_status(self, method: str, order_id: int, which: str, body: Any) -> SandboxResponse:
        table, column = (
            ("status_shipping", "shipping_status_id")
            if which == "shipping_status"
            else ("status_payment", "payment_status_id")
        )
        row = self._order_row(order_id)
        if method == "GET":
            if row is None:
                raise _NotFound
            code = row["shipping_code"] if which == "shipping_status" else row["payment_code"]
            return self._api_json(self._status_out(table, code))
        if method != "PUT":
            raise _NotFound
        if row is None:
            raise _Rejected(f"Order with ID {order_id} not found")
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        if self.db.execute(f"SELECT 1 FROM {table} WHERE code = ?", (code,)).fetchone() is None:
            raise _Rejected(f"Status code '{code}' is wrong")
        with self.transaction() as db:
            self._set_status(db, order_id, table, column, {"code": code})
        return self._api_json(self._status_out(table, code))

    def _builtin_products(
        self, method: str, parts: list[str], params: list[tuple[str, str]], body: Any
    ) -> SandboxResponse:
        def product_out(row: Any) -> dict[str, Any]:
            return {
                "id": row["product_id"],
                "sku": row["sku"],
                "name": row["name"],
                "price": num(row["price"]),
                "amount": row["amount"],
                "inventory_traceable": bool(row["inventory_enabled"]),
                "enabled": bool(row["enabled"]),
            }

        def variant_out(row: Any) -> dict[str, Any]:
            return {
                "id": row["id"],
                "sku": row["sku"],
                "price": num(row["price"]),
                "default_price": bool(row["default_price"]),
                "amount": row["amount"],
                "default_amount": bool(row["default_amount"]),
            }

        if len(parts) == 1 and method == "GET":
            values = dict(params)
            page = max(1, php_int(values.get("page", 1)))
            per_page = min(100, max(1, php_int(values.get("itemsPerPage", 30))))
            rows = self.db.execute(
                "SELECT * FROM products ORDER BY product_id LIMIT ? OFFSET ?",
                (per_page, (page - 1) * per_page),
            ).fetchall()
            return self._api_json([product_out(r) for r in rows])
        if len(parts) < 2 or not parts[1].isdigit():
            raise _NotFound
        product_id = int(parts[1])
        product = self.db.execute("SELECT * FROM products WHERE product_id = ?", (product_id,)).fetchone()
        if product is None:
            raise _NotFound
        if len(parts) == 2:
            if method == "PUT":
                model = _builtin_model(body, {"amount": "amount", "price": "price", "sku": "sku"})
                self._apply_product(product_id, model)
                product = self.db.execute(
                    "SELECT * FROM products WHERE product_id = ?", (product_id,)
                ).fetchone()
            elif method != "GET":
                raise _NotFound
            return self._api_json(product_out(product))
        if parts[2] != "variants":
            raise _NotFound
        if len(parts) == 3 and method == "GET":
            rows = self.db.execute(
                "SELECT * FROM variants WHERE product_id = ? ORDER BY id", (product_id,)
            ).fetchall()
            return self._api_json([variant_out(r) for r in rows])
        if len(parts) == 4 and parts[3].isdigit():
            variant = self.db.execute(
                "SELECT * FROM variants WHERE id = ? AND product_id = ?", (int(parts[3]), product_id)
            ).fetchone()
            if variant is None:
                raise _NotFound
            if method == "PUT":
                model = _builtin_model(
                    body,
                    {
                        "amount": "amount",
                        "price": "price",
                        "default_amount": "defaultAmount",
                        "default_price": "defaultPrice",
                        "sku": "sku",
                    },
                )
                with self.transaction() as db:
                    self._apply_variant(db, variant["id"], model)
                variant = self.db.execute("SELECT * FROM variants WHERE id = ?", (variant["id"],)).fetchone()
            elif method != "GET":
                raise _NotFound
            return self._api_json(variant_out(variant))
        raise _NotFound


class _Rejected(Exception):
    """A request X-Cart refuses with 400 (the add-on puts the message in ``X-REST-Error``)."""


class _NotFound(Exception):
    """A 5.5 route or item that does not exist (404)."""


def _limit_sql(cnd: dict[str, Any], args: list[Any]) -> str:
    limit = cnd.get("limit")
    if not isinstance(limit, dict):
        return ""  # no cap: every row, as the add-on does
    args.extend([max(0, php_int(limit.get("1", 0))) or -1, max(0, php_int(limit.get("0", 0)))])
    return " LIMIT ? OFFSET ?"


def _builtin_model(body: Any, names: dict[str, str]) -> dict[str, Any]:
    """5.5 validates types (API Platform denormalisation): a string for a number is a 400."""
    if not isinstance(body, dict):
        raise _Rejected("The input data is misformatted.")
    model: dict[str, Any] = {}
    for name, target in names.items():
        if name not in body:
            continue
        value = body[name]
        if name == "amount" and (isinstance(value, bool) or not isinstance(value, int)):
            raise _Rejected(f'The type of the "{name}" attribute must be "int".')
        if name == "price" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _Rejected(f'The type of the "{name}" attribute must be "float".')
        model[target] = value
    return model


def _php_datetime(value: str) -> int | None:
    """The few PHP DateTime forms a client sends: ``@<unix>`` or ISO 8601."""
    text = value.strip()
    if text.startswith("@") and text[1:].lstrip("-").isdigit():
        return int(text[1:])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


__all__ = ["XCartSandbox", "php_parse"]
