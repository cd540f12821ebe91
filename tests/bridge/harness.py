"""Real OpenCart-shaped stores for the bridge tests: MariaDB databases + ``php -S`` serving the bridge.

No Python MySQL driver is installed, so MariaDB is driven through its own ``mariadb`` CLI (one
process per statement batch). Each store is a database with OpenCart's tables for one schema family
and one table prefix, seeded with the same generator the sandbox uses, a ``config.php`` like the
store's own, an ``index.php`` carrying OpenCart's ``VERSION`` constant, and the bridge file served
by PHP's built-in server on 127.0.0.1. Database names carry a per-run random part, so parallel runs
and xdist workers never collide; everything is dropped at the end of the session.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from connectors.opencart.bridge_client import BRIDGE_PHP_PATH
from connectors.sandbox.opencart import (
    API_USERNAME,
    FAMILIES,
    OpenCartStoreData,
    Rows,
    api_key_for,
    base_rows,
    schema_family_of,
    schema_sql,
    seed_rows,
    store_timezone,
)
from tests.bridge.private_mariadb import private_mariadb_url, start_private_mariadb

#: The server the bridge tests use: MARIADB_URL (CI), else a private one started on first use.
MARIADB_URL = os.environ.get("MARIADB_URL", "")
SEED_PRODUCTS = 12
SEED_ORDERS = 75
SEED_DAYS = 10
SEED_RNG = 7


def mariadb_settings(url: str | None = None) -> dict[str, Any]:
    parts = urlsplit(url or MARIADB_URL or private_mariadb_url())
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }


def tools_available() -> bool:
    return bool(shutil.which("php")) and bool(shutil.which("mariadb") or shutil.which("mysql"))


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    return f"'{text}'"


def render(sql: str, params: Sequence[Any]) -> str:
    """Put literals in place of ``?`` placeholders that are outside quoted strings."""
    out = []
    values = iter(params)
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            out.append(sql_literal(next(values)))
        else:
            out.append(char)
    return "".join(out)


def _unescape_batch(value: str) -> str | None:
    if value == "NULL":
        return None
    if "\\" not in value:
        return value
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "t": "\t", "0": "\0", "\\": "\\"}.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


class MariaDB:
    """The server, through its command-line client."""

    def __init__(self, url: str | None = None) -> None:
        self.settings = mariadb_settings(url)
        self.binary = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"

    def run(self, sql: str, database: str | None = None) -> list[dict[str, Any]]:
        args = [
            self.binary,
            f"--host={self.settings['host']}",
            f"--port={self.settings['port']}",
            f"--user={self.settings['user']}",
            "--batch",
            "--default-character-set=utf8mb4",
        ]
        if self.settings["password"]:
            args.append(f"--password={self.settings['password']}")
        if database:
            args.append(database)
        done = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb failed: {done.stderr.strip()[:500]}")
        lines = done.stdout.split("\n")
        if not lines or not lines[0]:
            return []
        header = lines[0].split("\t")
        return [
            dict(zip(header, (_unescape_batch(cell) for cell in line.split("\t")), strict=True))
            for line in lines[1:]
            if line
        ]


class MariaDBStore(OpenCartStoreData):
    """One OpenCart database on MariaDB, inspected with the sandbox's own store-side helpers."""

    def __init__(self, server: MariaDB, database: str, family: str, prefix: str) -> None:
        self.server = server
        self.database = database
        self.family = family
        self.prefix = prefix

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.server.run(render(sql, params) + ";", self.database)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.server.run(render(sql, params) + ";", self.database)

    def insert(self, rows: Rows) -> None:
        statements = []
        for table, table_rows in rows.items():
            for row in table_rows:
                columns = ", ".join(f"`{name}`" for name in row)
                values = ", ".join(sql_literal(value) for value in row.values())
                statements.append(f"INSERT INTO `{self.prefix}{table}` ({columns}) VALUES ({values});")
        script = "\n".join(["SET SESSION sql_mode = '';", "START TRANSACTION;", *statements, "COMMIT;"])
        self.server.run(script, self.database)

    def add_order(self, **kwargs: Any) -> str:
        rows = self.new_order_rows(**kwargs)
        self.insert(rows)
        return str(rows["order"][0]["order_id"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PhpBridgeServer:
    """``php -S`` on loopback serving a store folder that holds storelink-bridge.php."""

    def __init__(
        self, docroot: Path, env: dict[str, str] | None = None, *, php_timezone: str = "UTC"
    ) -> None:
        self.docroot = docroot
        self.env = env or {}
        #: PHP's ``date.timezone``: the zone a 2.x store's PHP believes in, whatever MySQL's is
        self.php_timezone = php_timezone
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> PhpBridgeServer:
        for _ in range(5):
            port = free_port()
            self.process = subprocess.Popen(
                [
                    shutil.which("php") or "php",
                    "-d",
                    f"date.timezone={self.php_timezone}",
                    "-d",
                    "display_errors=1",
                    "-d",
                    "error_reporting=E_ALL",
                    "-S",
                    f"127.0.0.1:{port}",
                    "-t",
                    str(self.docroot),
                ],
                cwd=self.docroot,
                env={**os.environ, **self.env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        self.url = f"http://127.0.0.1:{port}"
                        return self
                except OSError:
                    time.sleep(0.03)
            self.stop()
        raise RuntimeError("php -S did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class PhpStore:
    """A running store: the database, its folder and the PHP server in front of it."""

    def __init__(self, data: MariaDBStore, server: PhpBridgeServer, api_key: str) -> None:
        self.data = data
        self.server = server
        self.api_key = api_key
        self.family = data.family
        self.prefix = data.prefix

    @property
    def url(self) -> str:
        return self.server.url

    def credentials(self) -> dict[str, str]:
        return {"api_username": API_USERNAME, "api_key": self.api_key}


_FARM: StoreFarm | None = None


def get_farm() -> StoreFarm:
    """The process-wide farm: stores are reused across test modules and removed at exit."""
    global _FARM
    if _FARM is None:
        _FARM = StoreFarm()
        atexit.register(_FARM.close)
    return _FARM


_ZONED_FARMS: dict[str, StoreFarm] = {}


def zoned_farm(system_zone: str) -> StoreFarm:
    """A farm on a private MariaDB whose operating-system zone is ``system_zone`` (MySQL's
    ``SYSTEM`` zone, with its summer time), started on first use and removed at exit."""
    if system_zone not in _ZONED_FARMS:
        farm = StoreFarm(MariaDB(start_private_mariadb(system_zone=system_zone)))
        atexit.register(farm.close)
        _ZONED_FARMS[system_zone] = farm
    return _ZONED_FARMS[system_zone]


class StoreFarm:
    """Creates stores on first use and tears all of them down at the end of the session."""

    def __init__(self, server: MariaDB | None = None) -> None:
        self.server = server or MariaDB()
        self.run_id = f"{uuid.uuid4().hex[:8]}_{os.environ.get('PYTEST_XDIST_WORKER', 'w')}"
        self.root = Path(tempfile.mkdtemp(prefix="storelink-bridge-"))
        self.stores: dict[tuple[str, str, str], PhpStore] = {}
        self.databases: list[str] = []
        self.servers: list[PhpBridgeServer] = []

    def store(
        self,
        family: str,
        prefix: str,
        purpose: str = "shared",
        *,
        now_local: datetime | None = None,
        php_timezone: str = "UTC",
    ) -> PhpStore:
        """A store; ``php_timezone`` is PHP's ``date.timezone`` (MySQL keeps the server's own zone)."""
        key = (family, prefix, purpose)
        if key not in self.stores:
            self.stores[key] = self._create(family, prefix, purpose, now_local, php_timezone)
        return self.stores[key]

    def _create(
        self, family: str, prefix: str, purpose: str, now_local: datetime | None, php_timezone: str
    ) -> PhpStore:
        schema = schema_family_of(family)
        database = f"sl_bridge_{self.run_id}_{family.replace('.', '')}_{prefix.rstrip('_')}_{purpose}"[:64]
        self.server.run(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4;")
        self.databases.append(database)
        self.server.run(schema_sql(schema, prefix), database)
        data = MariaDBStore(self.server, database, family, prefix)
        api_key = api_key_for(SEED_RNG)
        if now_local is None:
            now_local = datetime.now(ZoneInfo(store_timezone(family))).replace(tzinfo=None, microsecond=0)
        rows = base_rows(family, api_key=api_key)
        rows.update(seed_rows(family, SEED_PRODUCTS, SEED_ORDERS, SEED_DAYS, SEED_RNG, now_local))
        data.insert(rows)

        folder = self.root / database
        folder.mkdir()
        shutil.copy(BRIDGE_PHP_PATH, folder / "storelink-bridge.php")
        (folder / "index.php").write_text(
            f"<?php\n// Version\ndefine('VERSION', '{FAMILIES[family][1]}');\n\n// Configuration\n"
            "if (is_file('config.php')) {\n\trequire_once('config.php');\n}\n",
            encoding="utf-8",
        )
        settings = self.server.settings
        # oc_ stores use mysqli with config.php next to the bridge; other prefixes use PDO and the
        # STORELINK_BRIDGE_CONFIG override (config elsewhere), so both drivers and both paths run.
        uses_override = prefix != "oc_"
        config_dir = self.root / f"{database}-config" if uses_override else folder
        config_dir.mkdir(exist_ok=True)
        server = PhpBridgeServer(
            folder,
            {"STORELINK_BRIDGE_CONFIG": str(config_dir / "config.php")} if uses_override else {},
            php_timezone=php_timezone,
        )
        server.start()
        self.servers.append(server)
        cache_dir = self.root / f"{database}-cache"
        cache_dir.mkdir()
        (config_dir / "config.php").write_text(
            "<?php\n"
            f"define('HTTP_SERVER', '{server.url}/');\n"
            f"define('DIR_CACHE', '{cache_dir}/');\n"
            f"define('DB_DRIVER', '{'pdo' if uses_override else 'mysqli'}');\n"
            f"define('DB_HOSTNAME', '{settings['host']}');\n"
            f"define('DB_USERNAME', '{settings['user']}');\n"
            f"define('DB_PASSWORD', '{settings['password']}');\n"
            f"define('DB_DATABASE', '{database}');\n"
            f"define('DB_PORT', '{settings['port']}');\n"
            f"define('DB_PREFIX', '{prefix}');\n",
            encoding="utf-8",
        )
        return PhpStore(data, server, api_key)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for database in self.databases:
            with contextlib.suppress(RuntimeError):
                self.server.run(f"DROP DATABASE IF EXISTS `{database}`;")
        shutil.rmtree(self.root, ignore_errors=True)
