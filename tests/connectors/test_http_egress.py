"""Egress: a store's name is resolved once per connection and the connection goes to the address that
was checked, so a name that answers a public address to the check and loopback to the connect (DNS
rebinding) never gets Storelink's credentials onto a local service.

The network is real (loopback listeners, real sockets, httpx's pool); only name resolution is staged:
``socket.getaddrinfo`` is replaced by a resolver that flips its answers, and connections to public
addresses are refused by a stand-in for "the internet" so nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import connectors.http as store_http
from connectors.errors import ConnectorError
from connectors.http import StoreHttp

PUBLIC = "93.184.216.34"
TOKEN = "seller-token-0123456789"


# --------------------------------------------------------------------------------------------------
# Staged network
# --------------------------------------------------------------------------------------------------


class Resolver:
    """``socket.getaddrinfo`` for one name, answering ``answers`` in turn (the last one repeats)."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name = name
        self.answers = answers
        self.calls = 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if isinstance(host, bytes):
            host = host.decode()
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr: tuple[Any, ...] = (address, int(port or 0)) + ((0, 0) if family == socket.AF_INET6 else ())
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]


class Internet:
    """``socket.create_connection`` that lets loopback through and refuses every public address."""

    def __init__(self) -> None:
        self.real = socket.create_connection
        self.attempts: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address[0], int(address[1])
        # As the real one does, a name is resolved here (through whatever resolver is installed).
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = info[4][0]
            self.attempts.append((ip, port))
            if ipaddress.ip_address(ip).is_loopback:
                return self.real((ip, port), *args, **kwargs)
        raise OSError(errno.ECONNREFUSED, "public addresses are not reachable from the test")


@pytest.fixture
def internet(monkeypatch: pytest.MonkeyPatch) -> Internet:
    net = Internet()
    monkeypatch.setattr(socket, "create_connection", net)
    return net


@pytest.fixture
def fresh_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds its own shared pools, so no connection from an earlier test is reused."""
    monkeypatch.setattr(store_http, "_pools", {})


class Listener:
    """A loopback TCP listener that counts the connections it accepts and what arrives on them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.received = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(0.5)
            with contextlib.suppress(OSError):
                self.received += conn.recv(65536)
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _strict(url: str, **kwargs: Any) -> StoreHttp:
    """Production rules, with the test listener's port allowed as an operator would allow it."""
    kwargs.setdefault("allowed_ports", (urlsplit(url).port or 443,))
    return StoreHttp(
        url,
        platform="test",
        allow_private_hosts=False,
        timeout=2.0,
        sleep=lambda _s: None,
        secrets=[TOKEN],
        **kwargs,
    )


# --------------------------------------------------------------------------------------------------
# Rebinding
# --------------------------------------------------------------------------------------------------


def test_a_name_that_rebinds_to_loopback_never_gets_a_connection(
    monkeypatch: pytest.MonkeyPatch, internet: Internet, listener: Listener, fresh_pools: None
) -> None:
    name = "shop.rebind.test"
    resolver = Resolver(name, [PUBLIC, "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    http = _strict(f"https://{name}:{listener.port}", max_retries=0)
    with pytest.raises(ConnectorError):
        http.request("GET", "/api/orders", headers={"X-Auth-Token": TOKEN})
    assert listener.accepted == 0
    assert TOKEN.encode() not in listener.received
    assert ("127.0.0.1", listener.port) not in internet.attempts
    assert (PUBLIC, listener.port) in internet.attempts, "the checked public address is where it connects"


def test_every_retry_connects_only_to_an_address_it_checked(
    monkeypatch: pytest.MonkeyPatch, internet: Internet, listener: Listener, fresh_pools: None
) -> None:
    name = "shop.flipflop.test"
    resolver = Resolver(name, [PUBLIC, "127.0.0.1", PUBLIC, "127.0.0.1", PUBLIC, "127.0.0.1"] * 3)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    http = _strict(f"https://{name}:{listener.port}", max_retries=3)
    with pytest.raises(ConnectorError):
        http.request("GET", "/api/orders", headers={"X-Auth-Token": TOKEN})
    assert listener.accepted == 0
    assert {host for host, _port in internet.attempts} <= {PUBLIC}


def test_the_strict_pool_refuses_loopback_whoever_asks_it(
    internet: Internet, listener: Listener, fresh_pools: None
) -> None:
    """A redirect httpx follows opens its connection through the same pool, so the guard sits there."""
    client = httpx.Client(
        transport=store_http.shared_transport(allow_private=False, allowed_ports=(listener.port,))
    )
    with pytest.raises(ConnectorError) as caught:
        client.get(f"http://127.0.0.1:{listener.port}/latest/meta-data")
    assert "private or reserved" in caught.value.message
    assert listener.accepted == 0


# --------------------------------------------------------------------------------------------------
# The pinned connection still speaks to the store by name
# --------------------------------------------------------------------------------------------------


def _tls_material(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throw-away CA and a certificate for ``name``: (server context, client context trusting it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Storelink test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(ca_file))
    return server, client


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        headers = self.headers
        self.seen.append({"host": headers.get("Host", ""), "token": headers.get("X-Auth-Token", "")})
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_pinned_tls_connection_keeps_the_name_for_host_sni_and_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, internet: Internet, fresh_pools: None
) -> None:
    """The check says the store's address is public (staged for 127.0.0.1 here): the request reaches it
    with the store's name in the Host header, the TLS server name and the certificate check, and the
    keep-alive pool reuses the connection without resolving again."""
    name = "shop.pinned.test"
    server_ctx, client_ctx = _tls_material(tmp_path, name)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, server_name, _ctx: sni.append(server_name)  # type: ignore[assignment]
    handler = type("Echo", (_Echo,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    resolver = Resolver(name, ["127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(store_http, "tls_context", lambda: client_ctx)
    real_public = store_http._address_is_public
    monkeypatch.setattr(store_http, "_address_is_public", lambda a: str(a) == "127.0.0.1" or real_public(a))
    try:
        http = _strict(f"https://{name}:{port}")
        for _ in range(3):
            assert http.request("GET", "/x", headers={"X-Auth-Token": TOKEN}).json() == {"ok": True}
    finally:
        server.shutdown()
        server.server_close()
    assert handler.seen == [{"host": f"{name}:{port}", "token": TOKEN}] * 3
    assert sni == [name], "one TLS handshake, with the store's name"
    assert resolver.calls == 1, "resolved once for the one pooled connection"
    assert internet.attempts == [("127.0.0.1", port)]


def test_a_certificate_for_another_name_is_still_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, internet: Internet, fresh_pools: None
) -> None:
    server_ctx, client_ctx = _tls_material(tmp_path, "other.example.test")
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Echo", (_Echo,), {"seen": []}))
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setattr(socket, "getaddrinfo", Resolver("shop.pinned.test", ["127.0.0.1"]))
    monkeypatch.setattr(store_http, "tls_context", lambda: client_ctx)
    try:
        http = StoreHttp(
            f"https://shop.pinned.test:{port}", platform="test", allow_private_hosts=True, max_retries=0
        )
        with pytest.raises(ConnectorError):
            http.request("GET", "/x")
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_sandboxes_keep_working_when_private_hosts_are_allowed(fresh_pools: None) -> None:
    handler = type("Echo", (_Echo,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        http = StoreHttp(f"http://127.0.0.1:{port}", platform="test", allow_private_hosts=True)
        assert http.request("GET", "/x").json() == {"ok": True}
        assert http.request("GET", "/x").json() == {"ok": True}
    finally:
        server.shutdown()
        server.server_close()
    assert [seen["host"] for seen in handler.seen] == [f"127.0.0.1:{port}"] * 2


# --------------------------------------------------------------------------------------------------
# IPv6 forms with an IPv4 address inside
# --------------------------------------------------------------------------------------------------

#: (address, what the refusal says) — each form with a private or loopback IPv4 inside, and the forms
#: refused whatever is inside them.
REFUSED_TRANSITION_FORMS = [
    ("2002:7f00:1::", "6to4 address with the private or reserved IPv4 address 127.0.0.1"),
    ("2002:a9fe:a9fe::1", "6to4 address with the private or reserved IPv4 address 169.254.169.254"),
    ("64:ff9b::7f00:1", "NAT64 address with the private or reserved IPv4 address 127.0.0.1"),
    ("64:ff9b::a00:1", "NAT64 address with the private or reserved IPv4 address 10.0.0.1"),
    ("64:ff9b:1::a9fe:a9fe", "local-use NAT64 address (64:ff9b:1::/48), a form Storelink refuses outright"),
    # Teredo: server 93.184.216.34, client 10.0.0.1 (stored inverted: f5ff:fffe)
    ("2001:0:5db8:d822::f5ff:fffe", "Teredo tunnel address (IPv4 93.184.216.34 and 10.0.0.1 inside)"),
    # Teredo with both addresses public is still a tunnel through relays nobody vetted
    ("2001:0:5db8:d822::a2ff:fffe", "Teredo tunnel address (IPv4 93.184.216.34 and 93.0.0.1 inside), a form"),
    ("::ffff:127.0.0.1", "IPv4-mapped address with the private or reserved IPv4 address 127.0.0.1"),
    ("::ffff:a9fe:a9fe", "IPv4-mapped address with the private or reserved IPv4 address 169.254.169.254"),
    ("::127.0.0.1", "IPv4-compatible address (IPv4 127.0.0.1 inside), a form Storelink refuses outright"),
    ("::93.184.216.34", "IPv4-compatible address (IPv4 93.184.216.34 inside), a form Storelink refuses"),
]

#: Forms whose packets end at the public IPv4 inside them (an IPv6-only network with DNS64 reaches
#: every IPv4-only store through 64:ff9b::/96), so they are as good as that address.
ALLOWED_TRANSITION_FORMS = ["2002:5db8:d822::1", "64:ff9b::5db8:d822", "::ffff:93.184.216.34"]


@pytest.mark.parametrize(("address", "reason"), REFUSED_TRANSITION_FORMS)
def test_a_literal_ipv6_host_with_a_private_ipv4_inside_is_refused(address: str, reason: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        store_http.check_store_url(f"https://[{address}]/")
    assert reason in caught.value.message
    assert caught.value.code == "bad_url"


@pytest.mark.parametrize("address", ALLOWED_TRANSITION_FORMS)
def test_a_literal_ipv6_host_with_a_public_ipv4_inside_is_accepted(address: str) -> None:
    assert store_http.check_store_url(f"https://[{address}]/") == f"https://[{address}]"


@pytest.mark.parametrize(("address", "reason"), REFUSED_TRANSITION_FORMS)
def test_a_name_resolving_to_a_private_ipv4_inside_ipv6_is_refused_when_checked_and_when_connecting(
    monkeypatch: pytest.MonkeyPatch,
    internet: Internet,
    listener: Listener,
    fresh_pools: None,
    address: str,
    reason: str,
) -> None:
    """The check of the URL and the connection's own resolution apply the same rule: a name that
    passes the first (answering public) and then answers a transition form is stopped at the connect."""
    name = "shop.transition.test"
    monkeypatch.setattr(socket, "getaddrinfo", Resolver(name, [address]))
    with pytest.raises(ConnectorError) as checked:
        store_http.check_store_url(f"https://{name}/")
    assert f"resolves to {address}, " in checked.value.message
    assert reason in checked.value.message

    monkeypatch.setattr(socket, "getaddrinfo", Resolver(name, [PUBLIC, address]))
    assert store_http.check_store_url(f"https://{name}/") == f"https://{name}"
    http = _strict(f"https://{name}/", max_retries=1)
    with pytest.raises(ConnectorError) as connecting:
        http.request("GET", "/api/orders", headers={"X-Auth-Token": TOKEN})
    assert reason in connecting.value.message
    assert internet.attempts == [], "no connection to the address with the private IPv4 inside"
    assert listener.accepted == 0


@pytest.mark.parametrize("address", ALLOWED_TRANSITION_FORMS)
def test_a_name_resolving_to_a_public_ipv4_inside_ipv6_is_connected_to(
    monkeypatch: pytest.MonkeyPatch, internet: Internet, fresh_pools: None, address: str
) -> None:
    name = "shop.transition.test"
    monkeypatch.setattr(socket, "getaddrinfo", Resolver(name, [address]))
    assert store_http.check_store_url(f"https://{name}/") == f"https://{name}"
    http = _strict(f"https://{name}/", max_retries=0)
    with pytest.raises(ConnectorError) as caught:  # the stand-in internet refuses every public address
        http.request("GET", "/api/orders")
    assert caught.value.code == "connection"
    assert [host for host, _port in internet.attempts] == [address]


# --------------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34:6379/",
        "https://shop.example.com:22/x",
        "https://[2606:2800:220:1:248:1893:25c8:1946]:5432/",
    ],
)
def test_a_public_store_on_a_port_the_deployment_does_not_allow_is_refused(url: str) -> None:
    port = urlsplit(url).port
    with pytest.raises(ConnectorError) as caught:
        store_http.check_store_url(url)
    assert (
        caught.value.message == f"The store URL's port {port} is not allowed; allowed: 80, 443, 8080, 8443."
    )
    assert caught.value.code == "bad_url"


def test_the_usual_store_ports_and_the_operators_own_are_allowed() -> None:
    for url in ("https://93.184.216.34/", "https://93.184.216.34:443/", "https://93.184.216.34:8443/shop"):
        assert store_http.check_store_url(url) == url.rstrip("/")
    assert store_http.check_store_url("https://93.184.216.34:9443/", allowed_ports=(443, 9443))
    with pytest.raises(ConnectorError, match="port 443 is not allowed; allowed: 9443"):
        store_http.check_store_url("https://93.184.216.34/", allowed_ports=(9443,))


def test_any_port_is_allowed_where_private_hosts_are(fresh_pools: None) -> None:
    """The sandboxes of the demo and the tests listen on loopback on ports like 8701."""
    assert store_http.check_store_url("http://127.0.0.1:8701/", allow_private=True) == "http://127.0.0.1:8701"
    assert store_http.check_store_url("https://93.184.216.34:6379/", allow_private=True)


def test_the_connection_itself_refuses_a_port_that_is_not_allowed(
    monkeypatch: pytest.MonkeyPatch, internet: Internet, fresh_pools: None
) -> None:
    """A redirect httpx follows, or a URL stored before the rule, opens its connection through the
    pool, so the pool holds every connection to the port rule as well."""
    name = "shop.ports.test"
    monkeypatch.setattr(socket, "getaddrinfo", Resolver(name, [PUBLIC]))
    client = httpx.Client(transport=store_http.shared_transport(allow_private=False))
    with pytest.raises(ConnectorError) as caught:
        client.get(f"https://{name}:6379/")
    assert "port 6379 is not allowed; allowed: 80, 443, 8080, 8443" in caught.value.message
    assert internet.attempts == []
    with pytest.raises(httpx.ConnectError):  # an allowed port goes on to connect (refused by the stand-in)
        client.get(f"https://{name}:8443/")
    assert internet.attempts == [(PUBLIC, 8443)]
