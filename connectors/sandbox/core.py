"""The machinery every sandbox store shares: a real threaded HTTP server on loopback, a SQLite
database, and fault injection.

A sandbox stands in for a seller's store in tests, benchmarks and the demo. Each platform module
subclasses :class:`SandboxApp` and answers requests the way the real platform does on the wire;
this module only decides *whether* a request reaches the platform code (faults) and how bytes move.
Faults are applied here, once, so every platform misbehaves the same way under the same knobs.

Control endpoints (never faulted) live under ``/__sandbox__/``:

- ``GET  /__sandbox__/state``  → the platform's summary (orders, requests and "anything new?"
  probes served, writes so far)
- ``POST /__sandbox__/faults`` → JSON body with any :class:`Faults` field, applied at once
- ``POST /__sandbox__/seed``   → JSON ``{"products": N, "orders": M, "days": D, "seed": S}``
"""

from __future__ import annotations

import abc
import collections
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("500", "timeout", "garbage", "truncated")


@dataclass
class Faults:
    """Knobs for misbehaviour; all off by default.

    ``error_rate`` is the fraction of (non-control) requests that fail, each failure drawn from
    ``kinds``. ``timeout`` sleeps ``timeout_seconds`` and then drops the connection without a reply.
    ``truncated`` sends the real status and only the first half of the real body. ``garbage``
    answers 200 with bytes that are not what the client asked for. ``rate_limit_every`` answers
    every Nth request with 429 and ``Retry-After``; ``rate_limit_next`` answers the next N requests
    so (each one counts it down). ``expired_token`` makes the platform treat
    every credential as expired/revoked. ``clock_skew_seconds`` shifts the store's clock.
    ``fail_writes_only`` limits injected errors to non-GET requests. ``drop_reply_after_write``
    lets the next N writes (non-GET requests) reach the store and take effect, then closes the
    connection without a reply: the client cannot tell a lost reply from a write that never arrived.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_seconds: float = 2.0
    rate_limit_every: int = 0
    rate_limit_next: int = 0
    retry_after: float = 1.0
    expired_token: bool = False
    clock_skew_seconds: int = 0
    fail_writes_only: bool = False
    drop_reply_after_write: int = 0
    seed: int | None = None

    def update(self, values: Mapping[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault knob {key!r}")
            if key == "kinds":
                value = tuple(value)
                bad = [kind for kind in value if kind not in FAULT_KINDS]
                if bad:
                    raise ValueError(f"unknown fault kinds {bad}")
            setattr(self, key, value)


@dataclass
class SandboxRequest:
    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    client_ip: str
    query: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.query = parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First query value of ``name`` (PHP's ``$_GET[name]``)."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str = "") -> str:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    @property
    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded`` (PHP's ``$_POST``)."""
        if "application/x-www-form-urlencoded" not in self.header("content-type"):
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` on anything else."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class SandboxResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> SandboxResponse:
        body = json.dumps(data, default=_json_default, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def text(
        cls, text: str, status: int = 200, content_type: str = "text/html; charset=UTF-8", **headers: str
    ) -> SandboxResponse:
        return cls(status, text.encode(), {"Content-Type": content_type, **headers})

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> SandboxResponse:
        return cls(status, b"", {"Content-Type": "text/html; charset=UTF-8", **(headers or {})})


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def seeded_sku(ordinal: int, own: str, shared: int) -> str:
    """The SKU of the ``ordinal``-th seeded product: a shared one for the first ``shared``, else ``own``."""
    return f"DEMO-{ordinal:04d}" if ordinal <= shared else own


class SandboxApp(abc.ABC):
    """A store: its data in SQLite, its wire format in :meth:`handle`.

    Subclasses implement the platform routes and the store-side inspection API that tests use to
    check effects "from the store's point of view" (see docs/architecture.md, "Sandbox stores").
    """

    platform: str = ""

    def __init__(self, db_path: str = ":memory:", faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        #: The first this many seeded products get the same SKUs on every platform (``DEMO-0001`` …),
        #: as when one seller lists one product on several stores (the demo's three stores do).
        self.shared_skus = 0
        self.lock = threading.RLock()
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL" if db_path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self.request_count = 0
        #: requests being answered right now, and the most there ever were at once (the store's view
        #: of a client's cap)
        self.in_flight = 0
        self.max_in_flight = 0
        #: when each request arrived (epoch seconds), the newest 10,000
        self.arrivals: collections.deque[float] = collections.deque(maxlen=10_000)
        #: Requests that only asked "anything new?" (a count, the bridge's cursor check): how much of
        #: a client's polling is the cheap kind (``probes`` in the state).
        self.probe_count = 0
        self.base_url = ""  # set by SandboxServer once it knows its port
        self._write_log: list[dict[str, Any]] = []
        self.create_schema()

    # -- platform hooks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def create_schema(self) -> None:
        """Create the platform's tables (idempotent)."""

    @abc.abstractmethod
    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request as the platform would."""

    @abc.abstractmethod
    def seed(self, products: int, orders: int, days: int, rng_seed: int = 0) -> None:
        """Fill the store with ``products`` products (some with variants) and ``orders`` orders."""

    @abc.abstractmethod
    def connector_credentials(self) -> dict[str, Any]:
        """Credentials that work against this store."""

    def connector_settings(self) -> dict[str, Any]:
        """Settings that fit this store (platform modules override)."""
        return {}

    def connector_store_url(self) -> str:
        """The store URL a channel for this sandbox is saved with (3DCart: the SecureURL)."""
        return self.base_url

    def connector_options(self) -> dict[str, Any]:
        """Extra ``ConnectorOptions`` fields this store needs (3DCart: ``api_base``, ``app_keys``)."""
        return {}

    @abc.abstractmethod
    def add_order(self, **kwargs: Any) -> str:
        """Place one new order now (an order arriving while a client pages); returns its id."""

    @abc.abstractmethod
    def stock_of(self, sku: str) -> int: ...

    @abc.abstractmethod
    def price_of(self, sku: str) -> Decimal: ...

    def tax_rate_of(self, sku: str) -> Decimal:
        """The tax rate (percent) this store's checkout charges on the product."""
        raise NotImplementedError

    def checkout_price_of(self, sku: str) -> Decimal:
        """What a customer pays for one unit at checkout, tax included, as the platform computes it
        from its own price field (platform modules say whether that field is net or gross)."""
        raise NotImplementedError

    @abc.abstractmethod
    def tracking_numbers(self, order_external_id: str) -> list[str]: ...

    @abc.abstractmethod
    def order_status(self, order_external_id: str) -> str: ...

    @abc.abstractmethod
    def order_count(self) -> int: ...

    # -- shared helpers ----------------------------------------------------------------------------

    @staticmethod
    def with_tax(net: Decimal, rate: Decimal) -> Decimal:
        """A net unit price with ``rate`` percent added, rounded half-up to the cent."""
        return (Decimal(net) * (1 + Decimal(rate) / 100)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def record_write(self, kind: str, key: Any, value: Any) -> None:
        """Remember an effect a client caused, so tests can count duplicate writes."""
        with self.lock:
            self._write_log.append({"kind": kind, "key": str(key), "value": _plain(value)})

    def writes(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._write_log)

    def clear_writes(self) -> None:
        with self.lock:
            self._write_log.clear()

    def now(self) -> float:
        """The store's clock (epoch seconds), skewed when the fault knob says so."""
        return time.time() + self.faults.clock_skew_seconds

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction under the app lock (handlers run on many threads)."""
        with self.lock:
            self.db.execute("BEGIN")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def state(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "orders": self.order_count(),
            "requests": self.request_count,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "arrivals": list(self.arrivals),
            "probes": self.probe_count,
            "writes": len(self.writes()),
            "faults": asdict(self.faults),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _DropConnection(Exception):
    """Raised to close the socket without answering (a timeout, seen from the client)."""


class SandboxServer:
    """Serves one :class:`SandboxApp` over real HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._rng = random.Random(app.faults.seed)
        self._rng_lock = threading.Lock()
        handler = _make_handler(self)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        bound_host, self.port = self.httpd.server_address[:2]
        self.host = bound_host if isinstance(bound_host, str) else bound_host.decode()
        self.url = f"http://{self.host}:{self.port}"
        app.base_url = self.url
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request pipeline --------------------------------------------------------------------------

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        if request.path.startswith("/__sandbox__/"):
            return self._control(request)
        app = self.app
        with app.lock:
            app.request_count += 1
            count = app.request_count
            app.arrivals.append(time.time())
            app.in_flight += 1
            app.max_in_flight = max(app.max_in_flight, app.in_flight)
        try:
            return self._dispatch(request, count)
        finally:
            with app.lock:
                app.in_flight -= 1

    def _dispatch(self, request: SandboxRequest, count: int) -> SandboxResponse:
        app = self.app
        faults = app.faults
        if faults.latency:
            time.sleep(faults.latency)
        limited = bool(faults.rate_limit_every and count % faults.rate_limit_every == 0)
        if not limited and faults.rate_limit_next > 0:
            with app.lock:
                limited = faults.rate_limit_next > 0
                faults.rate_limit_next -= int(limited)
        if limited:
            return SandboxResponse.json(
                {"error": "Too many requests"}, 429, {"Retry-After": f"{faults.retry_after:g}"}
            )
        failure = self._draw_failure(request)
        if failure == "500":
            return SandboxResponse.text("<html><body><h1>500 Internal Server Error</h1></body></html>", 500)
        if failure == "timeout":
            time.sleep(faults.timeout_seconds)
            raise _DropConnection
        if failure == "garbage":
            return SandboxResponse.text("<html><body>Service temporarily misconfigured</body></html>", 200)
        response = app.handle(request)
        if request.method not in ("GET", "HEAD") and faults.drop_reply_after_write > 0:
            with app.lock:
                faults.drop_reply_after_write -= 1
            raise _DropConnection
        if failure == "truncated" and len(response.body) > 1:
            response.body = response.body[: len(response.body) // 2]
        return response

    def _draw_failure(self, request: SandboxRequest) -> str | None:
        faults = self.app.faults
        if not faults.error_rate or not faults.kinds:
            return None
        if faults.fail_writes_only and request.method in ("GET", "HEAD"):
            return None
        with self._rng_lock:
            if self._rng.random() >= faults.error_rate:
                return None
            return self._rng.choice(list(faults.kinds))

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        action = request.path.removeprefix("/__sandbox__/").strip("/")
        try:
            if action == "state" and request.method == "GET":
                return SandboxResponse.json(self.app.state())
            if action == "faults" and request.method == "POST":
                self.app.faults.update(request.json() if request.body else {})
                if self.app.faults.seed is not None:
                    self._rng.seed(self.app.faults.seed)
                return SandboxResponse.json(asdict(self.app.faults))
            if action == "seed" and request.method == "POST":
                spec = request.json() if request.body else {}
                self.app.seed(
                    int(spec.get("products", 20)),
                    int(spec.get("orders", 50)),
                    int(spec.get("days", 7)),
                    int(spec.get("seed", 0)),
                )
                return SandboxResponse.json(self.app.state())
            if action == "writes" and request.method == "GET":
                return SandboxResponse.json(self.app.writes())
        except (ValueError, TypeError) as exc:
            return SandboxResponse.json({"error": str(exc)}, 400)
        return SandboxResponse.json({"error": "unknown control action"}, 404)


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small replies would otherwise wait ~40 ms on Nagle + delayed ACK for every request.
        disable_nagle_algorithm = True
        server_version = "Apache"
        sys_version = ""

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = SandboxRequest(
                method=self.command,
                path=parts.path,
                query_string=parts.query,
                headers={k: v for k, v in self.headers.items()},
                body=body,
                client_ip=self.client_address[0],
            )
            try:
                response = server.dispatch(request)
            except _DropConnection:
                self.close_connection = True
                return
            except Exception as exc:  # a bug in a sandbox must look like a store's 500, not hang
                response = SandboxResponse.text(f"<b>Fatal error</b>: {type(exc).__name__}", 500)
            # The Date header is the store's clock (skewed when the fault knob says so), like a
            # real server's; a platform module may set its own.
            self.send_response_only(response.status, response.reason)
            headers = {
                "Server": self.version_string(),
                "Date": formatdate(server.app.now(), usegmt=True),
                **response.headers,
                "Content-Length": str(len(response.body)),
            }
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
