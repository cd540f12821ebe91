"""Order dates in the zone the store's database really wrote them in, against the real PHP bridge.

OpenCart 2.1–2.3 write order dates with MySQL's ``NOW()`` and never set MySQL's session zone, while
PHP may run in another zone (``date.timezone``): with PHP on America/New_York and MySQL on UTC a first
sync found none of the new orders and dates were 5 hours off. OpenCart 3.0 and 4.x set every
session to PHP's zone (``SET time_zone = date('P')``), so their dates are in the store's zone. Each
store here runs ``php -S`` with its own ``date.timezone`` against the shared MariaDB, whose zone is
left as the server has it; orders are written the way each OpenCart writes them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.http import StoreHttp
from connectors.opencart.bridge_client import BridgeClient
from connectors.opencart.connector import _summer_time_warning, _zone_warning
from tests.bridge.harness import PhpStore, get_farm, zoned_farm

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


def place_at(store: PhpStore, moment: datetime, zone: str, rng_seed: int) -> str:
    """An order written the way OpenCart 3.0/4.x writes one at ``moment``: MySQL's session set to the
    store zone's offset *on that day* (``SET time_zone = date('P')`` on each page), then ``NOW()``."""
    order_id = store.data.add_order(status_id=1, seconds_ago=1, rng_seed=rng_seed)
    session = offset_text(int(moment.astimezone(ZoneInfo(zone)).utcoffset().total_seconds()))  # type: ignore[union-attr]
    written = f"FROM_UNIXTIME({int(moment.timestamp())})"
    store.data.server.run(
        f"SET time_zone = '{session}';\n"
        f"UPDATE `{store.prefix}order` SET date_added = {written}, date_modified = {written} "
        f"WHERE order_id = {int(order_id)};\n"
        f"UPDATE `{store.prefix}order_history` SET date_added = {written} WHERE order_id = {int(order_id)};",
        store.data.database,
    )
    return order_id


ZONES = ["Europe/Berlin", "America/Los_Angeles", "Australia/Sydney"]


@pytest.mark.parametrize(
    ("family", "zone"),
    [
        *((family, zone) for family in ("3.0.3", "4.0", "4.1") for zone in ZONES),
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

    # orders from either side of the summer-time change are each read at their own day's offset
    halves = {
        place_at(store, datetime(2026, 1, 15, 12, 0, tzinfo=UTC), zone, 960): datetime(
            2026, 1, 15, 12, 0, tzinfo=UTC
        ),
        place_at(store, datetime(2026, 7, 15, 12, 0, tzinfo=UTC), zone, 961): datetime(
            2026, 7, 15, 12, 0, tzinfo=UTC
        ),
    }
    older = {
        order.external_id: order
        for page in client.fetch_orders(None, lookback_days=400, import_statuses=[], page_size=250)
        for order in page.orders
    }
    for order_id, moment in halves.items():
        assert older[order_id].placed_at == moment, (order_id, moment)


@pytest.mark.mariadb_server
def test_2x_on_a_mysql_server_with_summer_time_reads_each_order_at_its_own_offset() -> None:
    """MySQL's zone is often the host's own (``SYSTEM``, reported as an abbreviation such as EST):
    a 2.x store then wrote a January order at UTC−5 and a July one at UTC−4. Each is read at the
    offset in force when it was written, not at the one in force when the bridge asks, and ``since``
    is turned into MySQL's time the same way."""
    farm = zoned_farm("America/New_York")
    store = farm.store("2.3", "oc_", "dst", php_timezone="UTC")  # PHP's default zone when unset
    moments = {
        "winter": datetime(2026, 1, 15, 17, 0, tzinfo=UTC),
        "summer": datetime(2026, 7, 15, 16, 0, tzinfo=UTC),
        "change-over day": datetime(2026, 3, 8, 15, 0, tzinfo=UTC),  # summer time began at 07:00 UTC
        "recent": datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5),
    }
    ids = {}
    for n, (name, moment) in enumerate(moments.items()):
        order_id = store.data.add_order(status_id=1, seconds_ago=1, rng_seed=950 + n)
        # what NOW() wrote at that moment on this server: its wall clock, summer time included
        written = f"FROM_UNIXTIME({int(moment.timestamp())})"
        store.data.server.run(
            f"UPDATE `{store.prefix}order` SET date_added = {written}, date_modified = {written} "
            f"WHERE order_id = {int(order_id)};\n"
            f"UPDATE `{store.prefix}order_history` SET date_added = {written} "
            f"WHERE order_id = {int(order_id)};",
            store.data.database,
        )
        ids[name] = order_id
    wall = store.data.query(
        f"SELECT order_id, date_added FROM `{store.prefix}order` WHERE order_id = ?", [ids["summer"]]
    )
    assert str(wall[0]["date_added"]) == "2026-07-15 12:00:00"  # EDT on the server, as 2.x wrote it
    client = client_for(store)
    info = client.info()
    assert (info.php_timezone, info.dates_written_in, info.database_time_zone) == (
        "UTC",
        "database",
        "SYSTEM",
    )
    assert _summer_time_warning(info) == ""
    older = _summer_time_warning(dataclasses.replace(info, bridge_version="1.3.0"))
    assert "an hour off" in older  # the file before this one is named

    orders = {
        order.external_id: order
        for page in client.fetch_orders(None, lookback_days=400, import_statuses=[], page_size=250)
        for order in page.orders
    }
    for name, moment in moments.items():
        assert orders[ids[name]].placed_at == moment, name

    # since (the store's time, here PHP's UTC) becomes MySQL's summer wall clock: the July order is
    # the first one after 15:30 UTC on 15 July, the January one is before it
    http = StoreHttp(store.url, platform="opencart", allow_private_hosts=True, timeout=10, backoff=0.01)
    credentials = store.credentials()
    raw = BridgeClient(http, credentials["api_username"], credentials["api_key"])
    page = raw._call("GET", "orders", {"since": "2026-07-15 15:30:00", "limit": 250})
    found = {str(row["order_id"]) for row in page["orders"]}
    assert ids["summer"] in found
    assert ids["recent"] in found
    assert ids["winter"] not in found
