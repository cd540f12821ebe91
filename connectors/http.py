"""The one HTTP seam every connector goes through.

Self-hosted shops are small and fragile, so the rules live here once: a timeout on every request,
bounded retries with back-off only for calls that are safe to repeat, ``Retry-After`` honoured, a
cap on requests in flight per store, no redirects on writes, JSON read leniently (OpenCart prints
PHP notices before it), logging with secrets masked, and a guard that refuses to talk to loopback,
private, link-local or cloud-metadata addresses unless the deployment allows it.

Why one module of this size: every request to a store passes these rules in this order (URL
guard, pinned resolution, per-store gate, retries, masking); keeping them in one file keeps that
order readable. The shared gates themselves live in ``connectors/gates.py``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from connectors.errors import ConnectorError, PermanentError, ProtocolError, RateLimited, TransientError
from connectors.gates import MAX_INLINE_RETRY_AFTER, RATE_LIMITED_MESSAGE, LocalGate, SharedGate, shared_gates

log = logging.getLogger("connectors.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SENSITIVE_HEADERS = frozenset(
    {"authorization", "privatekey", "token", "x-auth-token", "cookie", "set-cookie", "x-storelink-signature"}
)


# --------------------------------------------------------------------------------------------------
# Store URL guard
# --------------------------------------------------------------------------------------------------


#: Ports a store URL on a public host may name (the deployment's ``STORE_ALLOWED_PORTS`` replaces them):
#: the web's two and the alternates sellers' stores really run on, never a database's or a cache's.
DEFAULT_STORE_PORTS: tuple[int, ...] = (80, 443, 8080, 8443)

#: Prefixes that carry an IPv4 address inside an IPv6 one, and where. A connection to such an address
#: ends at (or is translated to) the IPv4 address inside it, so that address is what is checked.
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # 6to4: the IPv4 is bits 16-48
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the IPv4 is the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64: the operator picks the layout
_TEREDO = ipaddress.ip_network("2001::/32")  # server IPv4 bits 32-64, client IPv4 inverted in the last 32
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated "::a.b.c.d"


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why Storelink will not connect to ``address`` (a phrase for the seller), or ``None`` if it may.

    The one rule for literal hosts in a store URL and for every address a name resolves to when a
    connection is opened. IPv6 forms that embed an IPv4 address are judged by that IPv4 address where
    the packets really end there: IPv4-mapped (the socket connects over IPv4), 6to4 (relays deliver to
    the IPv4 host) and the well-known NAT64 prefix (the gateway translates to it; IPv6-only networks
    with DNS64 reach every IPv4 store this way, so a public one is allowed). Forms whose IPv4 cannot be
    trusted are refused outright: Teredo (a deprecated tunnel through third-party relays), local-use
    NAT64 (its layout is the network's own choice) and the deprecated IPv4-compatible ``::a.b.c.d``.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = None
        if address.ipv4_mapped is not None:
            embedded, form = address.ipv4_mapped, "an IPv4-mapped"
        elif address in _SIX_TO_FOUR:
            embedded, form = address.sixtofour, "a 6to4"
        elif address in _NAT64:
            embedded, form = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64"
        elif address in _NAT64_LOCAL:
            return "a local-use NAT64 address (64:ff9b:1::/48), a form Storelink refuses outright"
        elif address in _TEREDO:
            server, client = address.teredo or (None, None)
            return (
                f"a Teredo tunnel address (IPv4 {server} and {client} inside), a form Storelink refuses "
                "outright"
            )
        elif address in _IPV4_COMPATIBLE and int(address) > 1:
            inside = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            return (
                f"a deprecated IPv4-compatible address (IPv4 {inside} inside), a form Storelink refuses "
                "outright"
            )
        if embedded is not None:
            if _address_is_public(embedded):
                return None
            return f"{form} address with the private or reserved IPv4 address {embedded} inside"
    if _address_is_public(address):
        return None
    return "a private or reserved address"


def _address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _valid_host(host: str) -> bool:
    """An IP literal, or a DNS name that can be resolved at all: non-empty labels of at most 63
    letters, digits and hyphens (after IDNA encoding), 253 characters in total. Checked before any
    lookup, so a name like ``a..b`` is a clear error even where no lookup is made (private hosts
    allowed) and never reaches the HTTP client, whose IDNA encoder would raise on it."""
    try:
        ipaddress.ip_address(host.split("%")[0])
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
        ascii_name.encode("ascii").decode("idna")  # a malformed "xn--" label does not decode
    except UnicodeError:
        return False
    return 0 < len(ascii_name) <= 253 and all(_HOST_LABEL.match(label) for label in ascii_name.split("."))


def wire_url(url: str) -> str:
    """``url`` as it travels: the host in IDNA (``xn--``) form and other non-ASCII percent-encoded.

    For a URL that goes in a header (3DCart's ``SecureURL``) or a host that does (a signed ``Host``):
    a header carries only ASCII, and a store with an international domain name is known to DNS, its
    TLS certificate and its web server by the ASCII form anyway.
    """
    if url.isascii():
        return url
    try:
        return str(httpx.URL(url))
    except (httpx.InvalidURL, UnicodeError):  # left as it is: the request then fails as a header error
        return url


def check_store_port(port: int, allowed_ports: Collection[int]) -> None:
    """Refuse a port the deployment does not allow for public stores.

    A public host's Redis, database or admin port is no store, and a URL naming it would have
    Storelink send a seller's credentials (and whatever a hostile seller puts in the path) there.
    """
    if port not in allowed_ports:
        allowed = ", ".join(str(p) for p in sorted(allowed_ports)) or "none"
        raise PermanentError(
            f"The store URL's port {port} is not allowed; allowed: {allowed}.", code="bad_url"
        )


def check_store_url(
    url: str,
    *,
    allow_private: bool = False,
    resolve: bool = True,
    allowed_ports: Collection[int] = DEFAULT_STORE_PORTS,
) -> str:
    """Refuse store URLs that could point Storelink at itself or its neighbours.

    Returns the URL without a trailing slash. The port must be one of ``allowed_ports`` (the scheme's
    own port when none is written); when private hosts are allowed (demo, tests: sandboxes listen on
    loopback on any port) every port is. Raises :class:`PermanentError` (code ``bad_url``)
    with a message the seller can act on. This check gives the seller an early answer; the
    connection itself resolves the name again and connects only to the addresses that resolution
    checked (see :func:`resolve_store_host`), so a DNS answer that changes later is caught too.
    """
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # e.g. "https://[::1" — urlsplit refuses malformed IPv6 literals
        raise PermanentError("The store URL is not a valid web address.", code="bad_url") from None
    if parts.scheme not in ("http", "https"):
        raise PermanentError("The store URL must start with https:// (or http://).", code="bad_url")
    if parts.username or parts.password or "@" in parts.netloc:
        raise PermanentError("The store URL must not contain a user name or password.", code="bad_url")
    if not host:
        raise PermanentError("The store URL has no host name.", code="bad_url")
    if any(ch.isspace() for ch in text) or "\\" in text:
        raise PermanentError("The store URL contains spaces or backslashes.", code="bad_url")
    try:
        port = parts.port
    except ValueError:
        raise PermanentError("The store URL has an invalid port.", code="bad_url") from None
    if not _valid_host(host):
        raise PermanentError(
            f"{host} is not a valid host name (each part between dots 1–63 letters, digits or "
            "hyphens, not starting or ending with a hyphen; 253 characters at most).",
            code="bad_url",
        )
    if parts.fragment or text.endswith("#"):
        raise PermanentError(
            "The store URL must not contain a # part; enter the store's address only.", code="bad_url"
        )
    if not allow_private:
        if parts.scheme != "https":
            raise PermanentError("The store URL must use https://.", code="bad_url")
        if resolve and _is_ip_literal(host):  # an address's own problem is told before its port's
            guard_host(host, port or 443)
        check_store_port(port or 443, allowed_ports)
        if resolve:
            guard_host(host, port or 443)
    return text.rstrip("/")


def _not_public(host: str, address: str, reason: str) -> PermanentError:
    where = f"is {reason}" if host.strip("[]") == address else f"resolves to {address}, {reason}"
    return PermanentError(
        f"The store host {host} {where}; Storelink only connects to public stores.", code="bad_url"
    )


def resolve_store_host(host: str, port: int, *, allow_private: bool = False) -> list[str]:
    """Resolve ``host`` once and return its addresses, every one of them checked to be public.

    This is the one resolution a connection uses: the caller connects to these addresses, never to
    the name again, so the answer that was checked is the answer that is used (a name that answers a
    public address to a check and 127.0.0.1 to the connect gets nowhere). When the deployment allows
    private hosts (demo, tests) the addresses are returned unchecked.
    """
    name = host.strip("[]")
    try:
        literal = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        if not allow_private and (reason := address_refusal(literal)):
            raise _not_public(host, name, reason)
        return [name]
    lowered = name.lower().rstrip(".")
    if not allow_private and (
        lowered in ("localhost", "metadata.google.internal") or lowered.endswith(".localhost")
    ):
        raise PermanentError(f"The store host {host} is not a public address.", code="bad_url")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        infos = []
    addresses = list(
        dict.fromkeys(str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6))
    )
    if not addresses:
        if allow_private:  # as an unpinned connection would: a connection error, retried later
            raise httpcore.ConnectError(f"could not resolve {host}")
        raise PermanentError(f"The store host {host} could not be found (DNS).", code="dns")
    if not allow_private:
        for address in addresses:
            if reason := address_refusal(ipaddress.ip_address(address.split("%")[0])):
                raise _not_public(host, address, reason)
    return addresses


def guard_host(host: str, port: int) -> None:
    """Resolve ``host`` and refuse it if any address is not public."""
    resolve_store_host(host, port, allow_private=False)


class CheckedNetworkBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, connecting only to addresses :func:`resolve_store_host` checked.

    httpcore hands the backend the URL's host name and keeps using that name for the TLS server
    name and certificate check and for the ``Host`` header; only the TCP connection is made to the
    checked address. Every new connection (first request, retry, a redirect's new host, a pool
    connection replacing an expired one) comes through here, so none escapes the check.
    """

    def __init__(self, *, allow_private: bool, allowed_ports: Collection[int] = DEFAULT_STORE_PORTS) -> None:
        self.allow_private = allow_private
        self.allowed_ports = frozenset(allowed_ports)
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if not self.allow_private:  # a redirect or a URL stored before the rule is held to it too
            check_store_port(port, self.allowed_ports)
        error: Exception | None = None
        for address in resolve_store_host(host, port, allow_private=self.allow_private):
            try:
                return self._sockets.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("stores are reached over TCP only")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


# --------------------------------------------------------------------------------------------------
# Lenient JSON
# --------------------------------------------------------------------------------------------------


def parse_json_lenient(text: str) -> Any:
    """Parse JSON that may have PHP notices (HTML or plain text) printed before it.

    Tries the whole body first, then every ``{`` or ``[`` from the left until one parses to the end
    of the body. Raises :class:`ValueError` when no JSON document ends the body.
    """
    stripped = text.strip()
    if stripped.startswith("\ufeff"):
        stripped = stripped[1:]
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    position = 0
    while True:
        starts = [i for i in (stripped.find("{", position), stripped.find("[", position)) if i >= 0]
        if not starts:
            raise ValueError("no JSON document in the reply")
        start = min(starts)
        try:
            value, end = decoder.raw_decode(stripped, start)
        except ValueError:
            position = start + 1
            continue
        if stripped[end:].strip() == "":
            return value
        position = start + 1


# --------------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------------


#: Values of fields whose *name* says they are secret, in JSON (``"api_token": "x"``), query strings
#: (``&_key=x``) and headers (``PrivateKey: x``). Catches secrets a client has not learnt yet, such as
#: the session token inside the very login reply that hands it out.
SECRET_FIELD_RE = re.compile(
    r"(?i)([\"']?\b(?:_key|api_?key|api_?token|access_?token|token(?:key)?|private_?key|secret|password|"
    r"passwd|x-auth-token)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,}]+)"
)


def mask_secret_fields(text: str) -> str:
    return SECRET_FIELD_RE.sub(r"\1***", text)


class Masker:
    """Replaces every known secret (and its URL-encoded form) and every secret-named field with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Mask one more value from now on: session tokens are only known after a login."""
        from urllib.parse import quote, quote_plus

        if secret and len(secret) >= 4:
            variants = {secret, quote(secret, safe=""), quote_plus(secret)}
            self._secrets = sorted(set(self._secrets) | variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return mask_secret_fields(text)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k: ("***" if k.lower() in SENSITIVE_HEADERS else self(v)) for k, v in headers.items()}


# --------------------------------------------------------------------------------------------------
# Per-store caps
# --------------------------------------------------------------------------------------------------


_gates: dict[str, LocalGate] = {}
_gates_lock = threading.Lock()


def store_gate(key: str, max_in_flight: int, rate: float | None = None, burst: int = 1) -> LocalGate:
    """The process-wide gate of a store, created on first use."""
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = LocalGate(max_in_flight, rate, burst)
        return gate


def shared_store_gate(
    key: str,
    max_in_flight: int,
    rate: float | None = None,
    burst: int = 1,
    *,
    url: str,
    lease_seconds: float = 15.0,
    prefix: str = "storelink:store-gate:",
) -> SharedGate:
    """A store's gate in the Redis at ``url``, shared by every process that uses the same Redis and
    prefix; the process's own gate of the store stands in while Redis cannot be reached."""
    local = store_gate(key, max_in_flight, rate, burst)
    return SharedGate(key, shared_gates(url, lease_seconds, prefix), local)


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------


def retry_after_seconds(response: httpx.Response, default: float = 30.0) -> float:
    """``Retry-After`` as seconds, from either of its two forms; ``default`` when absent or odd."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process.

    Loading the CA bundle costs ~100 ms; connectors are built per job, so without sharing it every
    stock push or order download would pay that before its first request. Contexts are safe to
    share between clients and threads.
    """
    return httpx.create_ssl_context()


class _ProcessPool(httpx.HTTPTransport):
    """A connection pool that outlives the per-job clients using it (their ``close`` is a no-op).

    Its connections are opened by :class:`CheckedNetworkBackend`, so each is pinned to an address
    that was checked when it was opened, per host, for as long as keep-alive holds it.
    """

    def __init__(
        self, *, allow_private: bool, allowed_ports: Collection[int], verify: ssl.SSLContext
    ) -> None:
        super().__init__(verify=verify)
        self._pool = httpcore.ConnectionPool(  # httpx's default limits, with the checked backend
            ssl_context=verify,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedNetworkBackend(allow_private=allow_private, allowed_ports=allowed_ports),
        )

    def close(self) -> None:
        """Kept open: the next job to the same store reuses its connections."""


_pools: dict[tuple[int, bool, frozenset[int]], httpx.HTTPTransport] = {}
_pools_lock = threading.Lock()


def shared_transport(
    *, allow_private: bool = False, allowed_ports: Collection[int] = DEFAULT_STORE_PORTS
) -> httpx.HTTPTransport:
    """The process's pool of keep-alive connections to stores, one per egress policy.

    Connectors are built per job; with a client (and so a pool) of their own, every stock push or
    order download would open a new connection, and a new TLS handshake, before its first request.
    Connections carry no credentials or cookies (those belong to each job's client), so jobs for
    different channels may share them. A pool that allows private hosts (demo stores) is a separate
    pool, so its connections are never handed to a job that must only reach public stores. One pool
    per process id: a forked worker must never inherit its parent's sockets.
    """
    key = (os.getpid(), bool(allow_private), frozenset() if allow_private else frozenset(allowed_ports))
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                for stale in [k for k in _pools if k[0] != key[0]]:
                    del _pools[stale]
                pool = _pools[key] = _ProcessPool(
                    allow_private=key[1], allowed_ports=key[2], verify=tls_context()
                )
    return pool


#: Called before every request to a store made in the current context (thread or task). The sync
#: engine sets it for the length of a job: it renews the job's lease while the job talks to the
#: store, and raises to stop a job that lost its lease before it sends anything more.
before_store_request: ContextVar[Callable[[], None] | None] = ContextVar("before_store_request", default=None)


class StoreHttp:
    """HTTP to one store (or one store's API host) with Storelink's rules applied.

    ``request`` returns the response for any status below 500 except 429 (those are for the
    platform's own mapping, which knows what its 403 or 404 means); 5xx, 429, timeouts and broken
    connections are retried when the call is idempotent and raised as typed errors when not or when
    retries are exhausted.
    """

    def __init__(
        self,
        base_url: str,
        *,
        platform: str,
        client: httpx.Client | None = None,
        timeout: float = 20.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_in_flight: int = 4,
        rate_per_second: float | None = None,
        burst: int = 1,
        allow_private_hosts: bool = False,
        allowed_ports: Collection[int] = DEFAULT_STORE_PORTS,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        gate_key: str | None = None,
        gate_url: str = "",
        gate_lease_seconds: float = 15.0,
        gate_prefix: str = "storelink:store-gate:",
    ) -> None:
        self.base_url = check_store_url(
            base_url, allow_private=allow_private_hosts, resolve=False, allowed_ports=allowed_ports
        )
        self.platform = platform
        self.allow_private_hosts = allow_private_hosts
        self.allowed_ports = frozenset(allowed_ports)
        self._owns_client = client is None
        #: our own client connects through the checked pool; a caller's client can only be pre-checked
        self._pinned = client is None
        self.client = client or httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            transport=shared_transport(allow_private=allow_private_hosts, allowed_ports=allowed_ports),
        )
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.sleep = sleep
        self.mask = Masker(secrets)
        host = urlsplit(self.base_url).netloc.lower()
        key = gate_key or f"{platform}:{host}"
        self.gate: LocalGate | SharedGate = (
            shared_store_gate(
                key,
                max_in_flight,
                rate_per_second,
                burst,
                url=gate_url,
                lease_seconds=gate_lease_seconds,
                prefix=gate_prefix,
            )
            if gate_url
            else store_gate(key, max_in_flight, rate_per_second, burst)
        )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        follow_redirects: bool = False,
        timeout: float | None = None,
    ) -> httpx.Response:
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if method not in ("GET", "HEAD"):
            follow_redirects = False
        url = self.url(path)
        if not self.allow_private_hosts and not self._pinned:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            check_store_port(port, self.allowed_ports)
            guard_host(parts.hostname or "", port)
        attempts = self.max_retries + 1 if idempotent else 1
        last_error: ConnectorError | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(
                    method, url, params, data, content, json_body, headers, follow_redirects, timeout
                )
            except (UnicodeEncodeError, httpx.LocalProtocolError) as exc:
                # A header value httpx or h11 cannot send (non-ASCII, a control character): the same
                # on every attempt. The exception text may quote the value (a secret), so only its kind
                # is kept.
                raise PermanentError(
                    "A credential or store setting of this channel cannot be sent to the store: HTTP "
                    "headers carry only printable ASCII characters. Re-enter the credentials without "
                    "other characters (reauthorise the channel).",
                    code="header_encoding",
                    raw=type(exc).__name__,
                ) from None
            except httpx.TimeoutException as exc:
                last_error = TransientError(
                    f"The store did not answer within {timeout or self.timeout:.0f} seconds.",
                    code="timeout",
                    raw=self.mask(repr(exc)),
                )
            except (httpx.TransportError, httpx.DecodingError) as exc:
                last_error = TransientError(
                    "Could not reach the store (connection failed or was cut off).",
                    code="connection",
                    raw=self.mask(repr(exc)),
                )
            else:
                if response.status_code == 429:
                    wait = retry_after_seconds(response)
                    self.gate.block(wait)
                    last_error = RateLimited(
                        RATE_LIMITED_MESSAGE,
                        retry_after=wait,
                        raw=self.mask(response.text[:2000]),
                        status_code=429,
                    )
                    if attempt < attempts and wait <= MAX_INLINE_RETRY_AFTER:
                        continue  # the gate waits the quiet time out before the next attempt
                    raise last_error
                if response.status_code >= 500 or response.status_code == 503:
                    last_error = TransientError(
                        f"The store had an internal error (HTTP {response.status_code}).",
                        code="server_error",
                        raw=self.mask(response.text[:2000]),
                        status_code=response.status_code,
                    )
                    if response.status_code == 503 and response.headers.get("Retry-After"):
                        wait = retry_after_seconds(response)
                        self.gate.block(wait)
                        if wait > MAX_INLINE_RETRY_AFTER or attempt == attempts:
                            raise RateLimited(
                                "The store is temporarily unavailable (HTTP 503).",
                                retry_after=wait,
                                raw=last_error.raw,
                                status_code=503,
                            )
                else:
                    return response
            if attempt < attempts:
                self.sleep(self.backoff * (2 ** (attempt - 1)))
        assert last_error is not None
        raise last_error

    def _send(
        self,
        method: str,
        url: str,
        params: Any,
        data: Any,
        content: bytes | str | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        follow_redirects: bool,
        timeout: float | None,
    ) -> httpx.Response:
        guard = before_store_request.get()
        if guard is not None:
            guard()
        with self.gate.slot(self.sleep):
            started = time.monotonic()
            response = self.client.request(
                method,
                url,
                params=params,
                data=data,
                content=content,
                json=json_body,
                headers=dict(headers or {}),
                follow_redirects=follow_redirects,
                timeout=timeout or self.timeout,
            )
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "store.http %s %s -> %s in %.0f ms; request headers %s; body %s",
                    method,
                    self.mask(str(response.request.url)),
                    response.status_code,
                    (time.monotonic() - started) * 1000,
                    self.mask.headers(response.request.headers),
                    self.mask(response.text[:500]),
                )
            else:
                log.info(
                    "store.http %s %s -> %s in %.0f ms",
                    method,
                    self.mask(str(response.request.url)),
                    response.status_code,
                    (time.monotonic() - started) * 1000,
                )
            return response

    def json(self, response: httpx.Response, *, what: str = "reply") -> Any:
        """Decode a body leniently or raise :class:`ProtocolError` keeping the (masked) raw text."""
        try:
            return parse_json_lenient(response.text)
        except ValueError:
            snippet = self.mask(response.text[:2000])
            kind = "an HTML page" if "<html" in response.text[:500].lower() else "something that is not JSON"
            raise ProtocolError(
                f"The store answered the {what} with {kind} (HTTP {response.status_code}).",
                code="not_json",
                raw=snippet,
                status_code=response.status_code,
            ) from None
