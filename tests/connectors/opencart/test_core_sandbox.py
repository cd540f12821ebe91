"""The core-API client against the sandbox's OpenCart core routes over real loopback HTTP, per family.

The store here is a minimal SQLite stand-in holding only the OpenCart tables the core routes touch
(``oc_api``, ``oc_api_ip``, ``oc_api_session``, ``oc_order``, ``oc_order_history``, ``oc_setting``,
``oc_api_history``), so these tests pin the wire behaviour of ``opencart_core.handle_core`` without
depending on the full store (``connectors/sandbox/opencart.py``), whose own tests cover the rest.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.errors import AuthError, TransientError
from connectors.http import StoreHttp
from connectors.opencart.client import (
    CoreLoginBroken,
    OpenCartCoreClient,
    OrderNotFound,
)
from connectors.opencart.versions import detect_family, normalise_family
from connectors.sandbox.core import SandboxApp, SandboxRequest, SandboxResponse, SandboxServer
from connectors.sandbox.opencart_core import handle_core, is_core_route

API_KEY = "k" * 64
USERNAME = "Storelink"
ORDER_ID = "42"


class MiniOpenCart(SandboxApp):
    """Just enough of an OpenCart store for the core API: users, IPs, sessions, orders, history."""

    platform = "opencart"

    def __init__(self, family: str, *, version: str = "", allowed_ip: str = "127.0.0.1") -> None:
        self.family = family
        self.prefix = "oc_"
        if version:
            self.opencart_version = version
        self.allowed_ip = allowed_ip
        super().__init__()

    def create_schema(self) -> None:
        name_column = "name" if self.family.startswith("2.") else "username"
        statements = [
            f"CREATE TABLE oc_api (api_id INTEGER PRIMARY KEY, {name_column} TEXT, `key` TEXT, status INT,"
            " date_added TEXT, date_modified TEXT)",
            "CREATE TABLE oc_api_ip (api_ip_id INTEGER PRIMARY KEY, api_id INT, ip TEXT)",
            "CREATE TABLE oc_setting (setting_id INTEGER PRIMARY KEY, store_id INT, code TEXT, `key` TEXT,"
            " value TEXT, serialized INT)",
            "CREATE TABLE oc_order (order_id INTEGER PRIMARY KEY, order_status_id INT, date_added TEXT,"
            " date_modified TEXT)",
            "CREATE TABLE oc_order_history (order_history_id INTEGER PRIMARY KEY, order_id INT,"
            " order_status_id INT, notify INT, comment TEXT, date_added TEXT)",
        ]
        if self.family.startswith("2."):
            statements.append(
                "CREATE TABLE oc_api_session (api_session_id INTEGER PRIMARY KEY, api_id INT, token TEXT,"
                " session_id TEXT, session_name TEXT, ip TEXT, date_added TEXT, date_modified TEXT)"
            )
        elif self.family == "4.1":
            statements.append(
                "CREATE TABLE oc_api_history (api_history_id INTEGER PRIMARY KEY, api_id INT, `call` TEXT,"
                " ip TEXT, date_added TEXT)"
            )
        else:
            statements.append(
                "CREATE TABLE oc_api_session (api_session_id INTEGER PRIMARY KEY, api_id INT,"
                " session_id TEXT, ip TEXT, date_added TEXT, date_modified TEXT)"
            )
        for statement in statements:
            self.db.execute(statement)
        self.db.execute(
            f"INSERT INTO oc_api (api_id, {name_column}, `key`, status) VALUES (1, 'Default', ?, 1),"
            f" (2, ?, ?, 1), (3, 'Disabled', 'd' || ?, 0)",
            ("x" * 64, USERNAME, API_KEY, API_KEY[1:]),
        )
        self.db.execute("INSERT INTO oc_api_ip (api_id, ip) VALUES (2, ?)", (self.allowed_ip,))
        self.db.execute(
            "INSERT INTO oc_setting (store_id, code, `key`, value, serialized)"
            " VALUES (0, 'config', 'config_api_id', '2', 0)"
        )
        self.db.execute(
            "INSERT INTO oc_order (order_id, order_status_id, date_added, date_modified)"
            " VALUES (?, 1, '2026-01-01 10:00:00', '2026-01-01 10:00:00')",
            (int(ORDER_ID),),
        )

    def reset(self) -> None:
        with self.lock:
            for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                self.db.execute(f"DROP TABLE {name}")
            self.create_schema()
        self.faults.expired_token = False
        self.faults.clock_skew_seconds = 0
        self.clear_writes()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if is_core_route(request):
            return handle_core(self, request)
        return SandboxResponse.text("<h1>Not Found</h1>", 404)

    # -- inspection ----------------------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        return [
            dict(row) for row in self.db.execute("SELECT * FROM oc_order_history ORDER BY order_history_id")
        ]

    def order_row(self) -> dict[str, Any]:
        return dict(self.db.execute("SELECT * FROM oc_order WHERE order_id = ?", (int(ORDER_ID),)).fetchone())

    def seed(self, products: int, orders: int, days: int, rng_seed: int = 0) -> None:  # pragma: no cover
        raise NotImplementedError

    def connector_credentials(self) -> dict[str, Any]:
        return {"api_username": USERNAME, "api_key": API_KEY}

    def add_order(self, **kwargs: Any) -> str:  # pragma: no cover
        raise NotImplementedError

    def stock_of(self, sku: str) -> int:  # pragma: no cover
        raise NotImplementedError

    def price_of(self, sku: str) -> Decimal:  # pragma: no cover
        raise NotImplementedError

    def tracking_numbers(self, order_external_id: str) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def order_status(self, order_external_id: str) -> str:
        return str(self.order_row()["order_status_id"])

    def order_count(self) -> int:  # pragma: no cover
        return 1


SANDBOX_FAMILIES = ["2.1", "2.2", "2.3", "3.0.3", "4.0", "4.1"]


class _Stores:
    """One running server per store variant for the whole module (a server stop costs ~0.5 s), each
    handed out freshly reset so tests never see each other's sessions or history."""

    def __init__(self) -> None:
        self.running: dict[tuple[str, str, str], tuple[MiniOpenCart, SandboxServer, httpx.Client]] = {}

    def get(
        self, family: str, *, version: str = "", allowed_ip: str = "127.0.0.1"
    ) -> tuple[MiniOpenCart, StoreHttp]:
        key = (family, version, allowed_ip)
        if key not in self.running:
            app = MiniOpenCart(family, version=version, allowed_ip=allowed_ip)
            self.running[key] = (app, SandboxServer(app).start(), httpx.Client(timeout=5))
        app, server, client = self.running[key]
        app.reset()
        return app, StoreHttp(
            server.url, platform="opencart", client=client, allow_private_hosts=True, max_retries=0
        )

    def close(self) -> None:
        for _app, server, client in self.running.values():
            client.close()
            server.stop()


@pytest.fixture(scope="module")
def stores() -> Iterator[_Stores]:
    running = _Stores()
    yield running
    running.close()


@pytest.fixture(params=SANDBOX_FAMILIES)
def store(request: pytest.FixtureRequest, stores: _Stores) -> tuple[MiniOpenCart, StoreHttp]:
    return stores.get(request.param)


def _client(http: StoreHttp, family: str, **kwargs: Any) -> OpenCartCoreClient:
    return OpenCartCoreClient(http, normalise_family(family), USERNAME, kwargs.pop("key", API_KEY), **kwargs)


COMMENT = 'Shipped with "UPS" & <Co> ~ Zürich.\nTracking number: 1Z999AA10123456784'


def test_check_connection_is_authenticated_and_writes_nothing(store: tuple[MiniOpenCart, StoreHttp]) -> None:
    app, http = store
    check = _client(http, app.family).check_connection()
    assert check.authenticated
    assert check.family == normalise_family(app.family)
    assert app.history() == []
    assert app.writes() == []


def test_add_history_stores_the_comment_escaped_and_sets_the_status(
    store: tuple[MiniOpenCart, StoreHttp],
) -> None:
    app, http = store
    before = app.order_row()["date_modified"]
    _client(http, app.family).add_history(ORDER_ID, "3", COMMENT, notify=True)
    rows = app.history()
    assert len(rows) == 1
    assert rows[0]["comment"] == (
        "Shipped with &quot;UPS&quot; &amp; &lt;Co&gt; ~ Zürich.\nTracking number: 1Z999AA10123456784"
    )
    assert html.unescape(rows[0]["comment"]) == COMMENT
    assert rows[0]["notify"] == 1
    assert app.order_status(ORDER_ID) == "3"
    after = app.order_row()["date_modified"]
    if app.family == "4.1":
        assert after == before, "4.1 history must not touch date_modified"
    else:
        assert after != before
    assert [w["kind"] for w in app.writes()] == ["history", "status"]


def test_unknown_order_is_order_not_found(store: tuple[MiniOpenCart, StoreHttp]) -> None:
    app, http = store
    with pytest.raises(OrderNotFound):
        _client(http, app.family).add_history("999", "3", "x", notify=False)
    assert app.history() == []


def test_wrong_key_is_an_auth_error(store: tuple[MiniOpenCart, StoreHttp]) -> None:
    app, http = store
    with pytest.raises(AuthError) as caught:
        _client(http, app.family, key="w" * 64).check_connection()
    expected = "signature_rejected" if app.family == "4.1" else "bad_key"
    assert caught.value.code == expected


@pytest.mark.parametrize("family", ["2.1", "2.3", "3.0.3", "4.0"])
def test_ip_not_in_the_allow_list_names_the_callers_ip(family: str, stores: _Stores) -> None:
    _app, http = stores.get(family, allowed_ip="203.0.113.4")
    with pytest.raises(AuthError) as caught:
        _client(http, family).check_connection()
    assert caught.value.code == "ip_not_allowed"
    assert "OpenCart refused the IP 127.0.0.1: add it to System > Users > API > IP addresses" in str(
        caught.value
    )


def test_41_ip_not_allowed_is_a_403_refusal_and_forwarded_for_is_trusted(stores: _Stores) -> None:
    app, http = stores.get("4.1", allowed_ip="203.0.113.4")
    with pytest.raises(AuthError) as caught:
        _client(http, "4.1").check_connection()
    assert caught.value.code == "signature_rejected"
    assert caught.value.status_code == 403
    # 4.1.0.4 takes the caller IP from X-Forwarded-For when present (seen on a real install).
    with httpx.Client(timeout=5, headers={"X-Forwarded-For": "203.0.113.4, 10.0.0.1"}) as forwarded:
        proxied = StoreHttp(http.base_url, platform="opencart", client=forwarded, allow_private_hosts=True)
        assert _client(proxied, "4.1").check_connection().authenticated
    assert app.writes() == []


@pytest.mark.parametrize("family", ["2.1", "2.3", "3.0.3", "4.0"])
def test_expired_session_logs_in_again_once(family: str, stores: _Stores) -> None:
    app, http = stores.get(family)
    client = _client(http, family)
    client.login()
    app.db.execute("DELETE FROM oc_api_session")  # the store forgot the session (idle > 1 h)
    client.add_history(ORDER_ID, "2", "again", notify=False)
    assert [row["comment"] for row in app.history()] == ["again"]


@pytest.mark.parametrize("family", ["2.3", "3.0.3", "4.0", "4.1"])
def test_revoked_credentials_end_in_an_auth_error_without_writing(family: str, stores: _Stores) -> None:
    app, http = stores.get(family)
    app.faults.expired_token = True
    with pytest.raises(AuthError):
        _client(http, family).add_history(ORDER_ID, "3", "x", notify=False)
    assert app.history() == []


def test_22_session_needs_the_phpsessid_cookie(stores: _Stores) -> None:
    app, http = stores.get("2.3")
    client = _client(http, "2.2")
    client.login()
    assert "PHPSESSID" in client.cookies
    client.cookies = httpx.Cookies()  # a client that drops the cookie is refused, then logs in again
    client.add_history(ORDER_ID, "2", "with cookie", notify=False)
    assert len(app.history()) == 1


def test_23_replies_carry_php_notices_before_the_json(stores: _Stores) -> None:
    _app, http = stores.get("2.3")
    response = http.request("POST", "index.php", params={"route": "api/login"}, data={"key": API_KEY})
    assert response.text.index("{") > 1500
    assert "#[\\ReturnTypeWillChange]" in response.text


def test_30_broken_login_is_detected_as_not_json(stores: _Stores) -> None:
    _app, http = stores.get("3.0.0")
    with pytest.raises(CoreLoginBroken) as caught:
        _client(http, "3.0.0").check_connection()
    assert "bridge" in str(caught.value)


def test_40_bad_token_is_a_500_fatal_page_and_no_token_a_404(stores: _Stores) -> None:
    _app, http = stores.get("4.0")
    no_token = http.request("POST", "index.php", params={"route": "api/sale/order|addHistory"})
    assert no_token.status_code == 404
    assert "cannot be found" in no_token.text
    with pytest.raises(TransientError) as bad_token:
        http.request(
            "POST", "index.php", params={"route": "api/sale/order|addHistory", "api_token": "0" * 26}
        )
    assert bad_token.value.status_code == 500
    assert "<b>Fatal error</b>" in (bad_token.value.raw or "")


def test_40_dot_separator_only_from_4_0_2(stores: _Stores) -> None:
    old, http = stores.get("4.0", version="4.0.1.1")
    client = _client(http, "4.0", version="4.0.2.3")  # a wrong version guess: '.' 404s, then '|' works
    client.add_history(ORDER_ID, "3", "sep", notify=False)
    assert [row["comment"] for row in old.history()] == ["sep"]
    app, http = stores.get("4.0", version="4.0.2.3")
    _client(http, "4.0", version="4.0.2.3").add_history(ORDER_ID, "3", "dot", notify=False)
    assert [row["comment"] for row in app.history()] == ["dot"]


def test_4000_api_is_open_and_the_check_warns(stores: _Stores) -> None:
    _app, http = stores.get("4.0", version="4.0.0.0")
    check = _client(http, "4.0", version="4.0.0.0").check_connection()
    assert any("without logging in" in warning for warning in check.warnings)
    _app, http = stores.get("4.0", version="4.0.2.3")
    assert _client(http, "4.0").check_connection().warnings == ()


def test_41_clock_skew_is_named(stores: _Stores) -> None:
    app, http = stores.get("4.1")
    app.faults.clock_skew_seconds = 900
    with pytest.raises(AuthError) as caught:
        _client(http, "4.1").check_connection()
    assert caught.value.code == "clock_skew"
    assert re.search(r"(89\d|90\d) seconds ahead of Storelink's", str(caught.value))


def test_41_accepted_calls_are_logged_in_api_history(stores: _Stores) -> None:
    app, http = stores.get("4.1")
    _client(http, "4.1").check_connection()
    rows = app.db.execute("SELECT `call`, ip FROM oc_api_history").fetchall()
    assert [tuple(row) for row in rows] == [("history_add", "127.0.0.1")]


def test_41_other_api_routes_are_403(stores: _Stores) -> None:
    _app, http = stores.get("4.1")
    response = http.request("POST", "index.php", params={"route": "api/account/login"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("family", "expected"),
    [("2.1", "2.1"), ("2.3", "2.2"), ("3.0.0", "3.0.0"), ("3.0.3", "3.0.3"), ("4.0", "4.0"), ("4.1", "4.1")],
)
def test_detect_family_over_loopback(family: str, expected: str, stores: _Stores) -> None:
    _app, http = stores.get(family)
    assert detect_family(http, USERNAME, API_KEY).family == expected
