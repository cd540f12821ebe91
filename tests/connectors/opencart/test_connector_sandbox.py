"""OpenCartConnector end to end over loopback: the sandbox store (core API + bridge) per family.

Effects are checked from the store's side (its tables), and the path each write took is checked
from the requests the connector sent: core API (``index.php``) on every family whose API works,
the bridge on 3.0.0–3.0.2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from connectors.base import ConnectorOptions, ShipmentRequest
from connectors.errors import AuthError, PermanentError, ProtocolError, RateLimited, TransientError
from connectors.opencart.connector import OpenCartConnector
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import OpenCartSandbox

T = TypeVar("T")
FAMILIES = ["2.1", "2.3", "3.0.0", "3.0.3", "4.0", "4.1"]
TRACKING = "1Z999AA10123456784"


class Running:
    def __init__(self, family: str, **options: Any) -> None:
        self.app = OpenCartSandbox(family=family, **options)
        self.app.seed(6, 12, 5, 3)
        if family == "2.1":
            # 2.1 checks the IP list of Settings > Option > API User: point it at Storelink's user.
            self.app.db.execute(
                f"UPDATE {self.app.t('setting')} SET value = '2' WHERE `key` = 'config_api_id'"
            )
        self.server = SandboxServer(self.app).start()
        self.sent: list[httpx.Request] = []
        self.client = httpx.Client(timeout=5, event_hooks={"request": [self.sent.append]})

    def connector(self, *, timeout: float = 5.0, **overrides: Any) -> OpenCartConnector:
        credentials = self.app.connector_credentials() | overrides.pop("credentials", {})
        settings = self.app.connector_settings() | overrides
        return OpenCartConnector(
            self.app.connector_store_url(),
            credentials,
            settings,
            http=self.client,
            options=ConnectorOptions(allow_private_hosts=True, timeout=timeout, max_retries=2, backoff=0.01),
        )

    def paths_of_writes(self) -> list[str]:
        return [r.url.path for r in self.sent if r.method == "POST" and b"order_status_id=0" not in r.content]

    def first_order(self) -> str:
        rows = self.app.query(f"SELECT order_id FROM {self.app.t('order')} WHERE order_status_id = 1 LIMIT 1")
        return str(rows[0]["order_id"])

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture(params=FAMILIES)
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    store = Running(request.param)
    yield store
    store.close()


def test_connection_reports_facts_and_changes_nothing(running: Running) -> None:
    facts = running.connector().test_connection()
    assert facts.platform_version.startswith("OpenCart ")
    assert facts.base_currency == "USD"
    assert {"1", "3"} <= {status.code for status in facts.order_statuses}
    assert running.app.writes() == []
    expected_core = "ok" if running.app.family != "3.0.0" else "unavailable"
    assert facts.details["core_api"].startswith(expected_core)


def test_auto_detection_agrees_with_the_store(running: Running) -> None:
    facts = running.connector(version_family="auto").test_connection()
    assert facts.details["family"] == {"2.3": "2.2"}.get(running.app.family, running.app.family)


def test_shipment_is_confirmed_once_through_the_right_half(running: Running) -> None:
    order_id = running.first_order()
    connector = running.connector()
    request = ShipmentRequest(
        order_external_id=order_id, tracking_numbers=(TRACKING,), carrier="UPS", processed_status="3"
    )
    connector.confirm_shipment(request)
    assert TRACKING in running.app.tracking_numbers(order_id)
    assert running.app.order_status(order_id) == "3"
    writes = running.app.writes()
    assert [w["kind"] for w in writes] == ["history", "status"]
    assert writes[0]["value"] == f"Shipped with UPS.\nTracking number: {TRACKING}"
    via = "/storelink-bridge.php" if running.app.family == "3.0.0" else "/index.php"
    assert via in running.paths_of_writes()
    connector.confirm_shipment(request)
    assert running.app.writes() == writes, "a second confirmation wrote to the store"


def test_special_characters_survive_the_round_trip(running: Running) -> None:
    order_id = running.first_order()
    request = ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=("JJD0099&<1>",),
        carrier='DHL "Express" ~ Zürich',
        processed_status="3",
    )
    connector = running.connector()
    connector.confirm_shipment(request)
    stored = running.app.history_comments(order_id)[-1]
    assert stored == 'Shipped with DHL "Express" ~ Zürich.\nTracking number: JJD0099&<1>'
    connector.confirm_shipment(request)
    assert running.app.history_comments(order_id).count(stored) == 1


def _with_retries(operation: Callable[[], T], attempts: int = 30) -> T:
    for attempt in range(attempts):
        try:
            return operation()
        except (TransientError, ProtocolError, RateLimited):
            if attempt == attempts - 1:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


def test_faults_never_double_a_shipment(running: Running) -> None:
    order_id = running.first_order()
    running.app.faults.update(
        {
            "error_rate": 0.3,
            "kinds": ["500", "timeout", "garbage", "truncated"],
            "timeout_seconds": 0.2,
            "seed": 5,
        }
    )
    connector = running.connector(timeout=0.5)
    request = ShipmentRequest(
        order_external_id=order_id, tracking_numbers=("TRACK-FAULTS-1",), processed_status="3"
    )
    _with_retries(lambda: connector.confirm_shipment(request))
    _with_retries(lambda: connector.confirm_shipment(request))
    running.app.faults.update({"error_rate": 0.0})
    assert running.app.tracking_numbers(order_id).count("TRACK-FAULTS-1") == 1
    assert running.app.order_status(order_id) == "3"


def test_a_write_whose_reply_was_lost_is_recognised_by_its_reference(running: Running) -> None:
    """The store applies the history write and the reply never arrives: the retry finds the row
    holding this shipment's reference and writes nothing, so the order has one row and the customer
    one e-mail."""
    order_id = running.first_order()
    connector = running.connector(timeout=2.0)
    connector.test_connection()  # log in first: the dropped reply is the write's, not the login's
    request = ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=(TRACKING,),
        carrier="UPS",
        processed_status="3",
        reference="SL-1a2b3c4d5e6f",
    )
    running.app.faults.update({"drop_reply_after_write": 1})
    with pytest.raises(TransientError):
        connector.confirm_shipment(request)
    assert [w["kind"] for w in running.app.writes()] == ["history", "status"], "the write was applied"
    result = connector.confirm_shipment(request)
    assert result.warnings == ("Already confirmed on the store; nothing was sent again.",)
    comments = running.app.history_comments(order_id)
    assert [c for c in comments if "SL-1a2b3c4d5e6f" in c] == [
        f"Shipped with UPS.\nTracking number: {TRACKING}\nReference: SL-1a2b3c4d5e6f"
    ]
    assert [w["kind"] for w in running.app.writes()] == ["history", "status"]
    assert running.app.order_status(order_id) == "3"


def test_a_partial_write_whose_reply_was_lost_is_not_repeated(running: Running) -> None:
    """Without the reference a retried partial shipment could not tell its own row from the order's
    earlier rows in the same status."""
    order_id = running.first_order()
    connector = running.connector(timeout=2.0)
    connector.test_connection()
    request = ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=(),
        processed_status="3",
        is_partial=True,
        reference="SL-00000000beef",
    )
    running.app.faults.update({"drop_reply_after_write": 1})
    with pytest.raises(TransientError):
        connector.confirm_shipment(request)
    connector.confirm_shipment(request)
    assert sum("SL-00000000beef" in c for c in running.app.history_comments(order_id)) == 1
    assert running.app.order_status(order_id) == "1", "a partial shipment keeps the order Pending"


# --------------------------------------------------------------------------------------------------
# What test_connection tells the seller
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["2.3", "3.0.0", "3.0.3", "4.1"])
def test_bridge_not_uploaded(family: str) -> None:
    store = Running(family, bridge_installed=False)
    try:
        with pytest.raises(PermanentError) as caught:
            store.connector().test_connection()
        assert caught.value.code == "bridge_missing"
        lead = "OpenCart's API login works, but the store bridge: "
        if family == "3.0.0":
            lead = (
                "OpenCart 3.0.0.0–3.0.2.0 cannot use its own API, so everything goes through the store bridge"
            )
        assert str(caught.value).startswith(lead)
        assert "storelink-bridge.php" in str(caught.value)
    finally:
        store.close()


@pytest.mark.parametrize("family", ["2.3", "3.0.3", "4.0", "4.1"])
def test_wrong_key(family: str) -> None:
    store = Running(family)
    try:
        with pytest.raises(AuthError) as caught:
            store.connector(credentials={"api_key": "f" * 64}).test_connection()
        assert caught.value.code == "bad_key", "a wrong key is always a key error"
        assert "key of the API user 'Storelink'" in str(caught.value)
        assert "does not answer like OpenCart" not in str(caught.value)
    finally:
        store.close()


@pytest.mark.parametrize("family", ["3.0.3", "4.0"])
def test_ip_not_allowed_names_the_callers_ip(family: str) -> None:
    store = Running(family)
    try:
        with pytest.raises(AuthError) as caught:
            store.connector(credentials={"api_username": "Elsewhere"}).test_connection()
        assert caught.value.code == "ip_not_allowed"
        assert "OpenCart refused the IP 127.0.0.1: add it to System > Users > API > IP addresses" in str(
            caught.value
        )
    finally:
        store.close()


def _refusal(family: str, store_options: dict[str, Any], **overrides: Any) -> Exception:
    store = Running(family, **store_options)
    try:
        with pytest.raises((AuthError, PermanentError, ProtocolError, TransientError)) as caught:
            store.connector(timeout=2.0, **overrides).test_connection()
        assert store.app.writes() == []
        return caught.value
    finally:
        store.close()


@pytest.mark.parametrize("family", ["2.3", "3.0.3"])
def test_mode_bridge_missing_while_the_core_refuses_after_login(family: str) -> None:
    """OpenCart 2.3 without the bridge answered its own history call 'no permission' right after a
    good login, with the IP listed and the user enabled: the missing file is the cause, not the IP
    list or the user."""
    error = _refusal(family, {"bridge_installed": False, "core_session_refused": True})
    assert error.code == "bridge_missing"  # type: ignore[attr-defined]
    message = str(error)
    assert "bridge file was not found" in message
    assert "storelink-bridge.php" in message
    assert "IP address" not in message
    assert "disabled" not in message


@pytest.mark.parametrize("family", ["2.3", "3.0.0", "3.0.3", "4.0", "4.1"])
def test_mode_key_wrong(family: str) -> None:
    error = _refusal(family, {"display_errors": False}, credentials={"api_key": "f" * 64})
    assert isinstance(error, AuthError)
    assert error.code in ("bad_key", "unauthorized"), "a wrong key is always a key error"
    assert any(words in str(error) for words in ("key of the API user", "refused Storelink's key"))
    assert "does not answer like OpenCart" not in str(error)


@pytest.mark.parametrize("family", ["3.0.3", "4.0", "4.1", "3.0.0"])
def test_mode_user_disabled(family: str) -> None:
    error = _refusal(family, {}, credentials={"api_username": "Disabled"})
    assert isinstance(error, AuthError)
    assert error.code == "user_disabled"
    assert "The OpenCart API user 'Disabled' is disabled; enable it under System > Users > API." in str(error)
    assert "did not accept the API username and key" not in str(error)


@pytest.mark.parametrize("family", ["2.3", "3.0.3", "4.0", "4.1"])
def test_mode_ip_not_allowed(family: str) -> None:
    error = _refusal(family, {}, credentials={"api_username": "Elsewhere"})
    assert isinstance(error, AuthError)
    assert error.code == "ip_not_allowed"
    assert "127.0.0.1" in str(error)
    assert "IP address" in str(error)


def test_mode_core_api_broken_in_this_version_is_a_warning_when_the_bridge_works() -> None:
    """3.0.0-3.0.2 with display_errors off: the broken login is an empty 500, not a store outage."""
    store = Running("3.0.0", display_errors=False)
    try:
        facts = store.connector(version_family="auto").test_connection()
        assert facts.details["core_api"].startswith("unavailable")
        assert any("3.0.0.0–3.0.2.0 cannot log in to its own API" in w for w in facts.warnings)
    finally:
        store.close()


def test_mode_core_api_broken_in_this_version_and_the_bridge_refuses_the_key() -> None:
    error = _refusal(
        "3.0.0", {"display_errors": False}, version_family="auto", credentials={"api_key": "f" * 64}
    )
    assert isinstance(error, AuthError)
    message = str(error)
    assert "3.0.0–3.0.2 cannot use their API" in message
    assert "refused Storelink's key" in message
    assert "does not answer like OpenCart" not in message
    assert "internal error" not in message


@pytest.mark.parametrize("family", ["2.3", "3.0.3", "4.1"])
def test_mode_store_down(family: str) -> None:
    store = Running(family)
    store.server.stop()
    try:
        with pytest.raises(TransientError) as caught:
            store.connector(timeout=1.0).test_connection()
        assert str(caught.value).startswith("The store does not answer: ")
        assert "OpenCart's API:" not in str(caught.value)
    finally:
        store.client.close()


def test_mode_store_times_out() -> None:
    store = Running("3.0.3")
    store.app.faults.update({"error_rate": 1.0, "kinds": ["timeout"], "timeout_seconds": 1.5})
    try:
        with pytest.raises(TransientError) as caught:
            store.connector(timeout=0.5).test_connection()
        assert str(caught.value).startswith("The store does not answer: ")
    finally:
        store.close()


def test_a_core_refusal_after_login_is_not_blamed_on_the_ip_list_when_the_bridge_works() -> None:
    error = _refusal("2.3", {"core_session_refused": True})
    assert error.code == "permission_denied"  # type: ignore[attr-defined]
    assert "those are not the cause" in str(error)


def test_41_clock_skew_is_named() -> None:
    store = Running("4.1")
    try:
        store.app.faults.clock_skew_seconds = 1800
        with pytest.raises(AuthError) as caught:
            store.connector().test_connection()
        assert caught.value.code == "clock_skew"
        assert "clock" in str(caught.value)
    finally:
        store.close()


def test_4000_open_api_warning() -> None:
    store = Running("4.0")
    try:
        store.app.opencart_version = "4.0.0.0"  # what the core routes behave as
        facts = store.connector().test_connection()
        assert any("without logging in" in warning for warning in facts.warnings)
    finally:
        store.close()


def test_the_core_api_session_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """OpenCart carries api_token in every URL after login; the HTTP layer's log lines must not."""
    app = OpenCartSandbox(family="3.0.3")
    app.seed(3, 3, 2, 1)
    with SandboxServer(app) as server, caplog.at_level("DEBUG", logger="connectors.http"):
        connector = OpenCartConnector(
            server.url,
            app.connector_credentials(),
            app.connector_settings(),
            options=ConnectorOptions(allow_private_hosts=True, backoff=0.01),
        )
        connector.test_connection()
        token = connector.core.token
        connector.close()
    ours = [record.getMessage() for record in caplog.records if record.name == "connectors.http"]
    assert token
    assert any("api_token=***" in message for message in ours)
    assert all(token not in message for message in ours)


def test_23_with_php_and_mysql_in_different_zones_warns_and_reads_dates_right() -> None:
    """OpenCart 2.x writes dates with MySQL's NOW(); PHP on New York and MySQL on UTC must neither hide
    new orders nor shift their dates, and test connection says in words that the clocks differ."""
    store = Running("2.3", php_timezone="America/New_York", database_zone="UTC")
    try:
        order_id = store.app.add_order(status_id=1, seconds_ago=120)
        connector = store.connector()
        facts = connector.test_connection()
        (warning,) = [w for w in facts.warnings if "MySQL" in w]
        assert "America/New_York" in warning
        assert "UTC+00:00" in warning
        assert facts.timezone == "America/New_York"
        orders = {o.external_id: o for page in connector.fetch_orders(None) for o in page.orders}
        assert order_id in orders
        placed = orders[order_id].placed_at
        assert abs(placed - datetime.now(UTC) + timedelta(seconds=120)) < timedelta(seconds=60)
    finally:
        store.close()


def test_23_with_php_and_mysql_on_one_zone_has_no_zone_warning() -> None:
    store = Running("2.3", php_timezone="UTC", database_zone="UTC")
    try:
        assert not [w for w in store.connector().test_connection().warnings if "MySQL" in w]
    finally:
        store.close()
