"""Order dates in the zone the store's database really wrote them in, against the real PHP bridge.

OpenCart 2.1–2.3 write order dates with MySQL's ``NOW()`` and never set MySQL's session zone, while
PHP may run in another zone (``date.timezone``): with PHP on America/New_York and MySQL on UTC a first
sync found none of the new orders and dates were 5 hours off. OpenCart 3.0 and 4.x set every
session to PHP's zone (``SET time_zone = date('P')``), so their dates are in the store's zone. Each
store here runs ``php -S`` with its own ``date.timezone`` against the shared MariaDB, whose zone is
left as the server has it; orders are written the way each OpenCart writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.http import StoreHttp
from connectors.opencart.bridge_client import BridgeClient
from connectors.opencart.connector import _zone_warning
from tests.bridge.harness import PhpStore, get_farm

pytestmark = pytest.mark.php


def client_for(store: PhpStore) -> BridgeClient:
    http = StoreHttp(store.url, platform="opencart", allow_private_hosts=True, timeout=10, backoff=0.01)
    credentials = store.credentials()
    return BridgeClient(http, credentials["api_username"], credentials["api_key"])


def database_offset() -> int:
    rows = get_farm().server.run("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS o;")
    return int(rows[0]["o"])


def offset_text(seconds: int) -> str:
    minutes = abs(seconds) // 60
    return f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def place_orders(store: PhpStore, count: int, session_zone: str | None) -> dict[str, datetime]:
    """New orders dated ``NOW() - i minutes`` in the given MySQL session zone (None: MySQL's own, as
    2.x leaves it); returns each order's real moment in UTC."""
    placed = {}
    for i in range(1, count + 1):
        order_id = store.data.add_order(status_id=1, seconds_ago=1, rng_seed=900 + i)
        moment = f"NOW() - INTERVAL {60 * i} SECOND"
        zone = f"SET time_zone = '{session_zone}';\n" if session_zone else ""
        store.data.server.run(
            f"{zone}UPDATE `{store.prefix}order` SET date_added = {moment}, date_modified = {moment} "
            f"WHERE order_id = {int(order_id)};\n"
            f"UPDATE `{store.prefix}order_history` SET date_added = {moment} "
            f"WHERE order_id = {int(order_id)};",
            store.data.database,
        )
        placed[order_id] = datetime.now(UTC) - timedelta(seconds=60 * i)
    return placed


def first_sync(client: BridgeClient) -> dict[str, object]:
    return {
        order.external_id: order
        for page in client.fetch_orders(None, lookback_days=1, import_statuses=[], page_size=250)
        for order in page.orders
    }


def test_2x_dates_are_read_in_mysql_zone_when_php_runs_in_another() -> None:
    offset = database_offset()
    php_zone = "America/New_York"
    if int(datetime.now(ZoneInfo(php_zone)).utcoffset().total_seconds()) == offset:  # type: ignore[union-attr]
        php_zone = "Asia/Tokyo"  # the server itself runs in New York's zone: differ from it anyway
    store = get_farm().store("2.3", "oc_", "php-zone", php_timezone=php_zone)
    placed = place_orders(store, 7, None)
    client = client_for(store)

    info = client.info()
    assert (info.php_timezone, info.database_utc_offset, info.dates_written_in) == (
        php_zone,
        offset,
        "database",
    )
    orders = first_sync(client)
    assert set(placed) <= set(orders), f"the first sync found {len(set(placed) & set(orders))} of 7"
    for order_id, moment in placed.items():
        assert abs(orders[order_id].placed_at - moment) < timedelta(seconds=90), order_id  # type: ignore[attr-defined]

    # a history row the bridge writes is dated like OpenCart 2.x's own rows: in MySQL's time
    order_id = next(iter(placed))
    client.add_history(order_id, 2, "checked", False)
    drift = store.data.query(
        f"SELECT TIMESTAMPDIFF(SECOND, date_added, NOW()) AS d FROM `{store.prefix}order_history` "
        "ORDER BY order_history_id DESC LIMIT 1"
    )
    assert abs(int(drift[0]["d"])) < 60
    (history_row,) = [row for row in client.history(order_id) if row["comment"] == "checked"]
    assert abs(history_row["date_added"] - datetime.now(UTC)) < timedelta(seconds=90)

    # the seller is told in words that the two clocks differ
    warning = _zone_warning(info)
    assert php_zone in warning
    assert "MySQL" in warning
    assert "hours off" in warning


def test_2x_with_php_and_mysql_on_the_same_zone_needs_no_warning() -> None:
    store = get_farm().store("2.3", "oc_")  # PHP on UTC like the shared server
    info = client_for(store).info()
    if info.database_utc_offset != 0:
        pytest.fail(
            f"the shared MariaDB is not on UTC (offset {info.database_utc_offset}); pick its zone here"
        )
    assert _zone_warning(info) == ""


@pytest.mark.parametrize(
    ("family", "zone"),
    [
        ("3.0.3", "Europe/Berlin"),
        ("4.0", "America/Los_Angeles"),
        ("4.1", "Australia/Sydney"),
        ("3.0.0", "Australia/Sydney"),  # no config_timezone: PHP's own zone is the store's
    ],
)
def test_30_and_4x_dates_are_read_in_the_store_zone(family: str, zone: str) -> None:
    farm = get_farm()
    has_setting = family != "3.0.0"
    store = farm.store(family, "oc_", f"tz-{zone.split('/')[1]}", php_timezone="UTC" if has_setting else zone)
    if has_setting:
        store.data.execute(
            f"UPDATE `{store.prefix}setting` SET value = ? WHERE `key` = 'config_timezone'", [zone]
        )
    # what OpenCart 3.0/4.x does on every page: MySQL's session set to the store zone's offset
    session = offset_text(int(datetime.now(ZoneInfo(zone)).utcoffset().total_seconds()))  # type: ignore[union-attr]
    placed = place_orders(store, 3, session)
    client = client_for(store)
    info = client.info()
    assert (info.timezone, info.dates_written_in) == (zone, "store")
    orders = first_sync(client)
    assert set(placed) <= set(orders)
    for order_id, moment in placed.items():
        assert abs(orders[order_id].placed_at - moment) < timedelta(seconds=90), order_id  # type: ignore[attr-defined]
    assert _zone_warning(info) == ""
