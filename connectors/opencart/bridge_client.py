"""Python side of the Storelink store bridge (``bridge/storelink-bridge.php``, protocol in PROTOCOL.md).

OpenCart's core API cannot list orders or change stock and prices in any version, so the seller
uploads one PHP file next to the store's ``index.php``. This client signs every request with the
seller's OpenCart API key (HMAC-SHA256; the key never travels), maps the bridge's replies to
canonical types, and turns every failure into the contract's typed errors with words a seller can
act on ("upload the file", "add this IP", "fix the server clock").

Every attempt is signed afresh: the bridge refuses a repeated nonce, so retries cannot be left to a
generic HTTP layer that would resend the same headers.

Why one module of this size: it is the one client of the bridge protocol (``bridge/PROTOCOL.md``),
one method per bridge action plus the signing and retry loop they share; splitting the actions
would separate each from the protocol version checks it depends on.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from connectors.base import (
    Address,
    Listing,
    Order,
    OrderLine,
    OrderPage,
    PriceUpdate,
    PushResult,
    StockUpdate,
    StoreStatus,
    currency_places,
    to_decimal,
)
from connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    ProtocolError,
    RateLimited,
    TransientError,
)
from connectors.gates import MAX_INLINE_RETRY_AFTER
from connectors.http import StoreHttp, parse_json_lenient
from connectors.opencart.statuses import StatusRules

#: The PHP file the seller uploads; the Django app serves it for download from here.
BRIDGE_PHP_PATH = Path(__file__).resolve().parent / "bridge" / "storelink-bridge.php"
BRIDGE_FILE_NAME = "storelink-bridge.php"
#: Oldest bridge this client can talk to; older files must be replaced by the seller.
MIN_BRIDGE_VERSION = "1.0.0"
SIGNATURE_SCHEME = "STORELINK1"
BATCH_SIZE = 100
PRODUCT_PAGE_SIZE = 500
MAX_ORDER_PAGE_SIZE = 250
CHECKPOINT_VERSION = 2
#: the bridge version from which ``orders`` follows an order out of the import statuses
FOLLOWS_STATUS_CHANGES_FROM = "1.1.0"
#: the bridge version that answers ``orders_changed`` (is anything after this cursor?) without rows
ORDERS_CHANGED_FROM = "1.4.0"

#: ``unauthorized`` is bridge 1.2.0's one answer before the signature verified; the others are what
#: older files said in its place (and ``user_disabled``, which needs a verified signature)
AUTH_CODES = frozenset({"unauthorized", "bad_signature", "unknown_user", "user_disabled", "auth_required"})
DISCOUNT_TOTAL_CODES = frozenset({"coupon", "voucher", "reward", "credit", "discount"})
#: order_total codes that map to their own canonical field; any other positive row is a fee
OWN_SLOT_TOTAL_CODES = frozenset({"sub_total", "shipping", "tax", "total"})
#: ``order`` money columns are decimal(15,4): a currency cannot meaningfully have more places than that
MAX_DECIMAL_PLACES = 4


@dataclass(frozen=True)
class BridgeInfo:
    """What the bridge says about the store (``info`` action)."""

    bridge_version: str
    opencart_version: str
    schema_family: str
    currency: str
    currencies: tuple[str, ...]
    prices_include_tax: bool
    timezone: str
    languages: tuple[str, ...]
    stores: tuple[tuple[int, str], ...]
    server_time: str = ""
    #: ``currency.decimal_place`` per code, disabled currencies included (old orders may use them)
    decimal_places: tuple[tuple[str, int], ...] = ()
    #: the store's own status declarations (bridge 1.1.0+; empty from older files)
    processing_status_ids: tuple[str, ...] = ()
    complete_status_ids: tuple[str, ...] = ()
    default_order_status_id: str = ""
    #: what the bridge file can do beyond 1.0.0 (``orders_match_ever``, ``status_sets`` ...)
    features: tuple[str, ...] = ()
    #: PHP's ``date.timezone`` and the database's offset to UTC in seconds (bridge 1.3.0+; else "" / None)
    php_timezone: str = ""
    database_utc_offset: int | None = None
    #: MySQL's ``@@session.time_zone`` on the bridge's connection (``SYSTEM``: the host's own zone)
    database_time_zone: str = ""
    #: where the tables' dates come from: ``database`` (2.x writes MySQL's NOW()) or ``store``
    dates_written_in: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def status_rules(self) -> StatusRules:
        return StatusRules.from_ids(
            self.processing_status_ids, self.complete_status_ids, self.default_order_status_id
        )

    def places_for(self, currency_code: str) -> int:
        """How many decimals an amount in this currency has: the store's own setting, else ISO 4217."""
        code = currency_code.strip().upper()
        for known, places in self.decimal_places:
            if known.upper() == code:
                return places
        return currency_places(code)


def _at_least(version: str, minimum: str) -> bool:
    try:
        return bool(version) and version_tuple(version) >= version_tuple(minimum)
    except ValueError:
        return False


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version or "0"))


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    """The query as signed *and* sent: pairs sorted by name then value, RFC 3986 percent-encoding."""
    ordered = sorted(pairs, key=lambda pair: (pair[0].encode(), pair[1].encode()))
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in ordered)


def sign_request(
    api_key: str, method: str, path: str, query: str, user: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """HMAC-SHA256 (hex) over the request; see PROTOCOL.md "Signing"."""
    message = "\n".join(
        (SIGNATURE_SCHEME, method, path, query, user, timestamp, nonce, hashlib.sha256(body).hexdigest())
    )
    return hmac.new(api_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def store_zone(name: str) -> ZoneInfo | None:
    """The zone a store reports, or None when this machine's tz database does not know the name.

    ``ZoneInfo`` raises three different ways (unknown key, a malformed name, a folder such as
    ``America``), and all of them mean the same thing to a caller: the name is not usable.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _decimal_places(currencies: Any) -> tuple[tuple[str, int], ...]:
    """``decimal_place`` of every currency row that has a usable one; others fall back to ISO 4217."""
    found = []
    for row in currencies or []:
        try:
            places = int(str(row["decimal_place"]).strip())
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= places <= MAX_DECIMAL_PLACES:
            found.append((str(row["code"]), places))
    return tuple(found)


def unescape(value: Any) -> str:
    """OpenCart stores form text HTML-escaped (``Apple Cinema 30&quot;``): undo that exactly once."""
    return html.unescape("" if value is None else str(value))


class BridgeClient:
    """Signed calls to ``storelink-bridge.php`` on one store."""

    def __init__(
        self,
        http: StoreHttp,
        api_username: str,
        api_key: str,
        *,
        bridge_path: str = BRIDGE_FILE_NAME,
    ) -> None:
        self.http = http
        self.api_username = api_username
        self.api_key = api_key
        self.bridge_path = bridge_path.lstrip("/")
        self._info: BridgeInfo | None = None
        #: the version the bridge file stated on its last reply (``X-Storelink-Bridge``)
        self.served_version = ""

    # -- transport -----------------------------------------------------------------------------------

    def call(
        self, method: str, action: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """The bridge's raw JSON reply to one action (diagnostics, and tests comparing replies)."""
        return self._call(method, action, params, body)

    def _call(
        self,
        method: str,
        action: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        *,
        retry: bool | None = None,
    ) -> dict[str, Any]:
        """One bridge action; retried (re-signed each time) when it is safe to repeat.

        Timeouts and 5xx are retried only for reads: a write may have happened. A 429 (or a 503 with
        ``Retry-After``) is a refusal before anything ran, so any action is sent again after a short
        wait, the way :class:`StoreHttp` does for idempotent calls; a long wait goes back to the
        scheduler as :class:`RateLimited`.
        """
        if retry is None:
            retry = method == "GET"
        attempts = self.http.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._call_once(method, action, params, body)
            except RateLimited as exc:
                if attempt == attempts or exc.retry_after > MAX_INLINE_RETRY_AFTER:
                    raise
                # the store's gate holds the next attempt back until the Retry-After has passed
            except TransientError:
                if not retry or attempt == attempts:
                    raise
                self.http.sleep(self.http.backoff * (2 ** (attempt - 1)))
        raise AssertionError("unreachable")

    def _call_once(
        self, method: str, action: str, params: Mapping[str, Any] | None, body: Any
    ) -> dict[str, Any]:
        pairs = [("action", action)] + [(k, str(v)) for k, v in (params or {}).items() if v is not None]
        query = canonical_query(pairs)
        content = (
            b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        )
        url = self.http.url(self.bridge_path)
        path = urlsplit(url).path or "/"
        timestamp = str(int(time.time()))
        nonce = secrets.token_urlsafe(24)
        signature = sign_request(
            self.api_key, method, path, query, self.api_username, timestamp, nonce, content
        )
        headers = {
            "Accept": "application/json",
            "X-Storelink-User": quote(self.api_username, safe=""),
            "X-Storelink-Timestamp": timestamp,
            "X-Storelink-Nonce": nonce,
            "X-Storelink-Signature": signature,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(
                method, f"{url}?{query}", content=content or None, headers=headers, idempotent=False
            )
        except TransientError as exc:
            raise self._explain_server_error(exc) from None
        self.served_version = response.headers.get("X-Storelink-Bridge", "").strip()
        return self._decode(response, action)

    def _explain_server_error(self, exc: TransientError) -> ConnectorError:
        """A 5xx from the bridge carries its own code (``store_db_unavailable`` ...): keep it."""
        try:
            data = parse_json_lenient(exc.raw or "")
        except ValueError:
            return exc
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("code"):
            return TransientError(
                f"The store bridge reported a server problem: {error.get('message', '')}",
                code=str(error["code"]),
                raw=exc.raw,
                status_code=exc.status_code,
            )
        return exc

    def _decode(self, response: httpx.Response, action: str) -> dict[str, Any]:
        raw = self.http.mask(response.text[:2000])
        status = response.status_code
        try:
            data = parse_json_lenient(response.text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("ok") is False and isinstance(data.get("error"), dict):
            raise self._bridge_error(data["error"], status, raw, action)
        if status == 404 or (status in (401, 403) and data is None):
            raise PermanentError(
                f"Storelink's bridge file was not found at {self.http.url(self.bridge_path)} (HTTP "
                f"{status}). "
                f"Download {BRIDGE_FILE_NAME} from Storelink and upload it to your store's folder, next to "
                "index.php and config.php.",
                code="bridge_missing",
                raw=raw,
                status_code=status,
            )
        if data is None:
            kind = "an HTML page" if "<html" in response.text[:1000].lower() else "an unreadable reply"
            raise ProtocolError(
                f"The store answered with {kind} instead of the bridge's JSON (HTTP {status}). If this keeps "
                f"happening, check that {BRIDGE_FILE_NAME} is uploaded next to index.php.",
                code="not_bridge",
                raw=raw,
                status_code=status,
            )
        if not isinstance(data, dict) or data.get("ok") is not True or not 200 <= status < 300:
            if isinstance(data, dict) and "bridge_version" in data and "ok" not in data:
                raise AuthError(
                    "The bridge did not see Storelink's signature headers; a proxy or the web server may be "
                    "removing X-Storelink-* headers.",
                    code="auth_required",
                    raw=raw,
                    status_code=status,
                )
            raise ProtocolError(
                f"The store bridge answered '{action}' with something unexpected (HTTP {status}).",
                code="bad_reply",
                raw=raw,
                status_code=status,
            )
        return data

    def _bridge_error(self, error: Mapping[str, Any], status: int, raw: str, action: str) -> ConnectorError:
        code = str(error.get("code", "error"))
        message = str(error.get("message", ""))
        if code == "ip_not_allowed":
            ip = str(error.get("ip", "?"))
            return AuthError(
                f"Your store does not accept Storelink's address {ip}. In the OpenCart admin open System > "
                f"Users > API, edit the API user '{self.api_username}', and add {ip} on the IP addresses "
                "tab.",
                code=code,
                raw=raw,
                status_code=status,
            )
        if code == "clock_skew":
            skew = int(error.get("skew_seconds", 0) or 0)
            return AuthError(
                f"The store server's clock is {abs(skew)} seconds {'behind' if skew > 0 else 'ahead of'} "
                "Storelink's; the bridge refuses requests more than 5 minutes off. Ask your host to sync the "
                "server clock (NTP).",
                code=code,
                raw=raw,
                status_code=status,
            )
        if code in AUTH_CODES:
            words = {
                # The bridge says nothing more to a request it could not verify, so the seller is told
                # everything that can cause it, the key first (a key that works would have reached
                # the specific answers: clock, disabled user, IP list).
                "unauthorized": f"The store bridge refused Storelink's key: the API user "
                f"'{self.api_username}' and the key entered in Storelink must match an API user under "
                "System > Users > API (copy the key again and reauthorise). If they do, the bridge could "
                "not check them: the store's database may be down, or storelink-bridge.php is not in the "
                "folder that holds the store's config.php.",
                "bad_signature": f"The API key does not match the OpenCart API user '{self.api_username}'. "
                "Copy the key again from System > Users > API and reauthorise.",
                "unknown_user": f"The store has no API user named '{self.api_username}' (System > Users > "
                "API).",
                "user_disabled": f"The OpenCart API user '{self.api_username}' is disabled; enable it under "
                "System > Users > API.",
                "auth_required": "The bridge did not receive Storelink's signature headers.",
            }
            return AuthError(words[code], code=code, raw=raw, status_code=status)
        if code == "nonce_reused":
            return TransientError(
                "The store saw this request twice; it will be sent again.", code=code, raw=raw
            )
        if code == "unknown_action":
            return PermanentError(
                f"The bridge on your store is too old for '{action}'. Download {BRIDGE_FILE_NAME} from "
                "Storelink again and replace the file on your store.",
                code="bridge_outdated",
                raw=raw,
                status_code=status,
            )
        if status >= 500:
            return TransientError(
                f"The store bridge reported a server problem: {message}", code=code, raw=raw
            )
        if code in ("invalid_input", "bad_json", "bad_request", "method_not_allowed"):
            return ProtocolError(f"The bridge refused Storelink's request: {message}", code=code, raw=raw)
        return PermanentError(message or f"The bridge refused the request ({code}).", code=code, raw=raw)

    # -- store facts -----------------------------------------------------------------------------------

    def info(self) -> BridgeInfo:
        data = self._call("GET", "info")
        try:
            info = BridgeInfo(
                bridge_version=str(data["bridge_version"]),
                opencart_version=str(data.get("opencart_version") or ""),
                schema_family=str(data["schema_family"]),
                currency=str(data["currency"]),
                currencies=tuple(str(c["code"]) for c in data.get("currencies", []) if c.get("status", True)),
                prices_include_tax=bool(data.get("config_tax")),
                timezone=str(data.get("timezone") or "UTC"),
                languages=tuple(str(lang["code"]) for lang in data.get("languages", [])),
                stores=tuple((int(s["store_id"]), unescape(s.get("name"))) for s in data.get("stores", [])),
                server_time=str(data.get("server_time") or ""),
                decimal_places=_decimal_places(data.get("currencies")),
                processing_status_ids=tuple(str(int(i)) for i in data.get("processing_status_ids") or ()),
                complete_status_ids=tuple(str(int(i)) for i in data.get("complete_status_ids") or ()),
                default_order_status_id=str(data.get("default_order_status_id") or ""),
                features=tuple(str(f) for f in data.get("features") or ()),
                php_timezone=str(data.get("php_timezone") or ""),
                database_utc_offset=(
                    int(data["database_utc_offset"]) if data.get("database_utc_offset") is not None else None
                ),
                database_time_zone=str(data.get("database_time_zone") or ""),
                dates_written_in=str(data.get("dates_written_in") or ""),
                raw=data,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ProtocolError(
                "The bridge's store facts are incomplete.", code="bad_reply", raw=str(data)[:2000]
            ) from None
        if version_tuple(info.bridge_version) < version_tuple(MIN_BRIDGE_VERSION):
            raise PermanentError(
                f"The bridge on your store is version {info.bridge_version}; Storelink needs "
                f"{MIN_BRIDGE_VERSION} or newer. Download {BRIDGE_FILE_NAME} again and replace the file.",
                code="bridge_outdated",
            )
        self._info = info
        return info

    def _store_info(self) -> BridgeInfo:
        return self._info or self.info()

    def _zone(self) -> ZoneInfo:
        # An unknown zone is read as UTC; the connector's test_connection warns the seller about it.
        return store_zone(self._store_info().timezone) or ZoneInfo("UTC")

    def _to_utc(self, local: Any) -> datetime | None:
        try:
            # the store writes naive local times; its zone is applied on the next line
            naive = datetime.strptime(str(local), "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007
        except ValueError:
            return None
        return naive.replace(tzinfo=self._zone()).astimezone(UTC)

    def statuses(self) -> tuple[StoreStatus, ...]:
        """The store's status list, each marked with whether it closes an order (see ``statuses.py``)."""
        data = self._call("GET", "statuses")
        rules = self._store_info().status_rules
        found = []
        for row in data["statuses"]:
            code, name = str(row["order_status_id"]), unescape(row["name"])
            found.append(StoreStatus(code=code, name=name, closes_order=rules.closes(code, name)))
        return tuple(found)

    # -- orders ----------------------------------------------------------------------------------------

    def fetch_orders(
        self,
        checkpoint: str | None,
        *,
        lookback_days: int,
        import_statuses: Sequence[str],
        page_size: int = 100,
    ) -> Iterator[OrderPage]:
        """Every order changed after ``checkpoint`` (or within ``lookback_days``), page by page.

        "Order statuses to import" decides which orders are *first* downloaded, never which changes
        of a known order arrive: the bridge is asked (``match=ever``) for orders changed since the
        checkpoint that are in one of those statuses now *or were in one at any time* (their history
        says so) — exactly the orders Storelink may hold, whatever status they moved to (cancelled,
        shipped, refunded). An order that never was in an import status is not returned, so nothing
        outside the seller's choice is created. The statuses ever imported are kept in the checkpoint,
        so taking a status off the list later does not hide changes of orders imported with it.
        Bridges older than 1.1.0 ignore ``match`` and filter on the current status only (the
        connector's test connection says so).

        The checkpoint is the bridge's cursor (change time, order id) in a small JSON document; each
        page's checkpoint is safe to store once that page is saved.
        """
        page_size = max(1, min(int(page_size), MAX_ORDER_PAGE_SIZE))
        cursor, followed = self._position(checkpoint, import_statuses)
        params: dict[str, Any] = {"limit": page_size, **self._status_filter(followed)}
        if cursor is None:
            info = self._store_info()
            try:
                store_now = datetime.strptime(info.server_time, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - store time
            except ValueError:
                store_now = datetime.now(self._zone()).replace(tzinfo=None)
            since = (store_now - timedelta(days=lookback_days)).strftime("%Y-%m-%d %H:%M:%S")
            params["since"] = since
        else:
            params["cursor"] = cursor
        while True:
            data = self._call("GET", "orders", params)
            try:
                raw_orders = list(data["orders"])
                next_cursor = str(data["cursor"])
                has_more = bool(data["has_more"])
            except (KeyError, TypeError):
                raise ProtocolError("The bridge's order page is incomplete.", code="bad_reply") from None
            if has_more and len(raw_orders) < page_size:
                raise ProtocolError(
                    f"The bridge returned a short page ({len(raw_orders)} of {page_size}) but said more "
                    "follow.",
                    code="short_page",
                )
            if has_more and next_cursor == params.get("cursor"):
                raise ProtocolError("The bridge's order cursor did not move.", code="stuck_cursor")
            orders = tuple(self._order(raw) for raw in raw_orders)
            state: dict[str, Any] = {"v": CHECKPOINT_VERSION, "cursor": next_cursor}
            if followed:
                state["statuses"] = followed
            if _at_least(self.served_version, ORDERS_CHANGED_FROM):
                # the file answers ``orders_changed``: polls may ask it before downloading
                state["probe"] = True
            yield OrderPage(orders=orders, checkpoint=json.dumps(state))
            if not has_more:
                return
            params.pop("since", None)
            params["cursor"] = next_cursor

    def orders_changed(self, checkpoint: str, *, import_statuses: Sequence[str]) -> bool | None:
        """Whether :meth:`fetch_orders` from ``checkpoint`` would return any order, asked without
        loading one (``orders_changed``: the same query as ``orders`` with ``LIMIT 1``, one small
        reply). ``None`` when the bridge cannot answer: the checkpoint was written by a download from
        a bridge older than 1.4.0 (no request is sent), or the file was since replaced by an older
        one (``unknown_action``). The caller then downloads as before."""
        cursor, followed = self._position(checkpoint, import_statuses)
        if cursor is None or not json.loads(checkpoint).get("probe"):
            return None
        try:
            data = self._call("GET", "orders_changed", {"cursor": cursor, **self._status_filter(followed)})
        except PermanentError as exc:
            if exc.code == "bridge_outdated":
                return None
            raise
        changed = data.get("changed")
        if not isinstance(changed, bool):
            raise ProtocolError("The bridge's answer to 'anything new?' is incomplete.", code="bad_reply")
        return changed

    def _position(
        self, checkpoint: str | None, import_statuses: Sequence[str]
    ) -> tuple[str | None, list[str]]:
        """The cursor to read from and the statuses to filter on (every status ever imported)."""
        statuses = [str(s).strip() for s in import_statuses if str(s).strip()]
        if any(not s.isdigit() for s in statuses):
            raise PermanentError("Order statuses to import must be OpenCart status ids.", code="bad_setting")
        cursor, followed = self._cursor_from(checkpoint)
        # every status imported (an empty list) means no filter at all
        return cursor, sorted(set(followed) | set(statuses), key=int) if statuses else []

    @staticmethod
    def _status_filter(followed: Sequence[str]) -> dict[str, Any]:
        if not followed:
            return {}
        return {"statuses": ",".join(followed), "match": "ever"}

    @staticmethod
    def _cursor_from(checkpoint: str | None) -> tuple[str | None, list[str]]:
        """The cursor and the statuses imported so far (version 1 checkpoints kept none)."""
        if not checkpoint:
            return None, []
        try:
            data = json.loads(checkpoint)
            cursor = str(data["cursor"])
            followed = [str(int(code)) for code in data.get("statuses") or []]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise PermanentError(
                "The stored OpenCart checkpoint is unreadable.", code="bad_checkpoint"
            ) from None
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\|\d{1,10}", cursor):
            raise PermanentError("The stored OpenCart checkpoint is unreadable.", code="bad_checkpoint")
        return cursor, followed

    def get_order(self, order_id: str | int) -> Order | None:
        try:
            data = self._call("GET", "order", {"id": int(order_id)})
        except PermanentError as exc:
            if exc.code == "order_not_found":
                return None
            raise
        return self._order(data["order"])

    def history(self, order_id: str | int) -> list[dict[str, Any]]:
        return self.order_history(order_id)[1]

    def order_history(self, order_id: str | int) -> tuple[str, list[dict[str, Any]]]:
        """The order's current status and its history rows, from one read.

        A shipment needs both: a partial one keeps the current status, and the rows say whether an
        earlier attempt already wrote it.
        """
        data = self._call("GET", "order", {"id": int(order_id)})
        order = data["order"]
        rows = [
            {
                "order_status_id": str(row["order_status_id"]),
                "comment": unescape(row.get("comment")),
                "notify": bool(row.get("notify")),
                "date_added": self._to_utc(row.get("date_added")),
            }
            for row in order.get("history", [])
        ]
        return str(order.get("order_status_id", "")).strip(), rows

    def add_history(
        self, order_id: str | int, order_status_id: str | int, comment: str, notify: bool
    ) -> None:
        """Add an order history row and set the order's status (not retried: it is not idempotent)."""
        self._call(
            "POST",
            "add_history",
            body={
                "order_id": int(order_id),
                "order_status_id": int(order_status_id),
                "comment": comment,
                "notify": bool(notify),
            },
        )

    def _order(self, raw: Mapping[str, Any]) -> Order:
        try:
            return self._map_order(raw)
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise ProtocolError(
                f"The bridge sent an order Storelink cannot read ({type(exc).__name__}: {exc}).",
                code="bad_order",
                raw=json.dumps(raw)[:4000],
            ) from None

    def _order_time(self, raw: Mapping[str, Any], key: str) -> datetime | None:
        """An order date in UTC; None when the bridge left it out, an error when it is unreadable.

        A date that cannot be read must not become some default (1970, "now"): the order would be
        stored with a wrong date and the page's checkpoint would move past it for good.
        """
        value = raw.get(key)
        if value is None or value == "":
            return None
        converted = self._to_utc(value)
        if converted is None:
            raise ProtocolError(
                f"The bridge sent order {raw.get('order_id', '?')} with a {key} Storelink cannot read: "
                f"{str(value)[:100]!r} (expected YYYY-MM-DD HH:MM:SS).",
                code="bad_date",
                raw=json.dumps(raw, default=str)[:4000],
            )
        return converted

    def _map_order(self, raw: Mapping[str, Any]) -> Order:
        rate = Decimal(str(raw.get("currency_value") or "1"))
        if rate <= 0:
            rate = Decimal(1)
        currency = str(raw.get("currency_code") or self._store_info().currency)
        places = self._store_info().places_for(currency)

        def amount(value: Any) -> Decimal:
            # Order amounts are stored in the store's default currency; the customer paid value x rate,
            # which is rounded to the paid currency's own decimals (JPY 0, KWD 3).
            return to_decimal(Decimal(str(value or "0")) * rate, places)

        totals: dict[str, Decimal] = {}
        discount = Decimal("0.00")
        # Fees from other total modules (handling, low_order_fee, ...) have no canonical slot; like
        # X-Cart's other surcharges they count as shipping, so lines + shipping + tax - discount
        # still equals what the customer paid.
        other_charges = Decimal("0.00")
        for row in raw.get("totals", []):
            code = str(row.get("code", ""))
            value = Decimal(str(row.get("value") or "0"))
            totals[code] = totals.get(code, Decimal(0)) + value
            if code in DISCOUNT_TOTAL_CODES or (value < 0 and code not in ("tax", "total")):
                discount += -value
            elif value > 0 and code not in OWN_SLOT_TOTAL_CODES:
                other_charges += value
        lines = []
        for product in raw.get("products", []):
            options = tuple(
                (unescape(o.get("name")), unescape(o.get("value"))) for o in product.get("options", [])
            )
            value_ids = [
                int(o["product_option_value_id"])
                for o in product.get("options", [])
                if int(o.get("product_option_value_id") or 0) > 0
            ]
            base_sku = unescape(product.get("sku")) or unescape(product.get("model"))
            sku = base_sku
            variant_id = ""
            if len(value_ids) == 1:
                chosen = next(o for o in product["options"] if int(o.get("product_option_value_id") or 0) > 0)
                sku = option_sku(base_sku, unescape(chosen.get("value")))
                variant_id = str(value_ids[0])
            quantity = int(product["quantity"])
            lines.append(
                OrderLine(
                    external_line_id=str(product["order_product_id"]),
                    sku=sku,
                    name=unescape(product.get("name")),
                    quantity=quantity,
                    unit_price=amount(product.get("price")),
                    line_total=amount(product.get("total")),
                    tax=amount(Decimal(str(product.get("tax") or "0")) * quantity),
                    options=options,
                    remote_product_id=str(product.get("product_id", "")),
                    remote_variant_id=variant_id,
                )
            )
        placed = self._order_time(raw, "date_added")
        if placed is None:
            raise ProtocolError(
                f"The bridge sent order {raw.get('order_id', '?')} without its date_added.",
                code="bad_date",
                raw=json.dumps(raw, default=str)[:4000],
            )
        updated = self._order_time(raw, "change_time") or self._order_time(raw, "date_modified") or placed
        customer = raw.get("customer", {})
        status_code = str(raw["order_status_id"])
        status_name = unescape(raw.get("order_status"))
        subtotal = totals.get("sub_total")
        if subtotal is None:
            subtotal = sum((Decimal(str(p.get("total") or "0")) for p in raw.get("products", [])), Decimal(0))
        return Order(
            external_id=str(raw["order_id"]),
            number=str(raw["order_id"]),
            placed_at=placed,
            updated_at=updated,
            status_code=status_code,
            status_name=status_name,
            closed=self._store_info().status_rules.closes(status_code, status_name),
            currency=currency,
            subtotal=amount(subtotal),
            shipping=amount(totals.get("shipping", Decimal(0)) + other_charges),
            tax=amount(totals.get("tax", Decimal(0))),
            discount=amount(discount),
            total=amount(totals.get("total", Decimal(str(raw.get("total") or "0")))),
            lines=tuple(lines),
            prices_include_tax=False,
            customer_email=unescape(customer.get("email")),
            customer_name=" ".join(
                part
                for part in (unescape(customer.get("firstname")), unescape(customer.get("lastname")))
                if part
            ),
            billing_address=self._address(raw.get("payment_address", {}), customer),
            shipping_address=self._address(raw.get("shipping_address", {}), customer),
            shipping_method=unescape(raw.get("shipping_method")),
            raw=dict(raw),
        )

    @staticmethod
    def _address(raw: Mapping[str, Any], customer: Mapping[str, Any]) -> Address:
        name = " ".join(
            part for part in (unescape(raw.get("firstname")), unescape(raw.get("lastname"))) if part
        )
        return Address(
            name=name,
            company=unescape(raw.get("company")),
            line1=unescape(raw.get("address_1")),
            line2=unescape(raw.get("address_2")),
            city=unescape(raw.get("city")),
            region=unescape(raw.get("zone")),
            postcode=unescape(raw.get("postcode")),
            country_code=str(raw.get("iso_code_2") or ""),
            phone=unescape(customer.get("telephone")),
            email=unescape(customer.get("email")),
        )

    # -- products, stock, prices -------------------------------------------------------------------------

    def list_listings(self, *, use_options: bool = True) -> list[Listing]:
        """Every product (4.x variants are products of their own) and, optionally, every option value.

        Option values have no SKU in OpenCart; their listing SKU is ``<product SKU>-<value name>``.
        """
        listings: list[Listing] = []
        after = 0
        while True:
            data = self._call("GET", "products", {"after": after, "limit": PRODUCT_PAGE_SIZE})
            products = data.get("products")
            if not isinstance(products, list):
                raise ProtocolError("The bridge's product page is incomplete.", code="bad_reply")
            for product in products:
                listings.extend(self._listings(product, use_options))
            next_after = int(data.get("after", after))
            if not data.get("has_more"):
                return listings
            if next_after <= after or len(products) < PRODUCT_PAGE_SIZE:
                raise ProtocolError("The bridge's product pages did not add up.", code="short_page")
            after = next_after

    @staticmethod
    def _listings(product: Mapping[str, Any], use_options: bool) -> list[Listing]:
        product_id = str(product["product_id"])
        base_sku = unescape(product.get("sku")) or unescape(product.get("model")) or f"oc-{product_id}"
        name = unescape(product.get("name"))
        base_price = Decimal(str(product.get("price") or "0"))
        enabled = bool(product.get("status", True))
        found = [
            Listing(
                sku=base_sku,
                remote_id=product_id,
                quantity=int(product.get("quantity", 0)),
                price=base_price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                name=name,
                enabled=enabled,
            )
        ]
        if not use_options:
            return found
        for option in product.get("options", []):
            for value in option.get("values", []):
                delta = Decimal(str(value.get("price") or "0"))
                price = base_price - delta if value.get("price_prefix") == "-" else base_price + delta
                value_name = unescape(value.get("name"))
                found.append(
                    Listing(
                        sku=option_sku(base_sku, value_name),
                        remote_id=product_id,
                        remote_variant_id=str(value["product_option_value_id"]),
                        quantity=int(value.get("quantity", 0)),
                        price=price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                        name=f"{name} ({unescape(option.get('name'))}: {value_name})",
                        enabled=enabled,
                    )
                )
        return found

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Absolute quantities (negative ones are sent as 0: a store cannot show less than none)."""
        return self._push(
            "set_stock",
            updates,
            lambda update: {"quantity": max(0, int(update.quantity))},
        )

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        def price_fields(update: Any) -> dict[str, Any]:
            price = Decimal(str(update.price)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            if price < 0:
                raise ValueError("A price cannot be negative.")
            return {"price": f"{price:.4f}"}

        return self._push("set_price", updates, price_fields)

    def _push(self, action: str, updates: Sequence[Any], fields: Any) -> list[PushResult]:
        results: list[PushResult | None] = [None] * len(updates)
        batch: list[tuple[int, dict[str, Any]]] = []

        def flush() -> None:
            if not batch:
                return
            data = self._call("POST", action, body={"items": [item for _, item in batch]}, retry=True)
            replies = data.get("results")
            if not isinstance(replies, list) or len(replies) != len(batch):
                raise ProtocolError(
                    "The bridge answered a batch with the wrong number of results.", code="bad_reply"
                )
            for (position, _), reply in zip(batch, replies, strict=True):
                update = updates[position]
                error = reply.get("error") or {}
                results[position] = PushResult(
                    sku=update.sku,
                    remote_id=update.remote_id,
                    remote_variant_id=update.remote_variant_id,
                    ok=bool(reply.get("ok")),
                    error="" if reply.get("ok") else str(error.get("message", "refused by the store")),
                )
            batch.clear()

        for position, update in enumerate(updates):
            try:
                item: dict[str, Any] = {"product_id": int(update.remote_id)}
                if update.remote_variant_id:
                    item["product_option_value_id"] = int(update.remote_variant_id)
                if item["product_id"] < 1 or item.get("product_option_value_id", 1) < 1:
                    raise ValueError("ids must be positive")
                item.update(fields(update))
            except (ValueError, TypeError, InvalidOperation) as exc:
                results[position] = PushResult(
                    sku=update.sku,
                    remote_id=update.remote_id,
                    remote_variant_id=update.remote_variant_id,
                    ok=False,
                    error=f"Not sent: {exc}",
                )
                continue
            batch.append((position, item))
            if len(batch) == BATCH_SIZE:
                flush()
        flush()
        return [result for result in results if result is not None]


def option_sku(base_sku: str, value_name: str) -> str:
    """The listing SKU of an option value: ``<product SKU>-<value name>`` (OpenCart has no option SKU)."""
    return f"{base_sku}-{value_name.strip()}"


__all__ = [
    "BRIDGE_FILE_NAME",
    "BRIDGE_PHP_PATH",
    "MIN_BRIDGE_VERSION",
    "BridgeClient",
    "BridgeInfo",
    "canonical_query",
    "option_sku",
    "sign_request",
]
