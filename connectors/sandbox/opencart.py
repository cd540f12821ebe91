"""The OpenCart sandbox store: OpenCart's own tables in SQLite, and the Storelink bridge emulated.

The tables are OpenCart's (same names with the configured prefix, same columns per schema family),
created from the very DDL files the MariaDB tests load (``connectors/opencart/bridge/schema``), so
the bridge emulation here and the real ``storelink-bridge.php`` read identical shapes. The emulation
answers exactly as the PHP file does — same JSON, same error codes, same HTTP statuses — and the
shared bridge contract suite runs one set of assertions against both.

``index.php`` (OpenCart's core API: login, order history) is answered by
``connectors.sandbox.opencart_core.handle_core(app, request)``, written separately; it is imported
inside the handler so this module works on its own.

The seed generator and the store-side inspection helpers (:class:`OpenCartStoreData`) work over any
DB-API-like ``query`` function, so the MariaDB-backed tests inspect a real store with the same code.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import random
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, unquote_plus
from zoneinfo import ZoneInfo

from connectors.sandbox.core import Faults, SandboxApp, SandboxRequest, SandboxResponse, seeded_sku

BRIDGE_NAME = "Storelink bridge"
BRIDGE_VERSION = "1.4.0"
#: what this bridge version can do beyond 1.0.0 (``info.features``)
BRIDGE_FEATURES = ("orders_match_ever", "status_sets", "uniform_auth", "database_zone", "orders_changed")
BRIDGE_FILE = "storelink-bridge.php"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "opencart" / "bridge" / "schema"

MAX_BODY_BYTES = 1048576
CLOCK_WINDOW_SECONDS = 300
NONCE_TTL_SECONDS = 900
MAX_BATCH_ITEMS = 100
MAX_ORDER_PAGE = 250
MAX_PRODUCT_PAGE = 500
MAX_COMMENT_CHARS = 20000
MAX_QUANTITY = 99999999
MAX_ID = 2147483647

#: sandbox family -> (schema family, the OpenCart version it stands for, has config_timezone)
FAMILIES: dict[str, tuple[str, str, bool]] = {
    "2.1": ("2.x", "2.1.0.2", False),
    "2.2": ("2.x", "2.2.0.0", False),
    "2.3": ("2.x", "2.3.0.2", False),
    "3.0.0": ("3.0", "3.0.2.0", False),
    "3.0.3": ("3.0", "3.0.3.8", True),
    "4.0": ("4.0", "4.0.2.3", True),
    "4.1": ("4.1", "4.1.0.4", True),
}
STORE_TIMEZONE = "Europe/Berlin"
#: stores without ``config_timezone`` write dates in PHP's default zone (the tests run PHP in UTC)
DEFAULT_PHP_TIMEZONE = "UTC"
API_USERNAME = "Storelink"
ALLOWED_IPS = ("127.0.0.1", "::1")
SEEDED_STATUSES = ("1", "2", "3", "5", "15")

ORDER_STATUSES = (
    (1, "Pending"),
    (2, "Processing"),
    (3, "Shipped"),
    (5, "Complete"),
    (7, "Canceled"),
    (8, "Denied"),
    (9, "Canceled Reversal"),
    (10, "Failed"),
    (11, "Refunded"),
    (12, "Reversed"),
    (13, "Chargeback"),
    (14, "Expired"),
    (15, "Processed"),
    (16, "Voided"),
)
COUNTRIES = (
    (81, "Germany", "DE", "DEU"),
    (222, "United Kingdom", "GB", "GBR"),
    (223, "United States", "US", "USA"),
)
SIZE_OPTION_ID = 11
#: The tax each tax class charges at checkout (percent): the demo's "Taxable Goods" carries 20 % VAT.
#: ``product.price`` is net in every version; the checkout adds this on top, and the storefront
#: shows it included only while ``config_tax`` ("Display Prices With Tax") is 1.
TAX_CLASS_RATES = {9: Decimal("20")}
SIZE_VALUES = ((46, "S", "+", "0.0000"), (47, "M", "+", "2.0000"), (48, "L", "-", "1.0000"))
VARIANT_COLOURS = ("RED", "BLUE")

Rows = dict[str, list[dict[str, Any]]]
QueryFn = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def schema_family_of(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown OpenCart family {family!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[family][0]


def schema_sql(schema_family: str, prefix: str) -> str:
    """The MySQL DDL of one schema family with ``prefix`` applied."""
    if not re.fullmatch(r"[A-Za-z0-9_]{0,32}", prefix):
        raise ValueError(f"bad table prefix {prefix!r}")
    text = (SCHEMA_DIR / f"opencart-{schema_family}.sql").read_text(encoding="utf-8")
    return text.replace("{{prefix}}", prefix)


def sqlite_statements(schema_family: str, prefix: str) -> list[str]:
    """The same DDL for SQLite: auto-increment keys become rowid keys, and NOT NULL columns get the
    implicit defaults MySQL's non-strict mode (the mode OpenCart runs in) gives omitted columns."""
    statements = []
    for block in schema_sql(schema_family, prefix).split(";"):
        lines = [line for line in block.strip().splitlines() if line.strip() and not line.startswith("--")]
        if not lines or not lines[0].startswith("CREATE TABLE"):
            continue
        primary = next((line for line in lines if line.strip().startswith("PRIMARY KEY")), "")
        single_key = primary.count("`") == 2
        out = []
        for line in lines:
            stripped = line.strip().rstrip(",")
            if stripped.startswith("CREATE TABLE"):
                out.append(stripped)
                continue
            if stripped.startswith(")"):
                out.append(")")
                continue
            if stripped.startswith("PRIMARY KEY"):
                if not single_key:
                    out.append("  " + stripped + ",")
                continue
            if "AUTO_INCREMENT" in stripped and single_key:
                name = stripped.split("`")[1]
                out.append(f"  `{name}` INTEGER PRIMARY KEY AUTOINCREMENT,")
                continue
            stripped = stripped.replace(" AUTO_INCREMENT", "")
            if "NOT NULL" in stripped and "DEFAULT" not in stripped:
                kind = stripped.split("`")[2].strip().lower()
                if kind.startswith(("int", "tinyint", "decimal", "float", "double")):
                    default = "0"
                elif kind.startswith("datetime"):
                    default = "'0000-00-00 00:00:00'"
                elif kind.startswith("date"):
                    default = "'0000-00-00'"
                else:
                    default = "''"
                stripped += f" DEFAULT {default}"
            out.append("  " + stripped + ",")
        # drop the comma before the closing parenthesis
        for index in range(len(out) - 1, 0, -1):
            if out[index] == ")":
                out[index - 1] = out[index - 1].rstrip(",")
                break
        statements.append("\n".join(out))
    return statements


# --------------------------------------------------------------------------------------------------
# Seed data: rows per table (without prefix), identical for the SQLite sandbox and MariaDB stores
# --------------------------------------------------------------------------------------------------


def money(value: Decimal | str | float | int) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def api_key_for(rng_seed: int) -> str:
    """A 64-character key like the ones OpenCart's "Generate" button makes."""
    return hashlib.sha256(f"storelink-sandbox-{rng_seed}".encode()).hexdigest()


def base_rows(family: str, *, api_key: str, store_url: str = "http://127.0.0.1/") -> Rows:
    """What an OpenCart install holds before any product or order: settings, API users, lookups."""
    schema = schema_family_of(family)
    has_timezone = FAMILIES[family][2]
    stamp = "2024-01-01 00:00:00"
    name_column = "name" if schema == "2.x" else "username"
    rows: Rows = {
        "api": [
            {"api_id": 1, name_column: "Default", "key": "x" * 64, "status": 1},
            {"api_id": 2, name_column: API_USERNAME, "key": api_key, "status": 1},
            {"api_id": 3, name_column: "Disabled", "key": api_key, "status": 0},
            {"api_id": 4, name_column: "Elsewhere", "key": api_key, "status": 1},
        ],
        "api_ip": [
            *({"api_id": 2, "ip": ip} for ip in ALLOWED_IPS),
            *({"api_id": 3, "ip": ip} for ip in ALLOWED_IPS),
            {"api_id": 4, "ip": "203.0.113.9"},
        ],
        "setting": [],
        "currency": [
            {
                "currency_id": 1,
                "title": "Pound Sterling",
                "code": "GBP",
                "symbol_left": "£",
                "value": 0.61250001,
                "decimal_place": "2",
                "status": 1,
            },
            {
                "currency_id": 2,
                "title": "US Dollar",
                "code": "USD",
                "symbol_left": "$",
                "value": 1.0,
                "decimal_place": "2",
                "status": 1,
            },
            {
                "currency_id": 3,
                "title": "Euro",
                "code": "EUR",
                "symbol_right": "€",
                "value": 0.78460002,
                "decimal_place": "2",
                "status": 1,
            },
        ],
        "store": [{"store_id": 1, "name": "Outlet", "url": "http://outlet.example.com/"}],
        "language": [
            {"language_id": 1, "name": "English", "code": "en-gb", "locale": "en-gb,en", "status": 1}
        ],
        "order_status": [{"order_status_id": i, "language_id": 1, "name": n} for i, n in ORDER_STATUSES],
        "country": [
            {"country_id": c, "name": n, "iso_code_2": i2, "iso_code_3": i3} for c, n, i2, i3 in COUNTRIES
        ],
        "tax_class": [{"tax_class_id": 9, "title": "Taxable Goods", "description": "Taxed goods"}],
        "option_description": [{"option_id": SIZE_OPTION_ID, "language_id": 1, "name": "Size"}],
        "option_value_description": [
            {"option_value_id": v, "language_id": 1, "option_id": SIZE_OPTION_ID, "name": n}
            for v, n, _, _ in SIZE_VALUES
        ],
    }
    for row in rows["api"]:
        row["date_added"] = row["date_modified"] = stamp
    settings = {
        "config_name": "Storelink Demo &amp; Co",
        "config_currency": "USD",
        "config_tax": "1",
        "config_order_status_id": "1",
        "config_processing_status": '["5","1","2","12","3"]',
        "config_complete_status": '["5","3"]',
        "config_api_id": "1",
        "config_maintenance": "0",
    }
    settings["config_language_catalog" if schema == "4.1" else "config_language"] = "en-gb"
    if has_timezone:
        settings["config_timezone"] = STORE_TIMEZONE
    rows["setting"] = [
        {"store_id": 0, "code": "config", "key": key, "value": value, "serialized": 0}
        for key, value in settings.items()
    ]
    if schema == "4.1":
        rows["identifier"] = [
            {"identifier_id": i + 1, "name": code, "code": code, "status": 1}
            for i, code in enumerate(("SKU", "UPC", "EAN", "JAN", "ISBN", "MPN"))
        ]
    return rows


def store_timezone(family: str) -> str:
    return STORE_TIMEZONE if FAMILIES[family][2] else DEFAULT_PHP_TIMEZONE


def catalog_rows(family: str, products: int, rng: random.Random, shared_skus: int = 0) -> Rows:
    """``products`` products; every third has a Size option, on 4.x every fifth has two variants."""
    schema = schema_family_of(family)
    rows: Rows = {
        key: []
        for key in (
            "product",
            "product_description",
            "product_to_store",
            "product_option",
            "product_option_value",
            "product_code",
        )
    }
    next_id = 1
    option_id = 1
    value_id = 1

    def add_product(sku: str, name: str, price: str, quantity: int, master_id: int = 0) -> int:
        nonlocal next_id
        product_id = next_id
        next_id += 1
        row: dict[str, Any] = {
            "product_id": product_id,
            "model": f"Model {product_id}",
            "quantity": quantity,
            "stock_status_id": 7,
            "price": price,
            "tax_class_id": 9,
            "status": 1,
            "date_available": "2024-01-01",
            "date_added": "2024-01-01 00:00:00",
            "date_modified": "2024-01-01 00:00:00",
        }
        if schema in ("4.0", "4.1"):
            row["master_id"] = master_id
            row["variant"] = "{}"
            row["override"] = "{}"
        if schema == "4.1":
            rows["product_code"].append({"product_id": product_id, "code": "SKU", "value": sku})
        else:
            row["sku"] = sku
        rows["product"].append(row)
        rows["product_description"].append({"product_id": product_id, "language_id": 1, "name": name})
        rows["product_to_store"].append({"product_id": product_id, "store_id": 0})
        return product_id

    for number in range(1, products + 1):
        sku = seeded_sku(number, f"SL-{number:04d}", shared_skus)
        name = f"Cinema {number}0&quot; Display" if number % 4 == 0 else f"Product {number} &amp; Co"
        price = money(Decimal(rng.randint(500, 20000)) / 100)
        product_id = add_product(sku, name, price, rng.randint(0, 80))
        if number % 3 == 0:
            rows["product_option"].append(
                {
                    "product_option_id": option_id,
                    "product_id": product_id,
                    "option_id": SIZE_OPTION_ID,
                    "required": 1,
                }
            )
            for option_value_id, _, prefix, delta in SIZE_VALUES:
                rows["product_option_value"].append(
                    {
                        "product_option_value_id": value_id,
                        "product_option_id": option_id,
                        "product_id": product_id,
                        "option_id": SIZE_OPTION_ID,
                        "option_value_id": option_value_id,
                        "quantity": rng.randint(0, 30),
                        "subtract": 1,
                        "price": delta,
                        "price_prefix": prefix,
                        "points": 0,
                        "points_prefix": "+",
                        "weight": "0.00000000",
                        "weight_prefix": "+",
                    }
                )
                value_id += 1
            option_id += 1
        if schema in ("4.0", "4.1") and number % 5 == 0:
            for colour in VARIANT_COLOURS:
                add_product(
                    f"{sku}-{colour}", f"{name} ({colour.title()})", price, rng.randint(0, 20), product_id
                )
    if schema != "4.1":
        del rows["product_code"]
    return rows


def order_rows(
    family: str,
    order_id: int,
    placed: datetime,
    catalog: Rows,
    rng: random.Random,
    *,
    status_id: int,
    next_ids: dict[str, int],
    changed: datetime | None = None,
) -> Rows:
    """One order with lines, options, totals and history, as OpenCart's checkout writes them."""
    schema = schema_family_of(family)
    products = [p for p in catalog["product"] if not (schema in ("4.0", "4.1") and _is_master(p, catalog))]
    names = {row["product_id"]: row["name"] for row in catalog["product_description"]}
    values_by_product: dict[int, list[dict[str, Any]]] = {}
    for value in catalog["product_option_value"]:
        values_by_product.setdefault(value["product_id"], []).append(value)
    size_names = {v: n for v, n, _, _ in SIZE_VALUES}
    euro = order_id % 4 == 0
    country = COUNTRIES[order_id % len(COUNTRIES)]
    stamp = placed.strftime("%Y-%m-%d %H:%M:%S")
    rows: Rows = {
        "order": [],
        "order_product": [],
        "order_option": [],
        "order_total": [],
        "order_history": [],
    }
    subtotal = Decimal(0)
    tax_total = Decimal(0)
    for product in rng.sample(products, k=min(len(products), rng.randint(1, 3))):
        line_id = next_ids["order_product"]
        next_ids["order_product"] += 1
        quantity = rng.randint(1, 3)
        price = Decimal(product["price"])
        options = values_by_product.get(product["product_id"], [])
        chosen = rng.choice(options) if options else None
        if chosen is not None:
            delta = Decimal(chosen["price"])
            price = price + delta if chosen["price_prefix"] == "+" else price - delta
        tax = (price * TAX_CLASS_RATES[9] / 100).quantize(Decimal("0.0001"))
        line: dict[str, Any] = {
            "order_product_id": line_id,
            "order_id": order_id,
            "product_id": product["product_id"],
            "name": names[product["product_id"]],
            "model": product["model"],
            "quantity": quantity,
            "price": money(price),
            "total": money(price * quantity),
            "tax": money(tax),
            "reward": 0,
        }
        if schema in ("4.0", "4.1"):
            line["master_id"] = product.get("master_id", 0)
        rows["order_product"].append(line)
        if chosen is not None:
            rows["order_option"].append(
                {
                    "order_option_id": next_ids["order_option"],
                    "order_id": order_id,
                    "order_product_id": line_id,
                    "product_option_id": chosen["product_option_id"],
                    "product_option_value_id": chosen["product_option_value_id"],
                    "name": "Size",
                    "value": size_names[chosen["option_value_id"]],
                    "type": "select",
                }
            )
            next_ids["order_option"] += 1
        subtotal += price * quantity
        tax_total += tax * quantity
    shipping = Decimal("5.0000")
    total = subtotal + tax_total + shipping
    for sort_order, (code, title, amount) in enumerate(
        (
            ("sub_total", "Sub-Total", subtotal),
            ("shipping", "Flat Shipping Rate", shipping),
            ("tax", "VAT (20%)", tax_total),
            ("total", "Total", total),
        ),
        start=1,
    ):
        total_row: dict[str, Any] = {
            "order_total_id": next_ids["order_total"],
            "order_id": order_id,
            "code": code,
            "title": title,
            "value": money(amount),
            "sort_order": sort_order,
        }
        if schema in ("4.0", "4.1"):
            total_row["extension"] = "opencart"
        rows["order_total"].append(total_row)
        next_ids["order_total"] += 1
    if schema in ("4.0", "4.1"):
        shipping_method = json.dumps({"name": "Flat Shipping Rate", "code": "flat.flat"})
        payment_method = json.dumps({"name": "Cash On Delivery", "code": "cod"})
    else:
        shipping_method, payment_method = "Flat Shipping Rate", "Cash On Delivery"
    order: dict[str, Any] = {
        "order_id": order_id,
        "invoice_prefix": "INV-2024-00",
        "store_id": 0,
        "store_name": "Storelink Demo",
        "store_url": "http://127.0.0.1/",
        "customer_id": order_id % 7,
        "customer_group_id": 1,
        "firstname": "Zoë",
        "lastname": f"O'Brien {order_id}",
        "email": f"customer{order_id}@example.com",
        "telephone": "+44 20 7946 0000",
        "custom_field": "[]",
        "comment": "Please ring &amp; wait" if order_id % 5 == 0 else "",
        "total": money(total),
        "order_status_id": status_id,
        "affiliate_id": 0,
        "commission": "0.0000",
        "marketing_id": 0,
        "tracking": "",
        "language_id": 1,
        "currency_id": 3 if euro else 2,
        "currency_code": "EUR" if euro else "USD",
        "currency_value": "0.78460002" if euro else "1.00000000",
        "ip": "198.51.100.7",
        "forwarded_ip": "",
        "user_agent": "Mozilla/5.0",
        "accept_language": "en-GB",
        "date_added": stamp,
        "date_modified": stamp,
        "shipping_method": shipping_method,
        "payment_method": payment_method,
    }
    for kind in ("payment", "shipping"):
        order.update(
            {
                f"{kind}_firstname": "Zoë",
                f"{kind}_lastname": f"O'Brien {order_id}",
                f"{kind}_company": "",
                f"{kind}_address_1": f"{order_id} High Street",
                f"{kind}_address_2": "",
                f"{kind}_city": "London",
                f"{kind}_postcode": "SW1A 1AA",
                f"{kind}_country": country[1],
                f"{kind}_country_id": country[0],
                f"{kind}_zone": "Greater London",
                f"{kind}_zone_id": 3563,
                f"{kind}_address_format": "",
                f"{kind}_custom_field": "[]",
            }
        )
    if schema in ("2.x", "3.0"):
        order.update({"shipping_code": "flat.flat", "payment_code": "cod", "fax": ""})
    rows["order"].append(order)
    if status_id > 0:
        history = [(status_id if changed is None else 1, placed, "")]
        if changed is not None:
            history.append((status_id, changed, "Status changed by the shop"))
        for history_status, when, comment in history:
            rows["order_history"].append(
                {
                    "order_history_id": next_ids["order_history"],
                    "order_id": order_id,
                    "order_status_id": history_status,
                    "notify": 0,
                    "comment": comment,
                    "date_added": when.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            next_ids["order_history"] += 1
        # 4.1's history does not touch date_modified (seen on a real 4.1.0.4 store); the other families' does.
        if changed is not None and schema != "4.1":
            order["date_modified"] = changed.strftime("%Y-%m-%d %H:%M:%S")
    return rows


def _is_master(product: Mapping[str, Any], catalog: Rows) -> bool:
    return any(row.get("master_id") == product["product_id"] for row in catalog["product"])


def seed_rows(
    family: str,
    products: int,
    orders: int,
    days: int,
    rng_seed: int,
    now_local: datetime,
    shared_skus: int = 0,
) -> Rows:
    """Catalogue and orders for one store, deterministic for (arguments, ``now_local``).

    Orders are spread over ``days`` up to two minutes ago; every tenth is an unconfirmed checkout
    (status 0, not an order), every third changed status later (a second history row).
    """
    rng = random.Random(rng_seed)
    rows = catalog_rows(family, products, rng, shared_skus)
    next_ids = {"order_product": 1, "order_option": 1, "order_total": 1, "order_history": 1}
    start = now_local - timedelta(days=days)
    span = (timedelta(days=days) - timedelta(minutes=2)).total_seconds()
    for key in ("order", "order_product", "order_option", "order_total", "order_history"):
        rows[key] = []
    for number in range(1, orders + 1):
        placed = start + timedelta(seconds=int(span * (number - 1) / max(1, orders)))
        status = 0 if number % 10 == 0 else int(rng.choice(SEEDED_STATUSES))
        changed = None
        if status and number % 3 == 0:
            changed = min(placed + timedelta(hours=rng.randint(1, 30)), now_local - timedelta(minutes=1))
        for table, table_rows in order_rows(
            family, number, placed, rows, rng, status_id=status, next_ids=next_ids, changed=changed
        ).items():
            rows[table].extend(table_rows)
    return rows


# --------------------------------------------------------------------------------------------------
# Store-side inspection, over any query function (SQLite here, MariaDB in the tests)
# --------------------------------------------------------------------------------------------------

TRACKING_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{5,}")


class OpenCartStoreData:
    """Reads and small writes on an OpenCart database, the way the shop owner would see them.

    Subclasses provide ``query(sql, params)`` (``?`` placeholders, list of dict rows), ``family``
    and ``prefix``. SQL here is the common subset of SQLite and MariaDB.
    """

    family: str
    prefix: str

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def t(self, name: str) -> str:
        return f"`{self.prefix}{name}`"

    @property
    def schema(self) -> str:
        return schema_family_of(self.family)

    def store_now(self) -> datetime:
        """The store's wall clock (naive, store timezone), the way OpenCart writes dates."""
        return datetime.now(ZoneInfo(store_timezone(self.family))).replace(tzinfo=None, microsecond=0)

    def _product_by_sku(self, sku: str) -> tuple[int, int | None]:
        """(product_id, product_option_value_id or None) for a SKU as the bridge client forms them."""
        if self.schema == "4.1":
            rows = self.query(
                f"SELECT product_id FROM {self.t('product_code')} WHERE code = 'SKU' AND value = ?", [sku]
            )
        else:
            rows = self.query(f"SELECT product_id FROM {self.t('product')} WHERE sku = ?", [sku])
        if rows:
            return int(rows[0]["product_id"]), None
        base, _, value_name = sku.rpartition("-")
        if base:
            product_id, _ = self._product_by_sku(base)
            values = self.query(
                f"SELECT pov.product_option_value_id FROM {self.t('product_option_value')} pov"
                f" JOIN {self.t('option_value_description')} ovd ON ovd.option_value_id = pov.option_value_id"
                " WHERE pov.product_id = ? AND ovd.name = ?",
                [product_id, html.escape(value_name, quote=False)],
            )
            if values:
                return product_id, int(values[0]["product_option_value_id"])
        raise KeyError(f"no product with SKU {sku!r}")

    def stock_of(self, sku: str) -> int:
        product_id, value_id = self._product_by_sku(sku)
        if value_id is None:
            rows = self.query(f"SELECT quantity FROM {self.t('product')} WHERE product_id = ?", [product_id])
        else:
            rows = self.query(
                f"SELECT quantity FROM {self.t('product_option_value')} WHERE product_option_value_id = ?",
                [value_id],
            )
        return int(rows[0]["quantity"])

    def tax_rate_of(self, sku: str) -> Decimal:
        """The rate of the product's tax class (a variant is taxed like its product)."""
        product_id, _ = self._product_by_sku(sku)
        rows = self.query(f"SELECT tax_class_id FROM {self.t('product')} WHERE product_id = ?", [product_id])
        return TAX_CLASS_RATES.get(int(rows[0]["tax_class_id"]), Decimal(0))

    def checkout_price_of(self, sku: str) -> Decimal:
        """The net ``product.price`` plus its tax class's rate, what the order line then records as
        ``price`` + ``tax``, whatever ``config_tax`` says."""
        return SandboxApp.with_tax(self.price_of(sku), self.tax_rate_of(sku))

    def storefront_price_of(self, sku: str) -> Decimal:
        """What the product page shows: tax included while ``config_tax`` is 1 (the default), the net
        field when 0. A display switch only: it never changes what ``product.price`` holds."""
        rows = self.query(f"SELECT value FROM {self.t('setting')} WHERE `key` = 'config_tax'")
        shows_tax = bool(rows) and str(rows[0]["value"]) == "1"
        return self.checkout_price_of(sku) if shows_tax else self.price_of(sku)

    def price_of(self, sku: str) -> Decimal:
        product_id, value_id = self._product_by_sku(sku)
        base = Decimal(
            str(
                self.query(f"SELECT price FROM {self.t('product')} WHERE product_id = ?", [product_id])[0][
                    "price"
                ]
            )
        )
        if value_id is not None:
            row = self.query(
                f"SELECT price, price_prefix FROM {self.t('product_option_value')} WHERE "
                "product_option_value_id = ?",
                [value_id],
            )[0]
            delta = Decimal(str(row["price"]))
            base = base + delta if row["price_prefix"] != "-" else base - delta
        return base.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def history_comments(self, order_external_id: str) -> list[str]:
        rows = self.query(
            f"SELECT comment FROM {self.t('order_history')} WHERE order_id = ? ORDER BY order_history_id",
            [int(order_external_id)],
        )
        return [html.unescape(str(row["comment"] or "")) for row in rows]

    def tracking_numbers(self, order_external_id: str) -> list[str]:
        """Tokens that look like tracking numbers (letters/digits, at least one digit) in comments."""
        found: list[str] = []
        for comment in self.history_comments(order_external_id):
            found.extend(
                token for token in TRACKING_TOKEN.findall(comment) if any(c.isdigit() for c in token)
            )
        return found

    def order_status(self, order_external_id: str) -> str:
        rows = self.query(
            f"SELECT order_status_id FROM {self.t('order')} WHERE order_id = ?", [int(order_external_id)]
        )
        return str(rows[0]["order_status_id"]) if rows else ""

    def change_status(self, order_external_id: str, status_id: int, comment: str = "") -> None:
        """What the admin's order page does on a status change (cancel, ship, complete): a history
        row, and the order's status. 4.1 changes status through its API, whose history does not
        touch ``date_modified``; the other families set it too."""
        stamp = self.store_now().strftime("%Y-%m-%d %H:%M:%S")
        order_id = int(order_external_id)
        self.query(
            f"INSERT INTO {self.t('order_history')} (order_id, order_status_id, notify, comment, date_added)"
            " VALUES (?, ?, 0, ?, ?)",
            [order_id, status_id, comment, stamp],
        )
        if self.schema == "4.1":
            self.query(
                f"UPDATE {self.t('order')} SET order_status_id = ? WHERE order_id = ?", [status_id, order_id]
            )
        else:
            self.query(
                f"UPDATE {self.t('order')} SET order_status_id = ?, date_modified = ? WHERE order_id = ?",
                [status_id, stamp, order_id],
            )

    def orders_in_status(self, status_id: int) -> list[str]:
        """Ids of orders whose whole history is this one status (never in another)."""
        rows = self.query(
            f"SELECT o.order_id FROM {self.t('order')} o WHERE o.order_status_id = ? AND NOT EXISTS"
            f" (SELECT 1 FROM {self.t('order_history')} h WHERE h.order_id = o.order_id"
            " AND h.order_status_id <> o.order_status_id) ORDER BY o.order_id",
            [status_id],
        )
        return [str(row["order_id"]) for row in rows]

    def order_count(self) -> int:
        rows = self.query(f"SELECT COUNT(*) AS n FROM {self.t('order')} WHERE order_status_id > 0")
        return int(rows[0]["n"])

    def catalog(self) -> Rows:
        """Products and option values, enough for :func:`order_rows` to build new orders."""

        def typed(row: dict[str, Any]) -> dict[str, Any]:
            for key in (
                "product_id",
                "master_id",
                "product_option_id",
                "product_option_value_id",
                "option_value_id",
                "quantity",
            ):
                if row.get(key) is not None:
                    row[key] = int(row[key])
            row["price"] = money(row["price"])
            return row

        products = self.query(f"SELECT * FROM {self.t('product')} ORDER BY product_id")
        return {
            "product": [typed(row) for row in products],
            "product_description": [
                {"product_id": int(row["product_id"]), "name": row["name"]}
                for row in self.query(
                    f"SELECT product_id, name FROM {self.t('product_description')} WHERE language_id = 1"
                )
            ],
            "product_option_value": [
                typed(row)
                for row in self.query(
                    f"SELECT * FROM {self.t('product_option_value')} ORDER BY product_option_value_id"
                )
            ],
        }

    def new_order_rows(self, *, status_id: int = 1, seconds_ago: int = 1, rng_seed: int = 0) -> Rows:
        """Rows of one order placed ``seconds_ago`` (default: a second ago, see :meth:`add_order`)."""
        next_ids = {}
        for table, column in (
            ("order_product", "order_product_id"),
            ("order_option", "order_option_id"),
            ("order_total", "order_total_id"),
            ("order_history", "order_history_id"),
        ):
            next_ids[table] = int(
                self.query(f"SELECT COALESCE(MAX({column}), 0) + 1 AS n FROM {self.t(table)}")[0]["n"]
            )
        order_id = int(
            self.query(f"SELECT COALESCE(MAX(order_id), 0) + 1 AS n FROM {self.t('order')}")[0]["n"]
        )
        placed = self.store_now() - timedelta(seconds=seconds_ago)
        return order_rows(
            self.family,
            order_id,
            placed,
            self.catalog(),
            random.Random(rng_seed + order_id),
            status_id=status_id,
            next_ids=next_ids,
        )


def insert_statements(rows: Rows, prefix: str) -> list[tuple[str, list[Any]]]:
    """``INSERT`` statements (``?`` placeholders) for seed rows."""
    statements = []
    for table, table_rows in rows.items():
        for row in table_rows:
            columns = ", ".join(f"`{name}`" for name in row)
            marks = ", ".join("?" for _ in row)
            statements.append(
                (f"INSERT INTO `{prefix}{table}` ({columns}) VALUES ({marks})", list(row.values()))
            )
    return statements


# --------------------------------------------------------------------------------------------------
# The bridge emulation (mirrors storelink-bridge.php function by function)
# --------------------------------------------------------------------------------------------------


class BridgeError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _bad_input(message: str, **extra: Any) -> BridgeError:
    return BridgeError(400, "invalid_input", message, **extra)


def php_decimal(value: Any, places: int) -> str:
    """PHP ``number_format((float) $value, places, '.', '')`` with -0 shown as 0 (storelink_decimal)."""
    if value is None or value == "":
        value = 0
    text = f"{float(value):.{places}f}"
    if float(text) == 0.0:
        text = f"{0:.{places}f}"
    return text


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _php_urlencode_raw(text: str) -> str:
    return quote(text, safe="")


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    ordered = sorted(pairs, key=lambda pair: (pair[0].encode(), pair[1].encode()))
    return "&".join(f"{_php_urlencode_raw(k)}={_php_urlencode_raw(v)}" for k, v in ordered)


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def string_to_sign(
    method: str, path: str, query: str, user: str, timestamp: str, nonce: str, body: bytes
) -> str:
    return "\n".join(
        ("STORELINK1", method, path, query, user, timestamp, nonce, hashlib.sha256(body).hexdigest())
    )


def _json_int(
    item: Mapping[str, Any], field: str, index: int | None, low: int, high: int, required: bool
) -> int | None:
    where = "" if index is None else f"Item {index}: "
    extra: dict[str, Any] = {"field": field} if index is None else {"index": index, "field": field}
    if field not in item or item[field] is None:
        if required:
            raise _bad_input(f"{where}'{field}' is required.", **extra)
        return None
    value = item[field]
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > high:
        raise _bad_input(f"{where}'{field}' must be a whole number from {low} to {high}.", **extra)
    return value


def _query_int(query: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    if name not in query:
        return default
    value = query[name]
    if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
        raise _bad_input(f"'{name}' must be a whole number from {low} to {high}.", field=name)
    return int(value)


def _money_units(value: Any, index: int) -> int:
    text: str | None = None
    if isinstance(value, bool):
        text = None
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        text = f"{value:.4f}"
    elif isinstance(value, str):
        text = value
    match = re.fullmatch(r"([0-9]{1,11})(?:\.([0-9]{1,4}))?", text) if text is not None else None
    if match is None:
        raise _bad_input(
            f"Item {index}: 'price' must be a number from 0 to 99999999999.9999.", index=index, field="price"
        )
    return int(match.group(1)) * 10000 + int((match.group(2) or "").ljust(4, "0"))


def _units_to_decimal(units: int) -> str:
    sign = "-" if units < 0 else ""
    units = abs(units)
    return f"{sign}{units // 10000}.{units % 10000:04d}"


def _decimal_to_units(value: Any) -> int:
    return _money_units(php_decimal(value, 4), 0)


def _php_escape(text: str) -> str:
    """``trim(htmlspecialchars($s, ENT_COMPAT, 'UTF-8'))``: & < > " escaped, ' left alone."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return escaped.strip(" \t\n\r\0\x0b")


class OpenCartSandbox(OpenCartStoreData, SandboxApp):
    """An OpenCart store of one family, with the Storelink bridge uploaded (unless told otherwise)."""

    platform = "opencart"

    def __init__(
        self,
        db_path: str = ":memory:",
        faults: Faults | None = None,
        *,
        family: str = "3.0.3",
        prefix: str = "oc_",
        bridge_installed: bool | str = True,
        rng_seed: int = 0,
        php_timezone: str = DEFAULT_PHP_TIMEZONE,
        database_zone: str = "UTC",
        display_errors: bool = True,
        core_session_refused: bool = False,
        bridge_version: str = BRIDGE_VERSION,
    ) -> None:
        schema_family_of(family)
        #: the bridge file's version: an older one lacks the actions added since (``orders_changed``
        #: came with 1.4.0), as a store that never replaced its file does
        self.bridge_version = bridge_version
        self.family = family
        #: PHP's display_errors: off, 3.0.0-3.0.2's broken API login answers an empty 500 page with
        #: no "Fatal error" text to recognise it by
        self.display_errors = display_errors not in (False, "0", "false", "no")
        #: the 2.3 store that answered its own history call "no permission" right after a successful
        #: login although the IP was listed and the user enabled (cause not established)
        self.core_session_refused = core_session_refused not in (False, "0", "false", "no")
        #: PHP's date.timezone (the store's zone where it has no config_timezone) and MySQL's own zone;
        #: 2.x stores write their dates in MySQL's zone, 3.0+ in the store's (they align MySQL with PHP)
        self.php_timezone = php_timezone
        self.database_zone = database_zone
        self.prefix = prefix
        self.bridge_installed = bridge_installed not in (False, "0", "false", "no")
        self.opencart_version = FAMILIES[family][1]
        self.api_key = api_key_for(rng_seed)
        super().__init__(db_path, faults)

    # -- SandboxApp hooks ---------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(row) for row in self.db.execute(sql, list(params))]

    def create_schema(self) -> None:
        with self.lock:
            exists = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"{self.prefix}api",)
            ).fetchone()
            if exists:
                return
            for statement in sqlite_statements(self.schema, self.prefix):
                self.db.execute(statement)
            # speed only (the bridge's change-time subquery); results are the same without it
            self.db.execute(
                f"CREATE INDEX `{self.prefix}storelink_history_order` ON {self.t('order_history')} (order_id)"
            )
            self._insert(base_rows(self.family, api_key=self.api_key))

    def _insert(self, rows: Rows) -> None:
        with self.transaction() as db:
            for sql, params in insert_statements(rows, self.prefix):
                db.execute(sql, params)

    def seed(
        self, products: int, orders: int, days: int, rng_seed: int = 0, *, now_local: datetime | None = None
    ) -> None:
        """Replace catalogue and orders; ``now_local`` (store time) pins the dates for comparisons."""
        with self.lock:
            for table in (
                "product",
                "product_description",
                "product_to_store",
                "product_option",
                "product_option_value",
                "order",
                "order_product",
                "order_option",
                "order_total",
                "order_history",
            ) + (("product_code",) if self.schema == "4.1" else ()):
                self.db.execute(f"DELETE FROM {self.t(table)}")
            self._insert(
                seed_rows(
                    self.family,
                    products,
                    orders,
                    days,
                    rng_seed,
                    now_local or self.store_now(),
                    self.shared_skus,
                )
            )

    def store_zone(self) -> str:
        """The zone every date in a bridge reply is in: config_timezone, else PHP's."""
        return STORE_TIMEZONE if FAMILIES[self.family][2] else self.php_timezone

    def data_zone(self) -> str:
        """The zone the tables' dates are written in (2.x: MySQL's ``NOW()``)."""
        return self.database_zone if self.schema == "2.x" else self.store_zone()

    def store_now(self) -> datetime:
        """The clock the store writes its tables with (seeds and new orders use it too)."""
        return datetime.fromtimestamp(int(self.now()), ZoneInfo(self.data_zone())).replace(tzinfo=None)

    def _convert(self, text: str, source: str, target: str) -> str:
        if (
            source == target
            or not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text)
            or text[:4] == "0000"
        ):
            return text
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(source))
        return moment.astimezone(ZoneInfo(target)).strftime("%Y-%m-%d %H:%M:%S")

    def _to_store(self, value: Any) -> str:
        return self._convert(_text(value), self.data_zone(), self.store_zone())

    def _to_data(self, text: str) -> str:
        return self._convert(text, self.store_zone(), self.data_zone())

    def connector_credentials(self) -> dict[str, Any]:
        return {"api_username": API_USERNAME, "api_key": self.api_key}

    def connector_settings(self) -> dict[str, Any]:
        return {
            "version_family": {"2.3": "2.2"}.get(self.family, self.family),
            "currency": "USD",
            "processed_status": "3",
            "import_statuses": list(SEEDED_STATUSES),
            "order_lookback_days": 90,
            "use_options": True,
            "stock_sync": True,
            "price_sync": True,
        }

    def add_order(self, **kwargs: Any) -> str:
        """Place an order. It is dated one second ago: the bridge leaves the current second for the
        next poll (see PROTOCOL.md), and no real poll runs in the same second as the checkout."""
        rows = self.new_order_rows(**kwargs)
        self._insert(rows)
        return str(rows["order"][0]["order_id"])

    # -- HTTP ----------------------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        name = request.path.rstrip("/").rsplit("/", 1)[-1]
        if name == BRIDGE_FILE and self.bridge_installed:
            return self.handle_bridge(request)
        if name in ("index.php", "") or request.path.endswith("/"):
            from connectors.sandbox.opencart_core import handle_core

            return handle_core(self, request)
        return SandboxResponse.text(
            "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
            "<p>The requested URL was not found on this server.</p></body></html>",
            404,
        )

    def handle_bridge(self, request: SandboxRequest) -> SandboxResponse:
        try:
            return self._reply(200, {"ok": True, **self._bridge(request)})
        except _Hello:
            return self._reply(200, {"name": BRIDGE_NAME, "bridge_version": self.bridge_version})
        except BridgeError as error:
            return self._reply(
                error.status,
                {"ok": False, "error": {"code": error.code, "message": error.message, **error.extra}},
            )

    def _reply(self, status: int, payload: Mapping[str, Any]) -> SandboxResponse:
        return SandboxResponse.json(
            payload,
            status,
            {
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "X-Storelink-Bridge": self.bridge_version,
            },
            content_type="application/json; charset=utf-8",
        )

    def _bridge(self, request: SandboxRequest) -> dict[str, Any]:
        method = request.method.upper()
        auth = {
            key: _header(request, f"X-Storelink-{key.title()}")
            for key in ("user", "timestamp", "nonce", "signature")
        }
        present = sum(1 for value in auth.values() if value is not None)
        if present == 0 and method in ("GET", "HEAD"):
            raise _Hello
        if present < 4:
            raise _unauthorized()
        declared = request.header("Content-Length")
        if (declared.isdigit() and int(declared) > MAX_BODY_BYTES) or len(request.body) > MAX_BODY_BYTES:
            raise BridgeError(
                413, "body_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes."
            )
        user = unquote(str(auth["user"]))
        pairs = query_pairs(request.query_string)
        with self.lock:
            self._authenticate(request, method, unquote(request.path), canonical_query(pairs), user, auth)
            if method not in ("GET", "POST"):
                raise BridgeError(405, "method_not_allowed", "Only GET and POST are accepted.")
            query: dict[str, str] = {}
            for name, value in pairs:
                if not re.fullmatch(r"[a-z_]{1,32}", name) or name in query:
                    raise BridgeError(
                        400, "bad_request", "The query string has an unknown or repeated parameter name."
                    )
                query[name] = value
            return self._dispatch(method, query, request.body)

    def _authenticate(
        self,
        request: SandboxRequest,
        method: str,
        path: str,
        query: str,
        user: str,
        auth: Mapping[str, str | None],
    ) -> None:
        timestamp, nonce = str(auth["timestamp"]), str(auth["nonce"])
        signature = str(auth["signature"]).lower()
        if (
            user == ""
            or len(user.encode()) > 64
            or not re.fullmatch(r"[0-9]{1,12}", timestamp)
            or not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", nonce)
            or not re.fullmatch(r"[0-9a-f]{64}", signature)
        ):
            raise _unauthorized()
        # the PHP file reads every API user with one query and compares names itself
        users = [
            row
            for row in self.query(f"SELECT * FROM {self.t('api')} ORDER BY api_id")
            if str(row.get("username", row.get("name")) or "").lower() == user.lower()
        ]
        message = string_to_sign(method, path, query, user, timestamp, nonce, request.body).encode()
        account = None
        for row in users:
            expected = hmac.new(str(row["key"]).encode(), message, hashlib.sha256).hexdigest()
            if not self.faults.expired_token and hmac.compare_digest(expected, signature):
                account = row
                break
        if account is None:
            raise _unauthorized()
        server_time = int(self.now())
        skew = int(timestamp) - server_time
        if abs(skew) > CLOCK_WINDOW_SECONDS:
            raise BridgeError(
                401,
                "clock_skew",
                f"The request time differs from the store server clock by {skew} seconds (at most "
                f"{CLOCK_WINDOW_SECONDS} allowed); check the clock of the store server.",
                skew_seconds=skew,
                server_time=server_time,
            )
        if int(account["status"]) != 1:
            raise BridgeError(
                403, "user_disabled", "This API user is disabled; enable it under System > Users > API."
            )
        ip = request.client_ip
        allowed = self.query(
            f"SELECT COUNT(*) AS n FROM {self.t('api_ip')} WHERE api_id = ? AND ip = ?",
            [account["api_id"], ip],
        )
        if int(allowed[0]["n"]) == 0:
            raise BridgeError(
                403,
                "ip_not_allowed",
                f"The store does not accept requests from {ip} for this API user; add that address on the "
                "user's IP addresses tab (System > Users > API).",
                ip=ip,
            )
        table = self.t("storelink_nonce")
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (nonce varchar(64) NOT NULL PRIMARY KEY, api_id int NOT "
            "NULL,"
            " created int NOT NULL)"
        )
        self.db.execute(f"DELETE FROM {table} WHERE created < ?", [server_time - NONCE_TTL_SECONDS])
        try:
            self.db.execute(
                f"INSERT INTO {table} (nonce, api_id, created) VALUES (?, ?, ?)",
                [nonce, account["api_id"], server_time],
            )
        except sqlite3.IntegrityError:
            raise BridgeError(
                401,
                "nonce_reused",
                "This request was already received once (repeated nonce); a replayed request is refused.",
            ) from None

    def _dispatch(self, method: str, query: Mapping[str, str], body: bytes) -> dict[str, Any]:
        action = query.get("action", "")
        reads: tuple[str, ...] = ("info", "statuses", "orders", "order", "products")
        if _version(self.bridge_version) >= (1, 4, 0):
            reads += ("orders_changed",)
        writes = ("set_stock", "set_price", "add_history")
        if action not in reads and action not in writes:
            raise BridgeError(
                404, "unknown_action", f"Unknown action; this bridge knows: {', '.join(reads + writes)}."
            )
        is_write = action in writes
        if is_write != (method == "POST"):
            raise BridgeError(
                405, "method_not_allowed", f"Action '{action}' needs {'POST' if is_write else 'GET'}."
            )
        payload: Any = None
        if is_write:
            try:
                payload = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                payload = None
            if not isinstance(payload, dict) or _too_deep(payload, 16):
                raise BridgeError(400, "bad_json", "The request body must be a JSON object.")
        if action == "info":
            return self._info()
        if action == "statuses":
            return {
                "statuses": [
                    {"order_status_id": int(row["order_status_id"]), "name": _text(row["name"])}
                    for row in self.query(
                        f"SELECT order_status_id, name FROM {self.t('order_status')} WHERE language_id = ?"
                        " ORDER BY order_status_id",
                        [self._language_id()],
                    )
                ]
            }
        if action == "orders":
            return self._orders(query)
        if action == "orders_changed":
            return self._orders_changed(query)
        if action == "order":
            return self._order(query)
        if action == "products":
            return self._products(query)
        if action == "set_stock":
            return self._set_stock(payload)
        if action == "set_price":
            return self._set_price(payload)
        return self._add_history(payload)

    # -- store facts ---------------------------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        rows = self.query(f"SELECT `key`, `value` FROM {self.t('setting')} WHERE store_id = 0")
        return {str(row["key"]): str(row["value"]) for row in rows}

    def _language_id(self) -> int:
        settings = self._settings()
        code = settings.get("config_language_catalog", settings.get("config_language", ""))
        rows = self.query(f"SELECT language_id FROM {self.t('language')} WHERE code = ?", [code])
        if not rows:
            rows = self.query(f"SELECT MIN(language_id) AS language_id FROM {self.t('language')}")
        return int(rows[0]["language_id"]) if rows and rows[0]["language_id"] is not None else 1

    def _now_text(self) -> str:
        """Now in the tables' zone (what the bridge compares with and writes)."""
        return self.store_now().strftime("%Y-%m-%d %H:%M:%S")

    def _info(self) -> dict[str, Any]:
        settings = self._settings()
        currencies = [
            {
                "code": _text(r["code"]),
                "title": _text(r["title"]),
                "value": php_decimal(r["value"], 8),
                "decimal_place": int(r["decimal_place"] or 0),
                "status": int(r["status"]) == 1,
            }
            for r in self.query(
                f"SELECT code, title, value, status, decimal_place FROM {self.t('currency')} ORDER BY code"
            )
        ]
        languages = [
            {
                "language_id": int(r["language_id"]),
                "code": _text(r["code"]),
                "name": _text(r["name"]),
                "status": int(r["status"]) == 1,
            }
            for r in self.query(
                f"SELECT language_id, code, name, status FROM {self.t('language')} ORDER BY sort_order, "
                "language_id"
            )
        ]
        stores = [{"store_id": 0, "name": settings.get("config_name", ""), "url": f"{self.base_url}/"}]
        stores += [
            {"store_id": int(r["store_id"]), "name": _text(r["name"]), "url": _text(r["url"])}
            for r in self.query(f"SELECT store_id, name, url FROM {self.t('store')} ORDER BY store_id")
        ]
        return {
            "name": BRIDGE_NAME,
            "bridge_version": self.bridge_version,
            "opencart_version": FAMILIES[self.family][1],
            "schema_family": self.schema,
            "currency": settings.get("config_currency", ""),
            "currencies": currencies,
            "config_tax": settings.get("config_tax", "") == "1",
            "timezone": self.store_zone(),
            "timezone_source": "config_timezone" if settings.get("config_timezone") else "php_default",
            "php_timezone": self.php_timezone,
            "database_utc_offset": int(
                datetime.now(ZoneInfo(self.database_zone)).utcoffset().total_seconds()  # type: ignore[union-attr]
            ),
            "database_time_zone": "SYSTEM",
            "dates_written_in": "database" if self.schema == "2.x" else "store",
            "language_id": self._language_id(),
            "languages": languages,
            "stores": stores,
            "default_order_status_id": int(settings.get("config_order_status_id", "0") or 0),
            "processing_status_ids": _status_ids(settings.get("config_processing_status", "")),
            "complete_status_ids": _status_ids(settings.get("config_complete_status", "")),
            "features": [
                feature
                for feature in BRIDGE_FEATURES
                if feature != "orders_changed" or _version(self.bridge_version) >= (1, 4, 0)
            ],
            "server_time": self._to_store(self._now_text()),
            "limits": {
                "order_page": MAX_ORDER_PAGE,
                "product_page": MAX_PRODUCT_PAGE,
                "batch_items": MAX_BATCH_ITEMS,
            },
        }

    # -- orders --------------------------------------------------------------------------------------

    def _sku_sql(self, product_id: str) -> str:
        if self.schema == "4.1":
            return (
                f"(SELECT pc.value FROM {self.t('product_code')} pc WHERE pc.product_id = {product_id}"
                " AND pc.code = 'SKU' ORDER BY pc.product_code_id LIMIT 1)"
            )
        return f"(SELECT ps.sku FROM {self.t('product')} ps WHERE ps.product_id = {product_id})"

    def _change_time_sql(self) -> str:
        return (
            f"MAX(o.date_modified, COALESCE((SELECT MAX(h.date_added) FROM {self.t('order_history')} h"
            " WHERE h.order_id = o.order_id), o.date_modified))"
        )

    def _orders(self, query: Mapping[str, str]) -> dict[str, Any]:
        limit = _query_int(query, "limit", 50, 1, MAX_ORDER_PAGE)
        assert limit is not None
        sql, params, after_time, after_id, until = self._orders_after(query)
        rows = self.query(f"{sql} LIMIT {limit + 1}", params)
        has_more = len(rows) > limit
        rows = rows[:limit]
        change_times = {int(r["order_id"]): _text(r["change_time"]) for r in rows}
        cursor = f"{after_time}|{after_id}"
        if rows:
            cursor = f"{_text(rows[-1]['change_time'])}|{int(rows[-1]['order_id'])}"
        return {
            "orders": self._load_orders([int(r["order_id"]) for r in rows], change_times),
            "cursor": cursor,
            "has_more": has_more,
            "until": self._to_store(until),
        }

    def _orders_changed(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``orders_changed`` (1.4.0): whether ``orders`` with the same position and filters would
        return anything, answered from one indexed ``LIMIT 1`` query without loading any order."""
        sql, params, after_time, after_id, until = self._orders_after(query)
        with self.lock:
            self.probe_count += 1
        changed = bool(self.query(f"{sql} LIMIT 1", params))
        return {"changed": changed, "cursor": f"{after_time}|{after_id}", "until": self._to_store(until)}

    def _orders_after(self, query: Mapping[str, str]) -> tuple[str, list[Any], str, int, str]:
        """The order query both ``orders`` and ``orders_changed`` run (without its LIMIT), from the
        request's position (``cursor`` or ``since``) and status filter."""
        if "cursor" in query:
            match = re.fullmatch(
                r"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})\|([0-9]{1,10})", query["cursor"]
            )
            if match is None:
                raise _bad_input("'cursor' is not a cursor this bridge handed out.", field="cursor")
            after_time, after_id = match.group(1), int(match.group(2))
        elif "since" in query:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", query["since"]):
                raise _bad_input(
                    "'since' must be a store-local time like 2024-05-01 13:45:00.", field="since"
                )
            after_time, after_id = self._to_data(query["since"]), 0
        else:
            raise _bad_input("Give 'since' (store-local time) or a 'cursor'.", field="since")
        match_mode = query.get("match", "current")
        if match_mode not in ("current", "ever"):
            raise _bad_input("'match' must be 'current' or 'ever'.", field="match")
        status_filter = ""
        status_params: list[int] = []
        if query.get("statuses", "") != "":
            if not re.fullmatch(r"[0-9]{1,10}(,[0-9]{1,10}){0,49}", query["statuses"]):
                raise _bad_input(
                    "'statuses' must be a comma-separated list of order status ids.", field="statuses"
                )
            status_params = [int(s) for s in query["statuses"].split(",")]
            marks = ",".join("?" for _ in status_params)
            status_filter = f" AND (o.order_status_id IN ({marks})"
            if match_mode == "ever":
                status_filter += (
                    f" OR EXISTS (SELECT 1 FROM {self.t('order_history')} hs WHERE hs.order_id = o.order_id"
                    f" AND hs.order_status_id IN ({marks}))"
                )
                status_params = status_params + status_params
            status_filter += ")"
        until = self._now_text()
        history = self.t("order_history")
        sql = (
            f"SELECT t.order_id, t.change_time FROM (SELECT o.order_id, {self._change_time_sql()} AS "
            "change_time"
            f" FROM {self.t('order')} o WHERE o.order_status_id > 0{status_filter}"
            f" AND (o.date_modified >= ? OR o.order_id IN (SELECT h2.order_id FROM {history} h2 WHERE "
            "h2.date_added >= ?))"
            ") t WHERE (t.change_time > ? OR (t.change_time = ? AND t.order_id > ?)) AND t.change_time < ?"
            " ORDER BY t.change_time, t.order_id"
        )
        params = [*status_params, after_time, after_time, after_time, after_time, after_id, until]
        return sql, params, after_time, after_id, until

    def _order(self, query: Mapping[str, str]) -> dict[str, Any]:
        order_id = _query_int(query, "id", None, 1, MAX_ID)
        if order_id is None:
            raise _bad_input("'id' is required.", field="id")
        changed = self.query(
            f"SELECT {self._change_time_sql()} AS change_time FROM {self.t('order')} o WHERE o.order_id = ?",
            [order_id],
        )
        orders = (
            self._load_orders([order_id], {order_id: _text(changed[0]["change_time"])}) if changed else []
        )
        if not orders:
            raise BridgeError(404, "order_not_found", f"Order {order_id} does not exist on this store.")
        order = orders[0]
        order["history"] = self._history(order_id)
        return {"order": order}

    def _history(self, order_id: int) -> list[dict[str, Any]]:
        rows = self.query(
            f"SELECT h.*, os.name AS storelink_status_name FROM {self.t('order_history')} h LEFT JOIN"
            f" {self.t('order_status')} os ON os.order_status_id = h.order_status_id AND os.language_id = ?"
            " WHERE h.order_id = ? ORDER BY h.date_added, h.order_history_id",
            [self._language_id(), order_id],
        )
        return [
            {
                "order_history_id": int(r["order_history_id"]),
                "order_status_id": int(r["order_status_id"]),
                "order_status": _text(r["storelink_status_name"]),
                "notify": int(r["notify"]) == 1,
                "comment": _text(r["comment"]),
                "date_added": self._to_store(r["date_added"]),
            }
            for r in rows
        ]

    def _load_orders(self, order_ids: list[int], change_times: Mapping[int, str]) -> list[dict[str, Any]]:
        if not order_ids:
            return []
        marks = ",".join("?" for _ in order_ids)
        language_id = self._language_id()
        by_id = {
            int(r["order_id"]): r
            for r in self.query(
                f"SELECT o.*, os.name AS storelink_status_name FROM {self.t('order')} o LEFT JOIN"
                f" {self.t('order_status')} os ON os.order_status_id = o.order_status_id AND "
                "os.language_id = ?"
                f" WHERE o.order_id IN ({marks})",
                [language_id, *order_ids],
            )
        }
        country_ids = sorted(
            {int(r[f"{k}_country_id"] or 0) for r in by_id.values() for k in ("payment", "shipping")}
        )
        iso = {}
        if country_ids:
            iso = {
                int(r["country_id"]): _text(r["iso_code_2"])
                for r in self.query(
                    f"SELECT country_id, iso_code_2 FROM {self.t('country')} WHERE country_id IN"
                    f" ({','.join('?' for _ in country_ids)})",
                    country_ids,
                )
            }
        has_master = self.schema in ("4.0", "4.1")
        lines: dict[int, list[dict[str, Any]]] = {}
        for line in self.query(
            f"SELECT op.*, {self._sku_sql('op.product_id')} AS storelink_sku FROM "
            f"{self.t('order_product')} op"
            f" WHERE op.order_id IN ({marks}) ORDER BY op.order_product_id",
            order_ids,
        ):
            lines.setdefault(int(line["order_id"]), []).append(line)
        options: dict[int, list[dict[str, Any]]] = {}
        for option in self.query(
            f"SELECT * FROM {self.t('order_option')} WHERE order_id IN ({marks}) ORDER BY order_option_id",
            order_ids,
        ):
            options.setdefault(int(option["order_product_id"]), []).append(
                {
                    "order_option_id": int(option["order_option_id"]),
                    "product_option_id": int(option["product_option_id"]),
                    "product_option_value_id": int(option["product_option_value_id"]),
                    "name": _text(option["name"]),
                    "value": _text(option["value"]),
                    "type": _text(option["type"]),
                }
            )
        totals: dict[int, list[dict[str, Any]]] = {}
        for total in self.query(
            f"SELECT * FROM {self.t('order_total')} WHERE order_id IN ({marks}) ORDER BY sort_order, "
            "order_total_id",
            order_ids,
        ):
            totals.setdefault(int(total["order_id"]), []).append(
                {
                    "code": _text(total["code"]),
                    "title": _text(total["title"]),
                    "value": php_decimal(total["value"], 4),
                    "sort_order": int(total["sort_order"]),
                }
            )
        orders = []
        for order_id in order_ids:
            o = by_id.get(order_id)
            if o is None:
                continue
            products = [
                {
                    "order_product_id": int(line["order_product_id"]),
                    "product_id": int(line["product_id"]),
                    "master_id": int(line["master_id"] or 0) if has_master else 0,
                    "sku": _text(line["storelink_sku"]),
                    "model": _text(line["model"]),
                    "name": _text(line["name"]),
                    "quantity": int(line["quantity"]),
                    "price": php_decimal(line["price"], 4),
                    "total": php_decimal(line["total"], 4),
                    "tax": php_decimal(line["tax"], 4),
                    "options": options.get(int(line["order_product_id"]), []),
                }
                for line in lines.get(order_id, [])
            ]
            shipping = _method_name(o["shipping_method"], o.get("shipping_code", ""))
            payment = _method_name(o["payment_method"], o.get("payment_code", ""))
            orders.append(
                {
                    "order_id": int(o["order_id"]),
                    "store_id": int(o["store_id"]),
                    "store_name": _text(o["store_name"]),
                    "invoice_no": int(o["invoice_no"] or 0),
                    "invoice_prefix": _text(o["invoice_prefix"]),
                    "order_status_id": int(o["order_status_id"]),
                    "order_status": _text(o["storelink_status_name"]),
                    "customer_id": int(o["customer_id"]),
                    "customer": {
                        "firstname": _text(o["firstname"]),
                        "lastname": _text(o["lastname"]),
                        "email": _text(o["email"]),
                        "telephone": _text(o["telephone"]),
                    },
                    "payment_address": _address(o, "payment", iso),
                    "shipping_address": _address(o, "shipping", iso),
                    "payment_method": payment[0],
                    "payment_code": payment[1],
                    "shipping_method": shipping[0],
                    "shipping_code": shipping[1],
                    "comment": _text(o["comment"]),
                    "total": php_decimal(o["total"], 4),
                    "currency_code": _text(o["currency_code"]),
                    "currency_value": php_decimal(o["currency_value"], 8),
                    "language_id": int(o["language_id"]),
                    "date_added": self._to_store(o["date_added"]),
                    "date_modified": self._to_store(o["date_modified"]),
                    "change_time": self._to_store(change_times.get(order_id, _text(o["date_modified"]))),
                    "products": products,
                    "totals": totals.get(order_id, []),
                }
            )
        return orders

    # -- products ------------------------------------------------------------------------------------

    def _products(self, query: Mapping[str, str]) -> dict[str, Any]:
        limit = _query_int(query, "limit", 100, 1, MAX_PRODUCT_PAGE)
        after = _query_int(query, "after", 0, 0, MAX_ID)
        assert limit is not None
        assert after is not None
        language_id = self._language_id()
        master = "p.master_id" if self.schema in ("4.0", "4.1") else "0 AS master_id"
        rows = self.query(
            "SELECT p.product_id, p.model, p.quantity, p.price, p.status, p.tax_class_id, p.subtract, "
            f"{master},"
            f" {self._sku_sql('p.product_id')} AS storelink_sku, pd.name AS storelink_name FROM "
            f"{self.t('product')} p"
            f" LEFT JOIN {self.t('product_description')} pd ON pd.product_id = p.product_id AND "
            "pd.language_id = ?"
            f" WHERE p.product_id > ? ORDER BY p.product_id LIMIT {limit + 1}",
            [language_id, after],
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        ids = [int(r["product_id"]) for r in rows]
        options: dict[int, dict[int, dict[str, Any]]] = {}
        if ids:
            marks = ",".join("?" for _ in ids)
            for value in self.query(
                "SELECT pov.*, po.required, od.name AS storelink_option_name, ovd.name AS "
                "storelink_value_name"
                f" FROM {self.t('product_option_value')} pov JOIN {self.t('product_option')} po"
                " ON po.product_option_id = pov.product_option_id LEFT JOIN "
                f"{self.t('option_description')} od"
                f" ON od.option_id = pov.option_id AND od.language_id = ? LEFT JOIN"
                f" {self.t('option_value_description')} ovd ON ovd.option_value_id = pov.option_value_id"
                f" AND ovd.language_id = ? WHERE pov.product_id IN ({marks})"
                " ORDER BY pov.product_id, pov.product_option_id, pov.product_option_value_id",
                [language_id, language_id, *ids],
            ):
                product_options = options.setdefault(int(value["product_id"]), {})
                option_id = int(value["product_option_id"])
                if option_id not in product_options:
                    product_options[option_id] = {
                        "product_option_id": option_id,
                        "option_id": int(value["option_id"]),
                        "name": _text(value["storelink_option_name"]),
                        "required": int(value["required"]) == 1,
                        "values": [],
                    }
                product_options[option_id]["values"].append(
                    {
                        "product_option_value_id": int(value["product_option_value_id"]),
                        "option_value_id": int(value["option_value_id"]),
                        "name": _text(value["storelink_value_name"]),
                        "quantity": int(value["quantity"]),
                        "subtract": int(value["subtract"]) == 1,
                        "price": php_decimal(value["price"], 4),
                        "price_prefix": _text(value["price_prefix"]),
                    }
                )
        products = [
            {
                "product_id": int(r["product_id"]),
                "master_id": int(r["master_id"] or 0),
                "sku": _text(r["storelink_sku"]),
                "model": _text(r["model"]),
                "name": _text(r["storelink_name"]),
                "quantity": int(r["quantity"]),
                "price": php_decimal(r["price"], 4),
                "status": int(r["status"]) == 1,
                "subtract": int(r["subtract"]) == 1,
                "tax_class_id": int(r["tax_class_id"]),
                "options": list(options.get(int(r["product_id"]), {}).values()),
            }
            for r in rows
        ]
        return {"products": products, "after": ids[-1] if ids else after, "has_more": has_more}

    # -- writes --------------------------------------------------------------------------------------

    @staticmethod
    def _batch_items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        items = body.get("items")
        if not isinstance(items, list):
            raise _bad_input('The body must be {"items": [...]}.', field="items")
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise _bad_input(f"A batch holds 1 to {MAX_BATCH_ITEMS} items.", field="items")
        for index, item in enumerate(items):
            if item == []:  # PHP decodes [] and {} alike
                items[index] = item = {}
            if not isinstance(item, dict):
                raise _bad_input(f"Item {index} must be an object.", index=index)
        return items

    @staticmethod
    def _not_found(index: int, product_id: int | None, value_id: int | None) -> dict[str, Any]:
        what = (
            f"Product {product_id}"
            if value_id is None
            else f"Option value {value_id} of product {product_id}"
        )
        return {
            "index": index,
            "product_id": product_id,
            "product_option_value_id": value_id,
            "ok": False,
            "error": {"code": "not_found", "message": f"{what} does not exist on this store."},
        }

    def _set_stock(self, body: Mapping[str, Any]) -> dict[str, Any]:
        items = [
            (
                _json_int(item, "product_id", index, 1, MAX_ID, True),
                _json_int(item, "product_option_value_id", index, 1, MAX_ID, False),
                _json_int(item, "quantity", index, 0, MAX_QUANTITY, True),
            )
            for index, item in enumerate(self._batch_items(body))
        ]
        results = []
        writes = []
        with self.transaction() as db:
            for index, (product_id, value_id, quantity) in enumerate(items):
                if value_id is None:
                    current = db.execute(
                        f"SELECT quantity FROM {self.t('product')} WHERE product_id = ?", [product_id]
                    ).fetchone()
                    if current is not None:
                        db.execute(
                            f"UPDATE {self.t('product')} SET quantity = ? WHERE product_id = ?",
                            [quantity, product_id],
                        )
                else:
                    current = db.execute(
                        f"SELECT quantity FROM {self.t('product_option_value')} WHERE "
                        "product_option_value_id = ?"
                        " AND product_id = ?",
                        [value_id, product_id],
                    ).fetchone()
                    if current is not None:
                        db.execute(
                            f"UPDATE {self.t('product_option_value')} SET quantity = ? WHERE "
                            "product_option_value_id = ?"
                            " AND product_id = ?",
                            [quantity, value_id, product_id],
                        )
                if current is None:
                    results.append(self._not_found(index, product_id, value_id))
                    continue
                writes.append((f"{product_id}:{value_id or ''}", quantity))
                results.append(
                    {
                        "index": index,
                        "product_id": product_id,
                        "product_option_value_id": value_id,
                        "ok": True,
                        "previous": int(current["quantity"]),
                        "quantity": quantity,
                    }
                )
        for key, value in writes:
            self.record_write("stock", key, value)
        return {"results": results}

    def _set_price(self, body: Mapping[str, Any]) -> dict[str, Any]:
        items = []
        for index, item in enumerate(self._batch_items(body)):
            product_id = _json_int(item, "product_id", index, 1, MAX_ID, True)
            value_id = _json_int(item, "product_option_value_id", index, 1, MAX_ID, False)
            if "price" not in item:
                raise _bad_input(f"Item {index}: 'price' is required.", index=index, field="price")
            items.append((product_id, value_id, _money_units(item["price"], index)))
        results: list[dict[str, Any]] = []
        writes = []
        product, values = self.t("product"), self.t("product_option_value")
        with self.transaction() as db:
            for index, (product_id, value_id, units) in enumerate(items):
                price = _units_to_decimal(units)
                current = db.execute(
                    f"SELECT price FROM {product} WHERE product_id = ?", [product_id]
                ).fetchone()
                if value_id is None:
                    if current is None:
                        results.append(self._not_found(index, product_id, None))
                        continue
                    db.execute(f"UPDATE {product} SET price = ? WHERE product_id = ?", [price, product_id])
                    writes.append((f"{product_id}:", price))
                    results.append(
                        {
                            "index": index,
                            "product_id": product_id,
                            "product_option_value_id": None,
                            "ok": True,
                            "previous": php_decimal(current["price"], 4),
                            "price": price,
                        }
                    )
                    continue
                option = db.execute(
                    f"SELECT price, price_prefix FROM {values} WHERE product_option_value_id = ? AND "
                    "product_id = ?",
                    [value_id, product_id],
                ).fetchone()
                if current is None or option is None:
                    results.append(self._not_found(index, product_id, value_id))
                    continue
                delta = units - _decimal_to_units(current["price"])
                prefix = "-" if delta < 0 else "+"
                db.execute(
                    f"UPDATE {values} SET price = ?, price_prefix = ? WHERE product_option_value_id = ? "
                    "AND product_id = ?",
                    [_units_to_decimal(abs(delta)), prefix, value_id, product_id],
                )
                previous_delta = _decimal_to_units(option["price"]) * (
                    -1 if option["price_prefix"] == "-" else 1
                )
                writes.append((f"{product_id}:{value_id}", price))
                results.append(
                    {
                        "index": index,
                        "product_id": product_id,
                        "product_option_value_id": value_id,
                        "ok": True,
                        "previous": _units_to_decimal(_decimal_to_units(current["price"]) + previous_delta),
                        "price": price,
                        "price_prefix": prefix,
                        "price_delta": _units_to_decimal(abs(delta)),
                    }
                )
        for key, value in writes:
            self.record_write("price", key, value)
        return {"results": results}

    def _add_history(self, body: Mapping[str, Any]) -> dict[str, Any]:
        order_id = _json_int(body, "order_id", None, 1, MAX_ID, True)
        status_id = _json_int(body, "order_status_id", None, 1, MAX_ID, True)
        comment = body.get("comment", "")
        if comment is None:
            comment = ""
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
            raise _bad_input(
                f"'comment' must be text of at most {MAX_COMMENT_CHARS} characters.", field="comment"
            )
        notify = body.get("notify", False)
        if notify is None:
            notify = False
        if not isinstance(notify, bool):
            raise _bad_input("'notify' must be true or false.", field="notify")
        if not self.query(f"SELECT order_id FROM {self.t('order')} WHERE order_id = ?", [order_id]):
            raise BridgeError(404, "order_not_found", f"Order {order_id} does not exist on this store.")
        if not self.query(
            f"SELECT order_status_id FROM {self.t('order_status')} WHERE order_status_id = ? LIMIT 1",
            [status_id],
        ):
            raise BridgeError(
                400, "unknown_status", f"Order status {status_id} does not exist on this store."
            )
        stored = _php_escape(comment)
        now = self._now_text()
        with self.transaction() as db:
            cursor = db.execute(
                f"INSERT INTO {self.t('order_history')} (order_id, order_status_id, notify, comment, "
                "date_added)"
                " VALUES (?, ?, ?, ?, ?)",
                [order_id, status_id, 1 if notify else 0, stored, now],
            )
            history_id = int(cursor.lastrowid or 0)
            db.execute(
                f"UPDATE {self.t('order')} SET order_status_id = ?, date_modified = ? WHERE order_id = ?",
                [status_id, now, order_id],
            )
        self.record_write("history", order_id, html.unescape(stored))
        self.record_write("status", order_id, str(status_id))
        return {
            "order_history_id": history_id,
            "order_id": order_id,
            "order_status_id": status_id,
            "date_added": self._to_store(now),
            "mail_sent": False,
        }


def _unauthorized() -> BridgeError:
    """The bridge's one answer to every request whose signature it did not verify."""
    return BridgeError(401, "unauthorized", "The request is not authorised.")


class _Hello(Exception):
    """An unsigned GET: answer with the bridge's name and version only."""


def _status_ids(value: str) -> list[int]:
    """``StorelinkStore::statusIds``: a JSON list setting as sorted unique ids (PHP-serialized lists
    of very old versions are not emulated: the sandbox never writes them)."""
    try:
        items = json.loads(value)
    except ValueError:
        items = None
    if not isinstance(items, list):
        return []
    ids = {
        int(str(item))
        for item in items
        if isinstance(item, (str, int))
        and not isinstance(item, bool)
        and re.fullmatch(r"[0-9]{1,10}", str(item))
    }
    return sorted(ids)


def _header(request: SandboxRequest, name: str) -> str | None:
    lowered = name.lower()
    for key, value in request.headers.items():
        if key.lower() == lowered:
            return value
    return None


def _too_deep(value: Any, limit: int, depth: int = 1) -> bool:
    """PHP's json_decode depth limit: arrays and objects nest at most ``limit`` levels."""
    if depth > limit:
        return True
    if isinstance(value, dict):
        return any(_too_deep(v, limit, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_too_deep(v, limit, depth + 1) for v in value)
    return False


def _method_name(value: Any, legacy_code: Any) -> tuple[str, str]:
    text = _text(value)
    if text.startswith("{"):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            return _text(decoded.get("name")), _text(decoded.get("code"))
    return text, _text(legacy_code)


def _address(order: Mapping[str, Any], kind: str, iso: Mapping[int, str]) -> dict[str, Any]:
    country_id = int(order[f"{kind}_country_id"] or 0)
    return {
        "firstname": _text(order[f"{kind}_firstname"]),
        "lastname": _text(order[f"{kind}_lastname"]),
        "company": _text(order[f"{kind}_company"]),
        "address_1": _text(order[f"{kind}_address_1"]),
        "address_2": _text(order[f"{kind}_address_2"]),
        "city": _text(order[f"{kind}_city"]),
        "postcode": _text(order[f"{kind}_postcode"]),
        "country": _text(order[f"{kind}_country"]),
        "country_id": country_id,
        "iso_code_2": iso.get(country_id, ""),
        "zone": _text(order[f"{kind}_zone"]),
        "zone_id": int(order[f"{kind}_zone_id"] or 0),
    }


__all__ = [
    "BRIDGE_VERSION",
    "FAMILIES",
    "OpenCartSandbox",
    "OpenCartStoreData",
    "base_rows",
    "insert_statements",
    "schema_sql",
    "seed_rows",
]
