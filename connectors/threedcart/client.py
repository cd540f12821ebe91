"""The one HTTP seam to 3DCart's REST API.

3DCart is not reached at the seller's domain: every store shares one API host and is selected by the
``SecureURL`` header, next to Storelink's app ``PrivateKey`` and the store's ``Token``. This module
turns 3DCart's replies into either data or a typed error, once, so the connector never looks at a
status code:

- 401/403 → :class:`AuthError` (reauthorise; or the app lacks read/write scope),
- 404 on a list → the end (3DCart answers "no match" with 404), 404 on one item → not found,
- 400 "Offset amount exceeds the total number of records" → the end of a list,
- 429 and 503 → :class:`RateLimited`; other 5xx and timeouts → :class:`TransientError`,
- HTML, empty or non-JSON bodies where JSON is due → :class:`ProtocolError` with the masked raw text,
- HTTP 200 whose body is the error array ``[{"Key": "Error", "Status": "401", "Message": …}]``
  (live stores answer errors that way too) → the same typed error as that status, or as the message
  says when the status is missing.

A client-side leaky bucket (50 requests, refilled at 2 per second — 3DCart's documented limit) is
kept per token through :class:`~connectors.http.StoreHttp`'s gate, so every connector instance of a
store in this process shares it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.base import ConnectorOptions
from connectors.errors import AuthError, PermanentError, ProtocolError, RateLimited, TransientError
from connectors.http import StoreHttp, wire_url
from connectors.threedcart.mapping import WriteResult, parse_write_results

DEFAULT_API_BASE = "https://apirest.3dcart.com/3dCartWebAPI/v2"
PRIVATE_KEY_NAME = "threedcart_private_key"
PUBLIC_KEY_NAME = "threedcart_public_key"

#: 3DCart's documented leaky bucket: 50 requests, leaking 2 per second (scope UNCONFIRMED; we
#: assume per store token, the narrowest reading that still protects the store).
BUCKET_SIZE = 50
REFILL_PER_SECOND = 2.0
#: Requests of the bucket Storelink leaves unused: the store counts a request when it arrives, we
#: when we send it, so varying latency would otherwise make a request at the very edge a 429.
BUCKET_HEADROOM = 5

#: Page-size maxima from 3DCart's docs: never ask for more (behaviour above them is UNCONFIRMED).
MAX_ORDER_PAGE = 300
MAX_PRODUCT_PAGE = 200

OFFSET_PAST_END = "offset amount exceeds"
#: Words of a refusal that blame the store address rather than the token.
_STORE_WORDS = re.compile(r"\b(store|secure ?url|url|domain)\b", re.IGNORECASE)
#: Words of an error array without a usable ``Status`` that mean the credentials were refused.
_AUTH_WORDS = re.compile(r"authori[sz]|denied|token|private ?key|credential|unauthori", re.IGNORECASE)


def store_url_hint(secure_url: str) -> str:
    """What to check when 3DCart does not know the store: the address, before any token."""
    return (
        f"check the store URL {secure_url}: it must be the store's secure address exactly as 3DCart "
        "shows it (Settings → General → Store Settings, usually https://yourstore.3dcartstores.com)"
    )


REAUTHORISE_HINT = (
    "Reauthorise Storelink in your 3DCart admin: Modules → REST API → Settings, remove Storelink's "
    "entry, add it again with Storelink's public key and click Authorize. If the token is new, the "
    "store sends it to Storelink by itself. If this keeps happening after reauthorising, Storelink's "
    "app may be missing read/write permission for this area (app scope)."
)


@dataclass(frozen=True)
class WriteReply:
    """A PUT's HTTP status and its per-item results (``206``: some items failed)."""

    status_code: int
    results: tuple[WriteResult, ...]


class ThreeDCartClient:
    """Requests to one store through 3DCart's shared API host."""

    def __init__(
        self,
        secure_url: str,
        token: str,
        *,
        options: ConnectorOptions,
        http: httpx.Client | None = None,
    ) -> None:
        private_key = str(options.app_keys.get(PRIVATE_KEY_NAME, "") or "")
        if not private_key:
            raise PermanentError(
                "Storelink's 3DCart app key is not configured on this server (operator setting "
                f"{PRIVATE_KEY_NAME}).",
                code="app_key_missing",
            )
        if not token:
            raise AuthError(
                "This 3DCart channel has no access token yet. " + REAUTHORISE_HINT, code="no_token"
            )
        self.secure_url = secure_url
        self.headers = {
            "SecureURL": wire_url(secure_url),
            "PrivateKey": private_key,
            "Token": token,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        digest = hashlib.sha256(f"{secure_url}\n{token}".encode()).hexdigest()[:16]
        self.http = StoreHttp(
            (options.api_base or DEFAULT_API_BASE).rstrip("/"),
            platform="threedcart",
            client=http,
            timeout=options.timeout,
            max_retries=options.max_retries,
            backoff=options.backoff,
            max_in_flight=options.max_in_flight,
            rate_per_second=REFILL_PER_SECOND,
            burst=BUCKET_SIZE - BUCKET_HEADROOM,
            allow_private_hosts=options.allow_private_hosts,
            allowed_ports=options.allowed_ports,
            secrets=[token, private_key],
            gate_key=f"threedcart:token:{digest}",
            gate_url=options.gate_url,
            gate_lease_seconds=options.gate_lease_seconds,
            gate_prefix=options.gate_prefix,
        )

    def close(self) -> None:
        self.http.close()

    # -- reads -------------------------------------------------------------------------------------

    def get_list(self, path: str, params: Mapping[str, Any] | None = None, *, what: str) -> list[Any]:
        """A list endpoint's page; ``[]`` when 3DCart says there is nothing (404) or no more (400)."""
        response = self._send("GET", path, params=params)
        if response.status_code == 404:
            return []
        if response.status_code == 400 and self._is_offset_past_end(response):
            return []
        self._raise_for_status(response, what=what)
        body = self._json(response, what=what)
        error = _error_array(body)
        if error is not None:
            status, message = error
            if status == 404 or OFFSET_PAST_END in message.lower():
                return []
            self._raise_error_array(response, status, message, what=what)
        if not isinstance(body, list):
            raise ProtocolError(
                f"3DCart answered the {what} with something that is not a list (HTTP "
                f"{response.status_code}); Storelink stops rather than skip data.",
                code="not_a_list",
                raw=self.http.mask(response.text[:2000]),
                status_code=response.status_code,
            )
        return body

    def iterate_pages(
        self, path: str, params: Mapping[str, Any], *, limit: int, what: str, start_offset: int = 1
    ) -> Iterator[tuple[int, list[Any]]]:
        """``(offset, items)`` per page, 1-based offsets, until a short page, 404 or offset-past-end."""
        offset = max(1, start_offset)
        while True:
            items = self.get_list(path, {**params, "limit": limit, "offset": offset}, what=what)
            yield offset, items
            if len(items) < limit:
                return
            offset += len(items)

    def count(self, path: str, params: Mapping[str, Any], *, what: str) -> int:
        """``countonly=1`` → ``{"TotalCount": n}``; 404 means zero."""
        response = self._send("GET", path, params={**params, "countonly": 1})
        if response.status_code == 404:
            return 0
        self._raise_for_status(response, what=what)
        body = self._json(response, what=what)
        error = _error_array(body)
        if error is not None:
            if error[0] == 404:
                return 0
            self._raise_error_array(response, *error, what=what)
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        value = None
        if isinstance(body, Mapping):
            value = next((v for k, v in body.items() if str(k).lower() == "totalcount"), None)
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ProtocolError(
                f"3DCart answered the {what} count without a TotalCount.",
                code="bad_count",
                raw=self.http.mask(response.text[:2000]),
                status_code=response.status_code,
            ) from None

    def get_one(self, path: str, *, what: str) -> dict[str, Any]:
        """A single resource; 3DCart wraps it in an array of one. 404 → :class:`PermanentError`."""
        response = self._send("GET", path)
        if response.status_code == 404:
            raise PermanentError(f"3DCart has no {what}.", code="not_found", status_code=404)
        self._raise_for_status(response, what=what)
        body = self._json(response, what=what)
        error = _error_array(body)
        if error is not None:
            if error[0] == 404:
                raise PermanentError(f"3DCart has no {what}.", code="not_found", status_code=404)
            self._raise_error_array(response, *error, what=what)
        if isinstance(body, list) and len(body) == 1 and isinstance(body[0], Mapping):
            return dict(body[0])
        if isinstance(body, Mapping):
            return dict(body)
        raise ProtocolError(
            f"3DCart answered the {what} with {len(body) if isinstance(body, list) else 'no'} records "
            "where one was expected.",
            code="not_one",
            raw=self.http.mask(response.text[:2000]),
            status_code=response.status_code,
        )

    # -- writes ------------------------------------------------------------------------------------

    def put(self, path: str, body: Any, *, what: str, resend_on_lost_reply: bool = True) -> WriteReply:
        """A PUT and its per-item results. 200, 206 and a 400/404 that carries per-item results all
        come back as a :class:`WriteReply`; a bare 404 is "not found".

        ``resend_on_lost_reply=False`` for a write the caller recognises on the store afterwards (a
        shipment carrying Storelink's reference): a lost reply then raises instead of sending the
        write again blind, and the caller's read-before-write decides.
        """
        response = self._send("PUT", path, json_body=body, idempotent=None if resend_on_lost_reply else False)
        status = response.status_code
        if status in (401, 403):
            self._raise_for_status(response, what=what)
        if status in (400, 404, 409, 422) or 200 <= status < 300:
            results = self._write_results(response) if response.text.strip() else None
            if results is not None and not _is_bare_error(results):
                return WriteReply(status, tuple(results))
            if results and 200 <= status < 300:
                self._raise_error_array(
                    response, results[0].status, results[0].message, what=what, write=True
                )
            if 200 <= status < 300:
                raise ProtocolError(
                    f"3DCart accepted the {what} but did not say what it updated (HTTP {status}).",
                    code="no_results",
                    raw=self.http.mask(response.text[:2000]),
                    status_code=status,
                )
            if status == 404:
                raise PermanentError(f"3DCart has no {what}.", code="not_found", status_code=404)
            message = self.http.mask(results[0].message if results else _plain_message(response))
            raise PermanentError(
                f"3DCart refused the {what}: {message or f'HTTP {status}'}",
                code="rejected",
                raw=self.http.mask(response.text[:2000]),
                status_code=status,
            )
        self._raise_for_status(response, what=what)
        raise ProtocolError(  # pragma: no cover - _raise_for_status raises for every other status
            f"3DCart answered the {what} with HTTP {status}.", status_code=status
        )

    # -- plumbing ----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        try:
            return self.http.request(
                method,
                path,
                params=dict(params) if params else None,
                json_body=json_body,
                headers=self.headers,
                idempotent=idempotent,
            )
        except TransientError as exc:
            if exc.status_code == 503:
                raise RateLimited(
                    "3DCart is busy (HTTP 503); Storelink will try again shortly.",
                    retry_after=5.0,
                    raw=exc.raw,
                    status_code=503,
                ) from None
            raise

    def _raise_for_status(self, response: httpx.Response, *, what: str) -> None:
        status = response.status_code
        raw = self.http.mask(response.text[:2000])
        if status in (401, 403):
            self._raise_auth(_plain_message(response), raw=raw, status=status, what=what)
        if status == 429:  # StoreHttp raises these itself; kept for completeness
            raise RateLimited("3DCart is rate limiting Storelink.", retry_after=1.0, raw=raw, status_code=429)
        if status >= 500:
            raise TransientError(
                f"3DCart had an internal error (HTTP {status}).", raw=raw, status_code=status
            )
        if status >= 400:
            message = self.http.mask(_plain_message(response))
            raise PermanentError(
                f"3DCart refused the {what} (HTTP {status}){': ' + message if message else ''}.",
                code="rejected",
                raw=raw,
                status_code=status,
            )
        if status >= 300:
            raise ProtocolError(
                f"3DCart redirected the {what} (HTTP {status}); check the API address.",
                code="redirect",
                raw=raw,
                status_code=status,
            )

    def _raise_error_array(
        self,
        response: httpx.Response,
        status: int | None,
        message: str,
        *,
        what: str,
        write: bool = False,
    ) -> None:
        """An error array that came with a success status: raise what that status (or, without
        one, the message) means, so no caller mistakes it for data."""
        raw = self.http.mask(response.text[:2000])
        text = self.http.mask(message)[:300]
        said = f": {text}" if text else ""
        if status in (401, 403) or (status in (None, 200) and _AUTH_WORDS.search(message)):
            self._raise_auth(message, raw=raw, status=status, what=what)
        if status in (429, 503):
            retry_after = _retry_after(response)
            raise RateLimited(
                f"3DCart is busy or rate limiting Storelink{said}.",
                retry_after=retry_after,
                raw=raw,
                status_code=status,
            )
        if status is not None and status >= 500:
            raise TransientError(f"3DCart had an internal error{said}.", raw=raw, status_code=status)
        raise PermanentError(
            f"3DCart refused the {what}{said or f' (status {status})'}",
            code="rejected",
            raw=raw,
            status_code=status,
        )

    def _raise_auth(self, message: str, *, raw: str, status: int | None, what: str) -> None:
        """A refusal: of the store address when 3DCart's words name it, else of the credentials."""
        text = self.http.mask(message)[:300]
        if text and _STORE_WORDS.search(text):
            raise AuthError(
                f"3DCart does not accept the store address ({text}): "
                + store_url_hint(self.secure_url)
                + ". If it is right, reauthorise Storelink in your 3DCart admin (Modules → REST API).",
                code="store_unknown",
                raw=raw,
                status_code=status,
            )
        raise AuthError(
            f"3DCart refused Storelink's credentials for the {what} "
            f"({f'HTTP {status}' if status else 'error reply'}{': ' + text if text else ''}). "
            + REAUTHORISE_HINT,
            code="unauthorised",
            raw=raw,
            status_code=status,
        )

    def _json(self, response: httpx.Response, *, what: str) -> Any:
        if not response.text.strip():
            raise ProtocolError(
                f"3DCart answered the {what} with an empty body (HTTP {response.status_code}).",
                code="empty",
                status_code=response.status_code,
            )
        return self.http.json(response, what=what)

    def _write_results(self, response: httpx.Response) -> list[WriteResult] | None:
        try:
            return parse_write_results(self.http.json(response, what="update"))
        except (ValueError, ProtocolError):
            if 200 <= response.status_code < 300:
                raise ProtocolError(
                    f"3DCart answered an update with something Storelink cannot read "
                    f"(HTTP {response.status_code}).",
                    code="bad_write_reply",
                    raw=self.http.mask(response.text[:2000]),
                    status_code=response.status_code,
                ) from None
            return None

    @staticmethod
    def _is_offset_past_end(response: httpx.Response) -> bool:
        return OFFSET_PAST_END in response.text.lower()


def _error_array(body: Any) -> tuple[int | None, str] | None:
    """``(status, message)`` when ``body`` is 3DCart's error array, else ``None``."""
    if not isinstance(body, list) or not body:
        return None
    try:
        results = parse_write_results(body)
    except ValueError:
        return None
    if not _is_bare_error(results):
        return None
    return results[0].status, results[0].message


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "") or 5.0))
    except ValueError:
        return 5.0


def _is_bare_error(results: list[WriteResult]) -> bool:
    """``[{"Key": "Error", ...}]``: the whole request failed, not one item."""
    return bool(results) and all(result.key.lower() == "error" for result in results)


def _plain_message(response: httpx.Response) -> str:
    """The ``Message`` of a 3DCart error body (array or object), else nothing."""
    try:
        from connectors.http import parse_json_lenient

        body = parse_json_lenient(response.text)
    except ValueError:
        return ""
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        for key, value in body.items():
            if str(key).lower() == "message" and value:
                return str(value)[:300]
    return ""
