"""Hostile and broken requests against the bridge: each gets a clear JSON error, changes nothing and
leaks nothing (no paths, SQL, driver names or credentials).

Runs against the real PHP file on MariaDB (3.0 with ``oc_`` on mysqli, 4.1 with ``shop7_`` on PDO) and
against the sandbox emulation, which must answer with the same status and code.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.errors import AuthError
from connectors.http import StoreHttp
from connectors.opencart import bridge_client
from connectors.opencart.bridge_client import BridgeClient, canonical_query, sign_request
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import API_USERNAME, BRIDGE_VERSION, OpenCartSandbox, OpenCartStoreData
from tests.bridge.harness import SEED_DAYS, SEED_ORDERS, SEED_PRODUCTS, SEED_RNG, PhpBridgeServer, get_farm
from tests.bridge.mysql_counter import MySqlCounter

CASES = [
    pytest.param(("php", "3.0.3", "oc_"), id="php-3.0.3-oc_", marks=pytest.mark.php),
    pytest.param(("php", "4.1", "shop7_"), id="php-4.1-shop7_", marks=pytest.mark.php),
    pytest.param(("php", "2.3", "oc_"), id="php-2.3-oc_", marks=pytest.mark.php),
    pytest.param(("sandbox", "3.0.3", "oc_"), id="sandbox-3.0.3"),
    pytest.param(("sandbox", "4.1", "shop7_"), id="sandbox-4.1"),
]
LEAK_MARKERS = (
    "/tmp",
    "/config.php",
    "SELECT",
    "mysqli",
    "PDO",
    "Warning",
    "Fatal",
    "sl_bridge_",
    "Stack trace",
)


@dataclass
class Target:
    url: str
    api_key: str
    store: OpenCartStoreData

    def send(
        self,
        method: str,
        params: list[tuple[str, str]],
        body: bytes = b"",
        *,
        user: str = API_USERNAME,
        key: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        sign_params: list[tuple[str, str]] | None = None,
        sign_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_urlsafe(24)
        signature = sign_request(
            key if key is not None else self.api_key,
            method,
            "/storelink-bridge.php",
            canonical_query(sign_params if sign_params is not None else params),
            user,
            stamp,
            nonce,
            sign_body if sign_body is not None else body,
        )
        all_headers = {
            "X-Storelink-User": user.replace("%", "%25").replace(" ", "%20"),
            "X-Storelink-Timestamp": stamp,
            "X-Storelink-Nonce": nonce,
            "X-Storelink-Signature": signature,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        return httpx.request(
            method,
            f"{self.url}/storelink-bridge.php?{canonical_query(params)}",
            content=body or None,
            headers=all_headers,
            timeout=10,
        )

    def post(self, action: str, payload: Any, **kwargs: Any) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.send("POST", [("action", action)], body, **kwargs)


@pytest.fixture(params=CASES)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    kind, family, prefix = request.param
    if kind == "php":
        store = get_farm().store(family, prefix)
        yield Target(store.url, store.api_key, store.data)
        return
    app = OpenCartSandbox(family=family, prefix=prefix, rng_seed=SEED_RNG)
    app.seed(SEED_PRODUCTS, SEED_ORDERS, SEED_DAYS, SEED_RNG)
    with SandboxServer(app) as server:
        yield Target(server.url, app.api_key, app)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert data["ok"] is False
    assert data["error"]["code"] == code
    assert data["error"]["message"]
    for marker in LEAK_MARKERS:
        assert marker not in response.text, f"{marker!r} leaked: {response.text}"
    return data["error"]


def test_an_unsigned_get_only_says_what_it_is(target: Target) -> None:
    for query in ("", "?action=orders&since=2000-01-01%2000:00:00", "?action=info"):
        response = httpx.get(f"{target.url}/storelink-bridge.php{query}", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"name": "Storelink bridge", "bridge_version": BRIDGE_VERSION}


def test_missing_or_partial_signature_headers(target: Target) -> None:
    response = httpx.post(f"{target.url}/storelink-bridge.php?action=set_stock", content=b"{}", timeout=10)
    assert_error(response, 401, "unauthorized")
    response = httpx.get(
        f"{target.url}/storelink-bridge.php?action=info",
        headers={"X-Storelink-User": API_USERNAME},
        timeout=10,
    )
    assert_error(response, 401, "unauthorized")


def test_wrong_key_tampered_query_or_body_is_a_bad_signature(target: Target) -> None:
    assert target.send("GET", [("action", "info")]).status_code == 200
    assert_error(target.send("GET", [("action", "info")], key="0" * 64), 401, "unauthorized")
    assert_error(
        target.send(
            "GET",
            [("action", "products"), ("limit", "500")],
            sign_params=[("action", "products"), ("limit", "5")],
        ),
        401,
        "unauthorized",
    )
    before = target.store.stock_of("SL-0001")
    body = json.dumps({"items": [{"product_id": 1, "quantity": 999}]}).encode()
    signed = json.dumps({"items": [{"product_id": 1, "quantity": 1}]}).encode()
    assert_error(target.post("set_stock", body, sign_body=signed), 401, "unauthorized")
    assert target.store.stock_of("SL-0001") == before
    assert_error(
        target.send("GET", [("action", "info")], headers={"X-Storelink-Signature": "zz"}),
        401,
        "unauthorized",
    )


def test_unknown_disabled_and_ip_restricted_users(target: Target) -> None:
    assert_error(target.send("GET", [("action", "info")], user="Nobody"), 401, "unauthorized")
    assert_error(target.send("GET", [("action", "info")], user="' OR '1'='1"), 401, "unauthorized")
    assert_error(target.send("GET", [("action", "info")], user="Disabled"), 403, "user_disabled")
    error = assert_error(target.send("GET", [("action", "info")], user="Elsewhere"), 403, "ip_not_allowed")
    assert error["ip"] == "127.0.0.1"
    assert "127.0.0.1" in error["message"]


def test_stale_or_future_timestamps_say_the_skew(target: Target) -> None:
    error = assert_error(
        target.send("GET", [("action", "info")], timestamp=int(time.time()) - 1000), 401, "clock_skew"
    )
    assert -1002 <= error["skew_seconds"] <= -998
    assert str(error["skew_seconds"]) in error["message"]
    error = assert_error(
        target.send("GET", [("action", "info")], timestamp=int(time.time()) + 400), 401, "clock_skew"
    )
    assert 398 <= error["skew_seconds"] <= 402
    assert_error(target.send("GET", [("action", "info")], timestamp=-5), 401, "unauthorized")


def test_a_replayed_request_is_refused(target: Target) -> None:
    nonce = secrets.token_urlsafe(24)
    stamp = int(time.time())
    first = target.post(
        "set_stock", {"items": [{"product_id": 2, "quantity": 5}]}, nonce=nonce, timestamp=stamp
    )
    assert first.status_code == 200
    target.store.query(f"UPDATE {target.store.t('product')} SET quantity = 77 WHERE product_id = 2")
    again = target.post(
        "set_stock", {"items": [{"product_id": 2, "quantity": 5}]}, nonce=nonce, timestamp=stamp
    )
    assert_error(again, 401, "nonce_reused")
    assert target.store.stock_of("SL-0002") == 77
    assert_error(target.send("GET", [("action", "info")], nonce="short"), 401, "unauthorized")


def test_malformed_and_oversized_bodies(target: Target) -> None:
    assert_error(target.post("set_stock", b"{not json"), 400, "bad_json")
    assert_error(target.post("set_stock", b"[1, 2]"), 400, "bad_json")
    assert_error(target.post("set_stock", b'"text"'), 400, "bad_json")
    assert_error(target.post("set_stock", {"items": "all"}), 400, "invalid_input")
    assert_error(target.post("set_stock", {"items": []}), 400, "invalid_input")
    too_many = {"items": [{"product_id": 1, "quantity": 1}] * 101}
    assert_error(target.post("set_stock", too_many), 400, "invalid_input")
    huge = b'{"items": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert_error(target.post("set_stock", huge), 413, "body_too_large")


def test_unknown_actions_and_wrong_methods(target: Target) -> None:
    assert_error(target.send("GET", [("action", "drop_tables")]), 404, "unknown_action")
    assert_error(target.send("GET", []), 404, "unknown_action")
    assert_error(target.send("GET", [("action", "set_stock")]), 405, "method_not_allowed")
    assert_error(target.post("info", {}), 405, "method_not_allowed")
    assert_error(target.send("GET", [("action", "info"), ("x[]", "1")]), 400, "bad_request")
    response = httpx.get(
        f"{target.url}/storelink-bridge.php?action=info&action=orders",
        headers={
            "X-Storelink-User": API_USERNAME,
            "X-Storelink-Timestamp": "1",
            "X-Storelink-Nonce": "n" * 20,
            "X-Storelink-Signature": "0" * 64,
        },
        timeout=10,
    )
    assert_error(response, 401, "unauthorized")


def test_negative_and_non_numeric_values_change_nothing(target: Target) -> None:
    stock = target.store.stock_of("SL-0001")
    price = target.store.price_of("SL-0001")
    for item in (
        {"product_id": 1, "quantity": -1},
        {"product_id": 1, "quantity": "5"},
        {"product_id": 1, "quantity": 1.5},
        {"product_id": 1, "quantity": True},
        {"product_id": 1, "quantity": 100000000},
        {"product_id": "1 OR 1=1", "quantity": 5},
        {"product_id": 1, "product_option_value_id": -3, "quantity": 5},
        {"quantity": 5},
    ):
        # a valid item first: the whole batch is refused, so it must not be applied either
        assert_error(
            target.post("set_stock", {"items": [{"product_id": 1, "quantity": 3}, item]}),
            400,
            "invalid_input",
        )
    for bad_price in (-1, "-1.00", "abc", "1e3", "12.34567", None, [], "1; DROP TABLE x"):
        assert_error(
            target.post(
                "set_price",
                {"items": [{"product_id": 1, "price": "1.00"}, {"product_id": 1, "price": bad_price}]},
            ),
            400,
            "invalid_input",
        )
    assert target.store.stock_of("SL-0001") == stock
    assert target.store.price_of("SL-0001") == price


def test_sql_injection_in_every_parameter_is_refused(target: Target) -> None:
    orders_before = target.store.order_count()
    for params in (
        [("action", "orders"), ("since", "2020-01-01' OR '1'='1")],
        [("action", "orders"), ("cursor", "2020-01-01 00:00:00|1 OR 1=1")],
        [("action", "orders"), ("since", "2020-01-01 00:00:00"), ("statuses", "1) OR (1=1")],
        [("action", "orders"), ("since", "2020-01-01 00:00:00"), ("limit", "10;--")],
        [("action", "orders"), ("since", "2020-01-01 00:00:00"), ("limit", "251")],
        [("action", "order"), ("id", "1 OR 1=1")],
        [("action", "order")],
        [("action", "products"), ("after", "0 UNION SELECT 1")],
        [("action", "products"), ("limit", "0")],
    ):
        assert_error(target.send("GET", params), 400, "invalid_input")
    assert_error(
        target.post("add_history", {"order_id": "1 OR 1=1", "order_status_id": 3}), 400, "invalid_input"
    )
    assert_error(
        target.post("add_history", {"order_id": 1, "order_status_id": 3, "notify": "yes"}),
        400,
        "invalid_input",
    )
    assert_error(
        target.post("add_history", {"order_id": 1, "order_status_id": 3, "comment": ["x"]}),
        400,
        "invalid_input",
    )
    assert_error(
        target.post("add_history", {"order_id": 999999, "order_status_id": 3}), 404, "order_not_found"
    )
    assert_error(target.post("add_history", {"order_id": 1, "order_status_id": 4}), 400, "unknown_status")
    assert_error(target.send("GET", [("action", "order"), ("id", "999999")]), 404, "order_not_found")

    comment = "'); DROP TABLE oc_order; -- \\ %"
    response = target.post("add_history", {"order_id": 1, "order_status_id": 2, "comment": comment})
    assert response.status_code == 200, response.text
    assert target.store.history_comments("1")[-1] == comment
    assert target.store.order_count() == orders_before


def stranger_requests(target: Target) -> dict[str, httpx.Response]:
    """Every way a caller without the key can fail, each a request that reaches the lookup or stops before."""
    stale = int(time.time()) - 1000
    return {
        "unknown user": target.send("GET", [("action", "info")], user="Nobody"),
        "injection in the user": target.send("GET", [("action", "info")], user="' OR '1'='1"),
        "wrong key": target.send("GET", [("action", "info")], key="0" * 64),
        "bad signature": target.send(
            "GET", [("action", "info")], headers={"X-Storelink-Signature": "f" * 64}
        ),
        "malformed signature": target.send(
            "GET", [("action", "info")], headers={"X-Storelink-Signature": "zz"}
        ),
        "stale timestamp, bad signature": target.send(
            "GET", [("action", "info")], key="0" * 64, timestamp=stale
        ),
        "stale timestamp, unknown user": target.send(
            "GET", [("action", "info")], user="Nobody", timestamp=stale
        ),
        "malformed nonce": target.send("GET", [("action", "info")], nonce="short"),
        "partial headers": httpx.get(
            f"{target.url}/storelink-bridge.php?action=info",
            headers={"X-Storelink-User": "Storelink"},
            timeout=10,
        ),
        "unsigned write": httpx.post(
            f"{target.url}/storelink-bridge.php?action=set_stock", content=b"{}", timeout=10
        ),
    }


def test_every_refusal_before_the_signature_is_one_answer(target: Target) -> None:
    answers = stranger_requests(target)
    first = answers["unknown user"]
    assert_error(first, 401, "unauthorized")
    for case, response in answers.items():
        assert (response.status_code, response.content) == (first.status_code, first.content), case
    for word in ("server_time", "skew", "user", "database", "Nobody"):
        assert word not in first.text
    # the same key with a stale clock is told the skew: only a caller holding the key learns the time
    error = assert_error(
        target.send("GET", [("action", "info")], timestamp=int(time.time()) - 1000), 401, "clock_skew"
    )
    assert -1002 <= error["skew_seconds"] <= -998


def php_store_folder(name: str, port: int, database: str) -> tuple[Path, PhpBridgeServer]:
    """A store folder beside the farm's whose config.php points at ``127.0.0.1:<port>``."""
    farm = get_farm()
    store = farm.store("3.0.3", "oc_")
    folder = farm.root / name
    folder.mkdir(exist_ok=True)
    (folder / "storelink-bridge.php").write_bytes(
        (store.server.docroot / "storelink-bridge.php").read_bytes()
    )
    cache_dir = farm.root / f"{name}-cache"
    cache_dir.mkdir(exist_ok=True)
    settings = farm.server.settings
    (folder / "config.php").write_text(
        "<?php\n"
        f"define('DIR_CACHE', '{cache_dir}/');\n"
        "define('DB_DRIVER', 'mysqli');\ndefine('DB_HOSTNAME', '127.0.0.1');\n"
        f"define('DB_USERNAME', '{settings['user']}');\ndefine('DB_PASSWORD', '{settings['password']}');\n"
        f"define('DB_DATABASE', '{database}');\ndefine('DB_PORT', '{port}');\ndefine('DB_PREFIX', 'oc_');\n",
        encoding="utf-8",
    )
    server = PhpBridgeServer(folder).start()
    farm.servers.append(server)  # stopped at exit even when an assertion ends the test early
    return cache_dir, server


@pytest.mark.php
def test_a_stranger_costs_at_most_the_key_lookup_and_a_database_that_is_down_looks_the_same() -> None:
    farm = get_farm()
    store = farm.store("3.0.3", "oc_")
    settings = farm.server.settings
    lookup = "SELECT * FROM `oc_api` ORDER BY api_id"
    with MySqlCounter(settings["host"], settings["port"]) as relay:
        cache_dir, server = php_store_folder("counted-store", relay.port, store.data.database)
        target = Target(server.url, store.api_key, store.data)
        # malformed headers never reach the database
        assert_error(target.send("GET", [("action", "info")], nonce="short"), 401, "unauthorized")
        assert relay.take().connections == 0

        started = time.monotonic()
        uniform = target.send("GET", [("action", "info")], user="Nobody")
        assert_error(uniform, 401, "unauthorized")
        seen = relay.take()
        assert (seen.connections, seen.statements) == (1, [f"EXECUTE {[lookup]}"]), seen
        # the lookup is cached: a burst of strangers costs no further query
        answers = stranger_requests(target)
        seen = relay.take()
        allowed = 1 + int((time.monotonic() - started) // 5)
        assert all(statement == f"EXECUTE {[lookup]}" for statement in seen.statements), seen
        assert len(seen.statements) < allowed, seen
        for case, response in answers.items():
            assert response.content == uniform.content, case

        cached = list(cache_dir.glob("storelink-bridge-*.php"))
        assert len(cached) == 1
        assert cached[0].read_bytes().startswith(b"<?php exit; ?>")
        assert cached[0].stat().st_mode & 0o077 == 0

        # the seller's own requests work from the cached key, and every check after it reads the database
        assert target.send("GET", [("action", "statuses")]).status_code == 200
        seen = relay.take()
        assert lookup not in " ".join(seen.statements)
        assert any("api_ip" in statement for statement in seen.statements)
    try:
        # the relay is gone: the database is down. A caller holding the key (cached) is told so ...
        assert_error(target.send("GET", [("action", "info")]), 503, "store_db_unavailable")
        # ... a stranger gets the uniform answer, whether or not the bridge may ask the database
        for case, response in stranger_requests(target).items():
            assert (response.status_code, response.content) == (401, uniform.content), case
        time.sleep(5.2)
        assert target.send("GET", [("action", "info")], key="1" * 64).content == uniform.content
    finally:
        server.stop()

    # a store whose database is down and whose key was never cached cannot tell anyone anything
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = int(probe.getsockname()[1])
    _, down = php_store_folder("down-store", closed_port, store.data.database)
    try:
        target = Target(down.url, store.api_key, store.data)
        assert target.send("GET", [("action", "info")]).content == uniform.content
        for case, response in stranger_requests(target).items():
            assert (response.status_code, response.content) == (401, uniform.content), case
    finally:
        down.stop()


@pytest.mark.php
def test_broken_store_configuration_is_refused_without_leaking() -> None:
    farm = get_farm()
    store = farm.store("3.0.3", "oc_")
    folder = farm.root / "broken-store"
    folder.mkdir(exist_ok=True)
    (folder / "storelink-bridge.php").write_bytes(
        (store.server.docroot / "storelink-bridge.php").read_bytes()
    )
    cache_dir = farm.root / "broken-store-cache"
    cache_dir.mkdir(exist_ok=True)
    # the key cache goes to OpenCart's cache folder (else the system temp folder) even when it stays empty
    (folder / "config.php").write_text(
        f"<?php\ndefine('DIR_CACHE', '{cache_dir}/');\n"
        "define('DB_DRIVER', 'mysqli');\ndefine('DB_HOSTNAME', '127.0.0.1');\n"
        "define('DB_USERNAME', 'sl_no_such_user');\ndefine('DB_PASSWORD', 'sekret-password');\n"
        "define('DB_DATABASE', 'sl_bridge_missing_db');\ndefine('DB_PORT', '3306');\ndefine('DB_PREFIX', "
        "'oc_');\n",
        encoding="utf-8",
    )
    server = PhpBridgeServer(folder).start()
    try:
        target = Target(server.url, store.api_key, store.data)
        refused = assert_error(target.send("GET", [("action", "info")]), 401, "unauthorized")
        assert "sekret" not in json.dumps(refused)
        (folder / "config.php").unlink()
        assert assert_error(target.send("GET", [("action", "info")]), 401, "unauthorized") == refused
        assert (
            httpx.get(f"{server.url}/storelink-bridge.php", timeout=10).json()["bridge_version"]
            == BRIDGE_VERSION
        )
    finally:
        server.stop()


def test_storelink_names_the_key_for_the_uniform_refusal_and_the_clock_for_a_skew(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the seller reads: a refused key is a key error that also names what else can cause it;
    a right key on a wrong clock is told the skew, since only then does the bridge reveal it."""
    http = StoreHttp(target.url, platform="opencart", allow_private_hosts=True, timeout=10, backoff=0.01)
    with pytest.raises(AuthError) as refused:
        BridgeClient(http, API_USERNAME, "0" * 64).info()
    assert refused.value.code == "unauthorized"
    assert "key" in refused.value.message
    assert "System > Users > API" in refused.value.message
    assert "database" in refused.value.message

    class LateClock:
        @staticmethod
        def time() -> float:
            return time.time() - 1000

    monkeypatch.setattr(bridge_client, "time", LateClock)
    with pytest.raises(AuthError) as skewed:
        BridgeClient(http, API_USERNAME, target.api_key).info()
    assert skewed.value.code == "clock_skew"
    assert "clock" in skewed.value.message
