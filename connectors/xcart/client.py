"""The one HTTP seam to an X-Cart store, for both of its APIs.

X-Cart 5.0–5.4 talks through the "REST API" add-on: every call goes to the admin script
(``admin.php?target=RESTAPI&_key=…&_path=…``) and its failures are terse — an *empty* body with
``Content-type: text/html`` and, at most, a reason in the ``X-REST-Error`` header. X-Cart 5.5+ has
a built-in API Platform API under ``/api`` with an ``X-Auth-Token`` header and JSON errors. Both
clients here turn every reply into either decoded JSON (``None`` for the add-on's ``null`` = "no
such id") or one typed :mod:`connectors.errors` error with the raw reply kept, key masked, so the
connector above never looks at a status code.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from connectors.base import ConnectorOptions
from connectors.errors import AuthError, PermanentError, ProtocolError
from connectors.http import StoreHttp, parse_json_lenient

log = logging.getLogger(__name__)

ADMIN_SCRIPT = "admin.php"
ADDON_KEY_HELP = "copy 'API key (read/write)' from My addons > REST API"
BUILTIN_TOKEN_HELP = "copy the read/write API token from Settings > API in your X-Cart admin"
#: What PHP prints before a JSON body when a store runs with display_errors on.
_PHP_NOISE = re.compile(
    r"^(?:\s|<br\s*/?>|<b>)*(?:PHP )?(?:Notice|Warning|Deprecated|Strict Standards)\b", re.I
)
#: A ``Date`` header: the web server's form (``… GMT``) or the form the REST API add-on prints
#: itself with PHP's ``date('r')`` (``Wed, 02 Dec 2026 10:00:00 +0000``, the zone PHP is set to).
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2} (?:GMT|UTC|[+-]\d{4})"
)


@dataclass(frozen=True)
class Reply:
    """A decoded success: the JSON value, the store's clock and the add-on's row count."""

    data: Any
    store_time: datetime | None
    result_count: int | None


def store_time_from(response: httpx.Response) -> datetime | None:
    """The store's clock from the ``Date`` header (the last one, should a proxy add a second)."""
    found = _HTTP_DATE.findall(response.headers.get("Date", ""))
    if not found:
        return None
    try:
        return parsedate_to_datetime(found[-1]).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def form_pairs(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Flatten nested dicts/lists into PHP bracket fields: ``model[trackingNumbers][0][value]``.

    Form encoding is the one body format every add-on version (5.1–5.4) parses; JSON bodies only
    work on 5.4, so they are never used.
    """
    if isinstance(value, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs.extend(form_pairs(f"{prefix}[{key}]", item))
        return pairs
    if isinstance(value, (list, tuple)):
        pairs = []
        for index, item in enumerate(value):
            pairs.extend(form_pairs(f"{prefix}[{index}]", item))
        return pairs
    if isinstance(value, bool):
        return [(prefix, "1" if value else "0")]
    if isinstance(value, Decimal):
        return [(prefix, format(value, "f"))]
    if value is None:
        return [(prefix, "")]
    return [(prefix, str(value))]


def admin_url_of(store_url: str) -> tuple[str, str]:
    """Split the website end point into (site base, admin script URL).

    A store may rename ``admin.php``; a seller who pastes the full admin URL (``…/myadmin.php``)
    gets that script, anyone else ``<website>/admin.php``.
    """
    text = store_url.strip().rstrip("/")
    parts = urlsplit(text)
    path = parts.path
    if path.lower().endswith(".php"):
        base_path = path.rsplit("/", 1)[0]
        base = f"{parts.scheme}://{parts.netloc}{base_path}"
        return base, f"{parts.scheme}://{parts.netloc}{path}"
    base = f"{parts.scheme}://{parts.netloc}{path}"
    return base, f"{base}/{ADMIN_SCRIPT}"


def _decode(http: StoreHttp, response: httpx.Response, what: str) -> Any:
    """Strict JSON, tolerating only PHP notices printed before it.

    A truncated reply must never decode to some inner fragment of itself, so the lenient parser is
    used only when the body visibly starts with PHP noise.
    """
    text = response.text
    if not text.strip():
        raise ProtocolError(
            f"X-Cart answered the {what} with an empty reply (HTTP {response.status_code}).",
            code="empty_reply",
            raw=_raw(http, response),
            status_code=response.status_code,
        )
    try:
        return json.loads(text)
    except ValueError:
        pass
    if _PHP_NOISE.match(text):
        try:
            return parse_json_lenient(text)
        except ValueError:
            pass
    kind = "an HTML page" if "<html" in text[:500].lower() else "something that is not JSON"
    raise ProtocolError(
        f"X-Cart answered the {what} with {kind} (HTTP {response.status_code}); the reply may have "
        "been cut off, or the end point is not an X-Cart API.",
        code="not_json",
        raw=_raw(http, response),
        status_code=response.status_code,
    )


def _raw(http: StoreHttp, response: httpx.Response) -> str:
    """What the store said, for diagnosis: status, the headers that matter, the body; key masked."""
    lines = [f"{response.request.method} {response.request.url}", f"HTTP {response.status_code}"]
    for name in ("Content-Type", "X-REST-Error", "Location", "X-Result-Count", "Allow"):
        if name in response.headers:
            lines.append(f"{name}: {response.headers[name]}")
    lines.append("")
    lines.append(response.text[:2000])
    return http.mask("\n".join(lines))


def _forget_cookies(http: StoreHttp) -> None:
    """Every X-Cart reply sets an ``xid`` session cookie; sending it back would tie our calls to an
    X-Cart session (and its locks), so each call starts without one."""
    http.client.cookies.clear()


def _build_http(
    base_url: str, secrets: Iterable[str], options: ConnectorOptions, client: httpx.Client | None
) -> StoreHttp:
    return StoreHttp(
        base_url,
        platform="xcart",
        client=client,
        timeout=options.timeout,
        max_retries=options.max_retries,
        backoff=options.backoff,
        max_in_flight=options.max_in_flight,
        allow_private_hosts=options.allow_private_hosts,
        allowed_ports=options.allowed_ports,
        secrets=secrets,
        gate_url=options.gate_url,
        gate_lease_seconds=options.gate_lease_seconds,
        gate_prefix=options.gate_prefix,
    )


class AddonClient:
    """X-Cart 5.x through the REST API add-on (``admin.php?target=RESTAPI``)."""

    flavour = "addon"

    def __init__(
        self,
        store_url: str,
        api_key: str,
        *,
        options: ConnectorOptions,
        client: httpx.Client | None = None,
    ) -> None:
        base, self.admin_url = admin_url_of(store_url)
        self.api_key = api_key
        self.http = _build_http(base, [api_key], options, client)
        #: set once a read with this key worked, so a later 403 on a write can only mean "read-only"
        self.key_reads = False
        #: set when this store took a write's key only from the address (see :meth:`write`)
        self.write_key_in_url = False

    def close(self) -> None:
        self.http.close()

    def _query(
        self, path: str, schema: str | None, cnd: Sequence[tuple[str, Any]], *, key: bool = True
    ) -> list[tuple[str, str]]:
        query = [("target", "RESTAPI"), ("_path", path)]
        if key:
            query.insert(1, ("_key", self.api_key))
        if schema:
            query.append(("_schema", schema))
        query.extend((name, str(value)) for name, value in cnd)
        return query

    def get(self, path: str, *, schema: str | None = None, cnd: Sequence[tuple[str, Any]] = ()) -> Reply:
        """Read ``_path`` (``order``, ``order/12`` …); ``cnd`` are ``(_cnd[...] name, value)`` pairs."""
        response = self.http.request("GET", self.admin_url, params=self._query(path, schema, cnd))
        _forget_cookies(self.http)
        reply = self._reply(response, write=False, what=f"read of {path}")
        self.key_reads = True
        return reply

    def write(self, method: str, path: str, model: Any = None, *, idempotent: bool = True) -> Reply:
        """PUT/POST ``model`` as form-encoded bracket fields; ``model=None`` sends an empty body.

        ``idempotent=False`` for writes that add rows (a tracking number), so a lost reply is never
        answered by sending the same row twice: the caller re-reads and decides.
        """
        if method not in ("PUT", "POST"):
            raise ValueError("the X-Cart connector only ever PUTs or POSTs")
        fields = form_pairs("model", model) if model is not None else []
        response = self._send(method, path, fields, idempotent, key_in_url=self.write_key_in_url)
        if response.status_code == 403 and not self.write_key_in_url:
            # Every add-on read (5.1, 5.2, 5.4) parses a real PUT's form body, and PHP a POST's,
            # into the request before it compares ``_key``, so the key travels in the body and stays
            # out of the web server's access log. That is read from the add-on's code, not seen on a
            # live store; a store that still refuses gets the key in the address once. A 403 applied
            # nothing, so sending again cannot write twice.
            retry = self._send(method, path, fields, idempotent, key_in_url=True)
            if retry.status_code != 403:
                self.write_key_in_url = True
                log.warning("xcart.write_key_in_url store=%s", self.http.mask(self.admin_url))
            response = retry
        return self._reply(response, write=True, what=f"update of {path}")

    def _send(
        self, method: str, path: str, fields: list[tuple[str, str]], idempotent: bool, *, key_in_url: bool
    ) -> httpx.Response:
        body = fields if key_in_url else [("_key", self.api_key), *fields]
        response = self.http.request(
            method,
            self.admin_url,
            params=self._query(path, None, (), key=key_in_url),
            content=urlencode(body).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            idempotent=idempotent,
        )
        _forget_cookies(self.http)
        return response

    def _reply(self, response: httpx.Response, *, write: bool, what: str) -> Reply:
        status = response.status_code
        if 200 <= status < 300:
            data = _decode(self.http, response, what)
            count_header = response.headers.get("X-Result-Count", "").strip()
            count = int(count_header) if count_header.isdigit() else None
            return Reply(data, store_time_from(response), count)
        raw = _raw(self.http, response)
        reason = response.headers.get("X-REST-Error", "").strip()
        suffix = f" (X-Cart said: {reason})" if reason else ""
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            if "target=login" in location:
                raise ProtocolError(
                    "X-Cart answered with its admin login page: the REST API add-on is not installed or "
                    "is disabled (My addons > REST API), or the website end point is not the X-Cart "
                    "admin.",
                    code="addon_missing",
                    raw=raw,
                    status_code=status,
                )
            if location.startswith("https://") and self.admin_url.startswith("http://"):
                raise ProtocolError(
                    "The store only answers over https://: change the website end point to https://.",
                    code="https_redirect",
                    raw=raw,
                    status_code=status,
                )
            raise ProtocolError(
                f"X-Cart redirected the {what} elsewhere (HTTP {status}); check the website end point.",
                code="redirect",
                raw=raw,
                status_code=status,
            )
        if status == 403 and write:
            if self.key_reads:
                message = (
                    "X-Cart refused to write with this API key: the key is read-only ('API key (only "
                    f"read)'); {ADDON_KEY_HELP}."
                )
            else:
                message = (
                    "X-Cart refused to write with this API key: the key is read-only or wrong; "
                    f"{ADDON_KEY_HELP}."
                )
            raise AuthError(message + suffix, code="read_only_key", raw=raw, status_code=status)
        if status in (401, 403):
            raise AuthError(
                f"X-Cart refused the API key: {ADDON_KEY_HELP}.{suffix}",
                code="bad_key",
                raw=raw,
                status_code=status,
            )
        if status == 404:
            raise ProtocolError(
                "X-Cart answered 404: the REST API add-on is not installed or the end point is wrong "
                "(check the website end point).",
                code="addon_missing",
                raw=raw,
                status_code=status,
            )
        if status == 400:
            raise PermanentError(
                f"X-Cart rejected the {what}: {reason or 'no reason given'}.",
                code="rejected",
                raw=raw,
                status_code=status,
            )
        raise PermanentError(
            f"X-Cart answered the {what} with HTTP {status}.{suffix}",
            code=f"http_{status}",
            raw=raw,
            status_code=status,
        )


class BuiltinClient:
    """X-Cart 5.5+ through its built-in API (``/api/...``, header ``X-Auth-Token``)."""

    flavour = "builtin"

    def __init__(
        self,
        store_url: str,
        token: str,
        *,
        options: ConnectorOptions,
        client: httpx.Client | None = None,
    ) -> None:
        base, _ = admin_url_of(store_url)
        self.api_base = f"{base}/api"
        self.token = token
        self.http = _build_http(base, [token], options, client)

    def close(self) -> None:
        self.http.close()

    @property
    def _headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token, "Accept": "application/json"}

    def get(self, path: str, params: Sequence[tuple[str, Any]] = (), *, missing_ok: bool = False) -> Reply:
        """Read ``/api/<path>``; with ``missing_ok`` a 404 is "no such item" (``data`` ``None``)."""
        response = self.http.request(
            "GET",
            f"{self.api_base}/{path.lstrip('/')}",
            params=[(name, str(value)) for name, value in params],
            headers=self._headers,
        )
        _forget_cookies(self.http)
        if missing_ok and response.status_code == 404:
            return Reply(None, store_time_from(response), None)
        return self._reply(response, write=False, what=f"read of /api/{path}")

    def put(self, path: str, body: Mapping[str, Any], *, missing_ok: bool = False) -> Reply:
        response = self.http.request(
            "PUT",
            f"{self.api_base}/{path.lstrip('/')}",
            content=json.dumps(body, default=_json_default).encode(),
            headers={**self._headers, "Content-Type": "application/json"},
        )
        _forget_cookies(self.http)
        if missing_ok and response.status_code == 404:
            return Reply(None, store_time_from(response), None)
        return self._reply(response, write=True, what=f"update of /api/{path}")

    def _reply(self, response: httpx.Response, *, write: bool, what: str) -> Reply:
        status = response.status_code
        if 200 <= status < 300:
            return Reply(_decode(self.http, response, what), store_time_from(response), None)
        raw = _raw(self.http, response)
        detail = _error_detail(response)
        suffix = f" (X-Cart said: {detail})" if detail else ""
        if status == 401:
            raise AuthError(
                f"X-Cart refused the API token: {BUILTIN_TOKEN_HELP}.{suffix}",
                code="bad_key",
                raw=raw,
                status_code=status,
            )
        if status == 403:
            if write:
                raise AuthError(
                    f"X-Cart refused to write with this API token: it is the read-only token; "
                    f"{BUILTIN_TOKEN_HELP}.{suffix}",
                    code="read_only_key",
                    raw=raw,
                    status_code=status,
                )
            raise AuthError(
                f"X-Cart refused the API token: {BUILTIN_TOKEN_HELP}.{suffix}",
                code="bad_key",
                raw=raw,
                status_code=status,
            )
        if 300 <= status < 400:
            raise ProtocolError(
                f"X-Cart redirected the {what} (HTTP {status}); check the website end point.",
                code="redirect",
                raw=raw,
                status_code=status,
            )
        if status == 404:
            raise ProtocolError(
                "X-Cart answered 404 for its built-in API: the store is older than 5.5 or the website "
                "end point is wrong.",
                code="api_missing",
                raw=raw,
                status_code=status,
            )
        if status in (400, 422):
            raise PermanentError(
                f"X-Cart rejected the {what}: {detail or 'no reason given'}.",
                code="rejected",
                raw=raw,
                status_code=status,
            )
        raise PermanentError(
            f"X-Cart answered the {what} with HTTP {status}.{suffix}",
            code=f"http_{status}",
            raw=raw,
            status_code=status,
        )


def _error_detail(response: httpx.Response) -> str:
    """The human part of an API Platform / Symfony error body, if it has one."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return ""
    if isinstance(body, Mapping):
        for key in ("hydra:description", "detail", "message", "title"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:300]
    return ""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
