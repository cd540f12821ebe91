"""The OpenCart 4.1 request signer (confirmed against a real 4.1.0.4 store).

4.1 removed the API login: every call carries ``username``, ``time`` and a ``signature`` in the query,
and the store recomputes an HMAC-SHA1 over a fixed list of lines. The subtle part is the POST body:
the store hashes *its own cleaned copy* of ``$_POST`` (every key and value passed through
``htmlspecialchars(ENT_COMPAT)`` and ``trim``, then ``http_build_query``), not the bytes we sent.
So the signer reproduces PHP's cleaning and ``urlencode`` exactly; a comment with ``&``, ``"``,
``<``, ``>``, ``~``, spaces or non-ASCII characters is where a naive signer fails.

The sandbox store checks signatures with these same functions, which is why they live here and
not inside the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus, urlsplit

from connectors.http import wire_url

#: ``trim()``'s default character list in PHP.
PHP_TRIM_CHARACTERS = " \t\n\r\0\x0b"

#: 4.1.0.4 rejects a ``time`` further than this from the store's clock (4.1.0.0–4.1.0.3 never do).
SIGNATURE_WINDOW_SECONDS = 450

SIGNED_ROUTE = "api/order"


def php_clean(value: str) -> str:
    """OpenCart's ``Request::clean`` for one string: ``htmlspecialchars(ENT_COMPAT)`` then ``trim``.

    ``&`` goes first so the entities added for the other characters are not escaped twice; the single
    quote is left alone because ENT_COMPAT only escapes double quotes.
    """
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return escaped.strip(PHP_TRIM_CHARACTERS)


def php_urlencode(value: str) -> str:
    """PHP ``urlencode``: keeps only ``A-Z a-z 0-9 - _ .``, space becomes ``+``, UTF-8 bytes as ``%XX``.

    Python's ``quote_plus`` also keeps ``~`` (RFC 3986), which PHP encodes, hence the extra step.
    """
    return quote_plus(value, safe="").replace("~", "%7E")


def php_http_build_query(pairs: Iterable[tuple[str, str]]) -> str:
    """``http_build_query`` over OpenCart's cleaned copy of a flat POST array, in the order sent."""
    return "&".join(
        f"{php_urlencode(php_clean(key))}={php_urlencode(php_clean(value))}" for key, value in pairs
    )


def body_digest(pairs: Sequence[tuple[str, str]]) -> str:
    """Hex MD5 of the cleaned POST body (``md5("")`` for an empty body)."""
    return hashlib.md5(php_http_build_query(pairs).encode("utf-8"), usedforsecurity=False).hexdigest()


def host_header(base_url: str) -> str:
    """The ``Host`` header a client sends for ``base_url``: host, plus ``:port`` when not the default.

    PHP's ``HTTP_HOST`` is that header verbatim, so the port must be signed whenever it is sent.
    """
    parts = urlsplit(wire_url(base_url))  # an international domain name goes as its xn-- form
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    if parts.port and parts.port != default_port:
        return f"{host}:{parts.port}"
    return host


def script_directory(base_url: str) -> str:
    """``rtrim(dirname(PHP_SELF), '/') . '/'``: ``/`` for a root install, ``/shop/`` for a subfolder."""
    path = urlsplit(base_url).path or "/"
    if path.endswith(".php"):
        path = path.rsplit("/", 1)[0]
    return path.rstrip("/") + "/"


def string_to_sign(
    *,
    call: str,
    username: str,
    host: str,
    path: str,
    store_id: int,
    language: str,
    currency: str,
    post_pairs: Sequence[tuple[str, str]],
    timestamp: int,
    route: str = SIGNED_ROUTE,
) -> str:
    """The lines the 4.1 store hashes, each ending with a newline (the last one too)."""
    lines = (
        route,
        call,
        username,
        host,
        path,
        str(int(store_id)),
        language,
        currency,
        body_digest(post_pairs),
        str(int(timestamp)),
    )
    return "".join(f"{line}\n" for line in lines)


def signature(key: str, message: str) -> str:
    """``base64(HMAC-SHA1(key, message))``, not yet percent-encoded (httpx encodes query values)."""
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class SignedCall:
    """Everything a signed 4.1 request needs: its query parameters and the Host header they assume."""

    params: tuple[tuple[str, str], ...]
    host: str
    timestamp: int


def sign_call(
    *,
    key: str,
    username: str,
    base_url: str,
    call: str,
    post_pairs: Sequence[tuple[str, str]],
    timestamp: int,
    store_id: int = 0,
    language: str = "en-gb",
    currency: str = "USD",
) -> SignedCall:
    """Sign one ``route=api/order&call=...`` request against the store at ``base_url``."""
    host = host_header(base_url)
    message = string_to_sign(
        call=call,
        username=username,
        host=host,
        path=script_directory(base_url),
        store_id=store_id,
        language=language,
        currency=currency,
        post_pairs=post_pairs,
        timestamp=timestamp,
    )
    params = (
        ("route", SIGNED_ROUTE),
        ("call", call),
        ("username", username),
        ("store_id", str(int(store_id))),
        ("language", language),
        ("currency", currency),
        ("time", str(int(timestamp))),
        ("signature", signature(key, message)),
    )
    return SignedCall(params=params, host=host, timestamp=int(timestamp))


def verify_signature(key: str, message: str, presented: str) -> bool:
    """Constant-time check of a presented signature (used by the sandbox store)."""
    return hmac.compare_digest(signature(key, message).encode(), presented.encode())
