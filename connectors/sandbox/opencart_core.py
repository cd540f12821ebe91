"""OpenCart's core API (``index.php?route=api/...``) as the sandbox store serves it, per family.

Called by ``OpenCartSandbox`` (connectors/sandbox/opencart.py) for every ``index.php`` request whose
route starts with ``api``; it reads and writes OpenCart's own tables in the sandbox SQLite database
(``{prefix}api``, ``api_ip``, ``api_session``, ``order``, ``order_history``, ``setting``; prefix ``oc_``).

What it reproduces, because the connector must survive each of these on real stores
(as observed on real installs of each version, where they differ from OpenCart's documentation):

- 2.x/3.x answer errors with HTTP 200; a wrong key is ``[]`` on 2.2–3.0 and an error object on 2.1;
  an IP refusal names the caller's IP (plus the misleading ``key`` entry on 2.2–3.0);
- 2.2/2.3 only find the API session again through the ``PHPSESSID`` cookie of the login reply;
- 2.3 (on PHP 8.2) prints ~1.6 KB of deprecation notices before every JSON reply;
- 3.0.0–3.0.2's login dies with a SQL error page, never JSON;
- 4.0 (``api/account/login``, ``|`` or, from 4.0.2, ``.`` before the method) answers a missing token
  with a 404 HTML page and a bad or expired one with a 500 PHP fatal page; 4.0.0.0 checks nothing;
- 4.1 has no login: ``api/order`` requests are HMAC-signed, any refusal is a 403 JSON body labelled
  ``text/html``, the clock window is 450 s (4.1.0.4), and history does not touch ``date_modified``;
- the IP allow-list is an exact string match (4.1 trusts ``X-Forwarded-For`` and friends first);
- comments are stored HTML-escaped, as OpenCart's request cleaning leaves them.

The app object is duck-typed; it needs ``db``, ``transaction()``, ``now()``, ``faults``,
``record_write()``, ``family`` (``"2.1"``, ``"2.2"``, ``"2.3"``, ``"3.0.0"``, ``"3.0.3"``, ``"4.0"``,
``"4.1"``) and may have ``opencart_version`` (e.g. ``"4.0.0.0"``), ``prefix`` and ``store_now()`` (the
store's local ``NOW()`` as a naive datetime; UTC when absent).
"""

from __future__ import annotations

import html
import re
import secrets
import sqlite3
import string
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from connectors.opencart import signing
from connectors.sandbox.core import SandboxRequest, SandboxResponse

DEFAULT_VERSIONS = {
    "2.1": "2.1.0.2",
    "2.2": "2.2.0.0",
    "2.3": "2.3.0.2",
    "3.0.0": "3.0.2.0",
    "3.0.3": "3.0.5.0",
    "4.0": "4.0.2.3",
    "4.1": "4.1.0.4",
}

SESSION_IDLE_SECONDS = 3600

MSG_LOGIN_OK = "Success: API session successfully started!"
MSG_BAD_KEY = "Warning: Incorrect API Key!"
MSG_IP = "Warning: Your IP %s is not allowed to access this API!"
MSG_PERMISSION = "Warning: You do not have permission to access the API!"
MSG_HISTORY_OK = "Success: You have modified orders!"
MSG_NOT_FOUND = "Warning: Order could not be found!"
MSG_41_PERMISSION = "You do not have permission to access this page."

# What 2.3.0.2 prints on PHP 8.2 before every reply (~1.6 KB, seen on a real install). The ``[`` and
# ``{`` inside the notices are deliberate: real PHP 8.1+ deprecations contain ``#[\ReturnTypeWillChange]``.
_NOTICE_TEMPLATES = (
    "<b>Deprecated</b>:  Return type of Session::offsetGet($key) should either be compatible with "
    "ArrayAccess::offsetGet(mixed $offset): mixed, or the #[\\ReturnTypeWillChange] attribute should "
    "be used to temporarily suppress the notice in <b>/var/www/html/system/library/session.php</b> on "
    "line <b>{line}</b><br />\n",
    "<b>Deprecated</b>:  Creation of dynamic property Cart\\Cart::$config is deprecated in "
    "<b>/var/www/html/system/library/cart/cart.php</b> on line <b>{line}</b><br />\n",
    "<b>Deprecated</b>:  Automatic conversion of false to array is deprecated in "
    "<b>/var/www/html/system/engine/loader.php</b> on line <b>{line}</b><br />\n",
)

NOT_FOUND_PAGE = (
    '<!DOCTYPE html>\n<html dir="ltr" lang="en">\n<head>\n<meta charset="UTF-8" />\n'
    '<title>The page you requested cannot be found!</title>\n</head>\n<body>\n<div id="content">'
    "<h1>The page you requested cannot be found!</h1>\n<p>The page you requested cannot be found.</p>"
    "</div>\n</body></html>\n"
)

FATAL_40_PAGE = (
    "<br />\n<b>Fatal error</b>:  Uncaught Error: Call to a member function getId() on null in "
    "/var/www/html/catalog/controller/api/sale/order.php:{line}\nStack trace:\n"
    "#0 /var/www/html/system/engine/action.php(113): Opencart\\Catalog\\Controller\\Api\\Sale\\Order->"
    "addHistory()\n#1 /var/www/html/system/framework.php(264): Opencart\\System\\Engine\\Action->execute()\n"
    "#2 {{main}}\n  thrown in <b>/var/www/html/catalog/controller/api/sale/order.php</b> on line "
    "<b>{line}</b><br />\n"
)

SQL_ERROR_30_PAGE = (
    "<br />\n<b>Fatal error</b>:  Uncaught Exception: Error: You have an error in your SQL syntax; check "
    "the manual that corresponds to your MariaDB server version for the right syntax to use near "
    "'`key` = '***' AND status = '1'' at line 1<br />Error No: 1064<br />SELECT * FROM `{prefix}api` "
    "WHERE username = '{username}' `key` = '***' AND status = '1' in "
    "/var/www/html/system/library/db/mysqli.php:40\nStack trace:\n#0 {{main}}\n  thrown in "
    "<b>/var/www/html/system/library/db/mysqli.php</b> on line <b>40</b><br />\n"
)


def is_core_route(request: SandboxRequest) -> bool:
    """Is this a request for OpenCart's own API (as opposed to the bridge or a storefront page)?"""
    route = (request.arg("route") or "").strip().lower()
    return request.path.rstrip("/").endswith("index.php") and route.startswith("api")


def handle_core(app: Any, request: SandboxRequest) -> SandboxResponse:
    """Answer one core-API request the way the app's OpenCart family does."""
    family = str(app.family)
    route = (request.arg("route") or "").strip()
    if family == "4.1":
        return _Handler41(app, request).handle(route)
    if family == "4.0":
        return _Handler40(app, request).handle(route)
    return _Handler2x3x(app, request).handle(route)


# --------------------------------------------------------------------------------------------------
# Shared store access
# --------------------------------------------------------------------------------------------------


class _Store:
    def __init__(self, app: Any, request: SandboxRequest) -> None:
        self.app = app
        self.request = request
        self.family = str(app.family)
        self.version = str(getattr(app, "opencart_version", "") or DEFAULT_VERSIONS.get(self.family, ""))
        self.prefix = str(getattr(app, "prefix", "oc_"))

    # -- tables ------------------------------------------------------------------------------------

    def table(self, name: str) -> str:
        return f'"{self.prefix}{name}"'

    def columns(self, name: str) -> set[str]:
        rows = self.app.db.execute(f"PRAGMA table_info({self.table(name)})").fetchall()
        return {row[1] for row in rows}

    def username_column(self) -> str:
        return "username" if "username" in self.columns("api") else "name"

    def now_text(self) -> str:
        store_now = getattr(self.app, "store_now", None)
        if callable(store_now):
            return str(store_now().strftime("%Y-%m-%d %H:%M:%S"))
        return datetime.fromtimestamp(self.app.now(), UTC).strftime("%Y-%m-%d %H:%M:%S")

    def ago_text(self, seconds: int) -> str:
        now = datetime.strptime(self.now_text(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")

    def form(self) -> dict[str, str]:
        """PHP's ``$_POST``: the last value of each key."""
        return {key: values[-1] for key, values in self.request.form.items()}

    def post_pairs(self) -> list[tuple[str, str]]:
        if "application/x-www-form-urlencoded" not in self.request.header("content-type"):
            return []
        pairs: dict[str, str] = {}
        for key, value in parse_qsl(self.request.body.decode("utf-8", "replace"), keep_blank_values=True):
            pairs[key] = value  # PHP keeps the first position and the last value
        return list(pairs.items())

    def cookie(self, name: str) -> str:
        for part in self.request.header("cookie").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return ""

    def api_by_key(self, key: str) -> sqlite3.Row | None:
        if not key:
            return None
        row: sqlite3.Row | None = self.app.db.execute(
            f"SELECT * FROM {self.table('api')} WHERE `key` = ? AND status = 1", (key,)
        ).fetchone()
        return row

    def api_by_username_and_key(self, username: str, key: str) -> sqlite3.Row | None:
        if not username or not key:
            return None
        column = self.username_column()
        row: sqlite3.Row | None = self.app.db.execute(
            f"SELECT * FROM {self.table('api')} WHERE {column} = ? AND `key` = ? AND status = 1",
            (username, key),
        ).fetchone()
        return row

    def api_by_id(self, api_id: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.app.db.execute(
            f"SELECT * FROM {self.table('api')} WHERE api_id = ?", (api_id,)
        ).fetchone()
        return row

    def ip_allowed(self, api_id: int, ip: str) -> bool:
        """Exact string equality, as every OpenCart does: no CIDR, no wildcard."""
        row = self.app.db.execute(
            f"SELECT 1 FROM {self.table('api_ip')} WHERE api_id = ? AND ip = ?", (api_id, ip)
        ).fetchone()
        return row is not None

    def setting(self, key: str) -> str:
        if not self.columns("setting"):
            return ""
        row = self.app.db.execute(
            f"SELECT value FROM {self.table('setting')} WHERE `key` = ? AND store_id = 0", (key,)
        ).fetchone()
        return str(row[0]) if row else ""

    # -- sessions (2.x, 3.x, 4.0) ------------------------------------------------------------------

    def start_session(self, api_id: int, token: str, session_id: str) -> None:
        columns = self.columns("api_session")
        values: dict[str, Any] = {
            "api_id": api_id,
            "session_id": session_id,
            "ip": self.request.client_ip,
            "date_added": self.now_text(),
            "date_modified": self.now_text(),
        }
        if "token" in columns:
            values["token"] = token
        if "session_name" in columns:
            values["session_name"] = "temp_session_" + secrets.token_hex(6)
        names = [name for name in values if name in columns]
        with self.app.transaction() as db:
            db.execute(
                f"INSERT INTO {self.table('api_session')} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                [values[name] for name in names],
            )

    def session_api_id(self, token: str, *, cookie_session: str | None = None) -> int | None:
        """The API user of a live session, checked the way ``startup/session`` does on every call."""
        if not token or self.app.faults.expired_token:
            return None
        with self.app.transaction() as db:
            db.execute(
                f"DELETE FROM {self.table('api_session')} WHERE date_modified < ?",
                (self.ago_text(SESSION_IDLE_SECONDS),),
            )
            column = "token" if "token" in self.columns("api_session") else "session_id"
            row = db.execute(
                f"SELECT * FROM {self.table('api_session')} WHERE {column} = ?", (token,)
            ).fetchone()
            if row is None:
                return None
            if cookie_session is not None and row["session_id"] != cookie_session:
                return None
            api = self.api_by_id(int(row["api_id"]))
            if api is None or int(api["status"]) != 1:
                return None
            if not self.ip_allowed(int(api["api_id"]), self.request.client_ip):
                return None
            db.execute(
                f"UPDATE {self.table('api_session')} SET date_modified = ? WHERE api_session_id = ?",
                (self.now_text(), row["api_session_id"]),
            )
            return int(api["api_id"])

    # -- order history -----------------------------------------------------------------------------

    def add_history(self, order_id: str, fields: dict[str, str], *, touch_modified: bool) -> dict[str, Any]:
        """``addOrderHistory``: status + history row; missing fields become ``''`` and a missing
        status becomes 0 (which hides the order), exactly as OpenCart does."""
        try:
            order_number = int(order_id or 0)
        except ValueError:
            order_number = 0
        order = None
        if order_number > 0:
            order = self.app.db.execute(
                f"SELECT order_id, order_status_id FROM {self.table('order')} WHERE order_id = ?",
                (order_number,),
            ).fetchone()
        if order is None:
            return {"error": MSG_NOT_FOUND}
        status = _php_int(fields.get("order_status_id", ""))
        notify = 1 if _php_int(fields.get("notify", "")) else 0
        comment = signing.php_clean(fields.get("comment", ""))
        now = self.now_text()
        with self.app.transaction() as db:
            db.execute(
                f"INSERT INTO {self.table('order_history')} "
                "(order_id, order_status_id, notify, comment, date_added) VALUES (?, ?, ?, ?, ?)",
                (order_number, status, notify, comment, now),
            )
            if touch_modified:
                db.execute(
                    f"UPDATE {self.table('order')} SET order_status_id = ?, date_modified = ? "
                    "WHERE order_id = ?",
                    (status, now, order_number),
                )
            else:
                db.execute(
                    f"UPDATE {self.table('order')} SET order_status_id = ? WHERE order_id = ?",
                    (status, order_number),
                )
        self.app.record_write("history", order_number, html.unescape(comment))
        self.app.record_write("status", order_number, str(status))
        return {"success": MSG_HISTORY_OK}


def _php_int(value: str) -> int:
    """PHP's ``(int)`` on a string: leading digits, else 0."""
    match = re.match(r"\s*([+-]?\d+)", value or "")
    return int(match.group(1)) if match else 0


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:4])


def _random_token(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --------------------------------------------------------------------------------------------------
# 2.1, 2.2, 2.3, 3.0.x
# --------------------------------------------------------------------------------------------------


class _Handler2x3x(_Store):
    def handle(self, route: str) -> SandboxResponse:
        route = route.lower()
        if route == "api/login":
            return self.login()
        if route == "api/order/history":
            return self.history()
        return SandboxResponse.text(NOT_FOUND_PAGE, 404)

    @property
    def is_2x(self) -> bool:
        return self.family.startswith("2.")

    def reply(
        self, payload: Any, headers: dict[str, str] | None = None, *, notice: str = ""
    ) -> SandboxResponse:
        response = SandboxResponse.json(payload, 200, headers)
        prefix = notice
        if self.family == "2.3":
            prefix = _php82_notices() + prefix
        if prefix:
            response.body = prefix.encode() + response.body
        return response

    def login(self) -> SandboxResponse:
        form = self.form()
        notice = ""
        if "key" not in form:
            notice = (
                "<b>Notice</b>: Undefined index: key in <b>/var/www/html/catalog/controller/api/login.php"
                "</b> on line <b>12</b><br />\n"
            )
        if self.family == "3.0.0":
            if not getattr(self.app, "display_errors", True):
                return SandboxResponse.empty(500)
            page = SQL_ERROR_30_PAGE.format(prefix=self.prefix, username=form.get("username", ""))
            return SandboxResponse.text(page, 200)
        key = form.get("key", "")
        if self.family == "3.0.3":
            api = self.api_by_username_and_key(form.get("username") or "Default", key)
        else:
            api = self.api_by_key(key)
        if api is None:
            if self.family == "2.1":
                return self.reply({"error": {"key": MSG_BAD_KEY}}, notice=notice)
            return self.reply([], notice=notice)
        checked_api_id = int(api["api_id"])
        if self.family == "2.1":
            # 2.1 checks the IP list of the store's "API User" setting, not of the key's owner.
            checked_api_id = int(self.setting("config_api_id") or checked_api_id)
        if not self.ip_allowed(checked_api_id, self.request.client_ip):
            error = {"ip": MSG_IP % self.request.client_ip}
            if self.family != "2.1":
                error["key"] = MSG_BAD_KEY
            return self.reply({"error": error}, notice=notice)
        headers: dict[str, str] = {}
        if self.is_2x:
            token = _random_token(32)
            session_id = secrets.token_hex(13)
            if self.family in ("2.2", "2.3"):
                session_id = self.cookie("PHPSESSID") or session_id
                headers["Set-Cookie"] = f"PHPSESSID={session_id}; path=/"
            self.start_session(int(api["api_id"]), token, session_id)
            return self.reply({"success": MSG_LOGIN_OK, "token": token}, headers, notice=notice)
        token = secrets.token_hex(13)
        self.start_session(int(api["api_id"]), token, token)
        return self.reply({"success": MSG_LOGIN_OK, "api_token": token}, notice=notice)

    def session(self) -> int | None:
        if getattr(self.app, "core_session_refused", False):
            return None
        if self.is_2x:
            cookie = self.cookie("PHPSESSID") if self.family in ("2.2", "2.3") else None
            return self.session_api_id(self.request.arg("token") or "", cookie_session=cookie)
        return self.session_api_id(self.request.arg("api_token") or "")

    def history(self) -> SandboxResponse:
        form = self.form()
        notice = ""
        if self.family == "2.1" and "override" not in form:
            notice = (
                "<b>Notice</b>: Undefined index: override in <b>/var/www/html/catalog/controller/api/"
                "order.php</b> on line <b>702</b><br />\n"
            )
        if self.session() is None:
            if self.family == "2.1":
                notice += (
                    "<b>Warning</b>: Invalid argument supplied for foreach() in <b>/var/www/html/catalog/"
                    "controller/api/order.php</b> on line <b>690</b><br />\n"
                )
            return self.reply({"error": MSG_PERMISSION}, notice=notice)
        # 2.x/3.x read order_id from the query string only; a POSTed one is ignored.
        result = self.add_history(self.request.arg("order_id") or "", form, touch_modified=True)
        return self.reply(result, notice=notice)


def _php82_notices() -> str:
    text = "<br />\n"
    line = 41
    while len(text) < 1600:
        for template in _NOTICE_TEMPLATES:
            text += template.format(line=line)
            line += 17
    return text


# --------------------------------------------------------------------------------------------------
# 4.0.x
# --------------------------------------------------------------------------------------------------


class _Handler40(_Store):
    def handle(self, route: str) -> SandboxResponse:
        lowered = route.lower()
        if lowered == "api/account/login":
            return self.login()
        accepts_dot = _version_tuple(self.version) >= (4, 0, 2)
        method_routes = {"api/sale/order|addhistory"}
        if accepts_dot:
            method_routes.add("api/sale/order.addhistory")
        open_api = _version_tuple(self.version) < (4, 0, 1)
        if not open_api:
            token = self.request.arg("api_token")
            if not token:
                return SandboxResponse.text(NOT_FOUND_PAGE, 404)
            if self.session_api_id(token) is None:
                return SandboxResponse.text(FATAL_40_PAGE.format(line=250), 500)
        if lowered in method_routes:
            result = self.add_history(self.form().get("order_id", ""), self.form(), touch_modified=True)
            return SandboxResponse.json(result)
        return SandboxResponse.text(NOT_FOUND_PAGE, 404)

    def login(self) -> SandboxResponse:
        form = self.form()
        api = self.api_by_username_and_key(form.get("username", ""), form.get("key", ""))
        if api is None:
            return SandboxResponse.json({"error": MSG_BAD_KEY})
        if not self.ip_allowed(int(api["api_id"]), self.request.client_ip):
            return SandboxResponse.json({"error": MSG_IP % self.request.client_ip})
        token = secrets.token_hex(13)
        self.start_session(int(api["api_id"]), token, token)
        return SandboxResponse.json({"success": MSG_LOGIN_OK, "api_token": token})


# --------------------------------------------------------------------------------------------------
# 4.1.x
# --------------------------------------------------------------------------------------------------

_FORWARDING_HEADERS = ("CF-Connecting-IP", "X-Forwarded-For", "X-Real-IP", "X-Client-IP")


class _Handler41(_Store):
    def handle(self, route: str) -> SandboxResponse:
        lowered = route.lower()
        if lowered not in ("api/order", "api/subscription"):
            return self.forbidden()
        api = self.authenticate(lowered)
        if api is None:
            return self.forbidden()
        self.log_call(int(api["api_id"]))
        call = self.request.arg("call") or ""
        if lowered == "api/order" and call == "history_add":
            form = self.form()
            # 4.1.0.4 ``editOrderStatusId`` leaves date_modified alone (seen on a real 4.1.0.4 store).
            return self.json(self.add_history(form.get("order_id", ""), form, touch_modified=False))
        return self.json({"error": "API call not found"})

    def caller_ip(self) -> str:
        """``oc_get_ip()``: forwarding headers first, then REMOTE_ADDR (4.1.0.4 validates the value)."""
        for header in _FORWARDING_HEADERS:
            value = self.request.header(header).split(",")[0].strip()
            if value and re.fullmatch(r"[0-9A-Fa-f:.]+", value):
                return value
        return self.request.client_ip

    def authenticate(self, route: str) -> sqlite3.Row | None:
        args = {name: self.request.arg(name) for name in signing_params()}
        if any(value is None for value in args.values()) or self.app.faults.expired_token:
            return None
        column = self.username_column()
        api: sqlite3.Row | None = self.app.db.execute(
            f"SELECT * FROM {self.table('api')} WHERE {column} = ? AND status = 1", (args["username"],)
        ).fetchone()
        if api is None or not self.ip_allowed(int(api["api_id"]), self.caller_ip()):
            return None
        try:
            timestamp = int(args["time"] or "")
        except ValueError:
            return None
        if (
            _version_tuple(self.version) >= (4, 1, 0, 4)
            and abs(timestamp - self.app.now()) > signing.SIGNATURE_WINDOW_SECONDS
        ):
            return None
        path = self.request.path.rsplit("/", 1)[0] + "/"
        message = signing.string_to_sign(
            route=route,
            call=args["call"] or "",
            username=str(api[column]),
            host=self.request.header("host"),
            path=path,
            store_id=_php_int(args["store_id"] or ""),
            language=args["language"] or "",
            currency=args["currency"] or "",
            post_pairs=self.post_pairs(),
            timestamp=timestamp,
        )
        if not signing.verify_signature(str(api["key"]), message, args["signature"] or ""):
            return None
        return api

    def log_call(self, api_id: int) -> None:
        columns = self.columns("api_history")
        if not columns:
            return
        values = {
            "api_id": api_id,
            "call": self.request.arg("call") or "",
            "ip": self.caller_ip(),
            "date_added": self.now_text(),
        }
        names = [name for name in values if name in columns]
        with self.app.transaction() as db:
            db.execute(
                f"INSERT INTO {self.table('api_history')} ({', '.join(f'`{n}`' for n in names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                [values[name] for name in names],
            )

    def forbidden(self) -> SandboxResponse:
        # 4.1 sets the 403 status but keeps the default text/html content type.
        return SandboxResponse.json(
            {"error": MSG_41_PERMISSION}, 403, content_type="text/html; charset=utf-8"
        )

    def json(self, payload: Any) -> SandboxResponse:
        return SandboxResponse.json(payload, 200)


def signing_params() -> tuple[str, ...]:
    return ("call", "username", "store_id", "language", "currency", "time", "signature")
