"""One contract suite, every platform: the same assertions against each sandbox store over loopback.

What a seller relies on is checked from the *store's* side (the sandbox's inspection API), not from
what the connector says it did: all orders arrive across pages, a shipment shows up on the store once,
stock and prices read back as pushed. The fault run repeats the same work through 5xx, timeouts,
garbage and truncated replies, retrying the way a worker would, and must end in the same store state
with no shipment written twice.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from connectors.base import (
    Connector,
    ConnectorOptions,
    Order,
    PriceUpdate,
    ShipmentLine,
    ShipmentRequest,
    StockUpdate,
)
from connectors.errors import AuthError, OrderClosedError, ProtocolError, RateLimited, TransientError
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer, make_sandbox
from inventory.prices import channel_price
from orders.download import totals_mismatch

T = TypeVar("T")

CASES = [
    pytest.param(("xcart", {"flavour": "addon"}), id="xcart-5.4-addon"),
    pytest.param(("xcart", {"flavour": "builtin"}), id="xcart-5.5-builtin"),
    pytest.param(("threedcart", {}), id="threedcart"),
    # 2.x writes MySQL's NOW() and never aligns MySQL with PHP: the two clocks differ here, as on
    # many hosts (PHP on UTC, MySQL on the server's New York time)
    pytest.param(("opencart", {"family": "2.1", "database_zone": "America/New_York"}), id="opencart-2.1"),
    pytest.param(("opencart", {"family": "2.3", "database_zone": "America/New_York"}), id="opencart-2.3"),
    pytest.param(("opencart", {"family": "3.0.0"}), id="opencart-3.0.0"),
    pytest.param(("opencart", {"family": "3.0.3"}), id="opencart-3.0.3"),
    pytest.param(("opencart", {"family": "4.0"}), id="opencart-4.0"),
    pytest.param(("opencart", {"family": "4.1"}), id="opencart-4.1"),
]

SEED_PRODUCTS = 12
SEED_ORDERS = 75
SEED_DAYS = 10


class Store:
    """A running sandbox and a connector pointed at it."""

    def __init__(self, platform: str, options: dict[str, Any], *, timeout: float = 10.0) -> None:
        self.platform = platform
        self.app = make_sandbox(platform, **options)
        self.app.seed(SEED_PRODUCTS, SEED_ORDERS, SEED_DAYS, 7)
        if options.get("family") == "2.1":
            # 2.1 checks the IP list of Settings > Option > API User: the seller points it at the
            # bridge's API user (test connection says so when they have not).
            self.app.db.execute(
                f"UPDATE {self.app.t('setting')} SET value = '2' WHERE `key` = 'config_api_id'"  # type: ignore[attr-defined]
            )
        self.server = SandboxServer(self.app).start()
        self.timeout = timeout
        self.connector = self.build()
        self.platform_lacks_tracking = platform == "xcart" and options.get("flavour") == "builtin"

    def build(self, **settings_overrides: Any) -> Connector:
        settings = self.app.connector_settings() | settings_overrides
        options = ConnectorOptions(
            allow_private_hosts=True,
            timeout=self.timeout,
            max_retries=2,
            backoff=0.01,
            **self.app.connector_options(),
        )
        return build_connector(
            self.platform,
            self.app.connector_store_url(),
            self.app.connector_credentials(),
            settings,
            options=options,
        )

    def close(self) -> None:
        self.connector.close()
        self.server.stop()


@pytest.fixture(params=CASES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    platform, options = request.param
    running = Store(platform, options)
    yield running
    running.close()


def download_all(connector: Connector, checkpoint: str | None = None) -> tuple[list[Any], str | None]:
    orders: list[Any] = []
    last = checkpoint
    for page in connector.fetch_orders(checkpoint):
        orders.extend(page.orders)
        last = page.checkpoint
    return orders, last


def with_retries(operation: Callable[[], T], attempts: int = 40) -> T:
    """Retry like a worker does: transient, rate-limit and protocol errors are tried again."""
    for attempt in range(attempts):
        try:
            return operation()
        except (TransientError, ProtocolError, RateLimited) as exc:
            if attempt == attempts - 1:
                raise
            time.sleep(min(getattr(exc, "retry_after", 0.0), 0.2))
    raise AssertionError("unreachable")


def test_connect_reports_store_facts(store: Store) -> None:
    facts = store.connector.test_connection()
    assert facts.base_currency
    codes = {status.code for status in facts.order_statuses}
    assert str(store.app.connector_settings().get("processed_status", "")) in codes or not codes.isdisjoint(
        set(store.app.connector_settings().get("import_statuses", []))
    )
    assert store.app.writes() == [], "test_connection must not change the store"


def test_downloads_every_order_once_across_pages(store: Store) -> None:
    orders, checkpoint = download_all(store.connector)
    ids = [order.external_id for order in orders]
    assert len(ids) == len(set(ids)), "an order came twice in one download"
    assert len(ids) == store.app.order_count()
    assert checkpoint
    for order in orders:
        assert order.placed_at.tzinfo is not None
        assert order.lines, f"order {order.external_id} has no lines"
        assert all(isinstance(line.unit_price, Decimal) for line in order.lines)


def test_orders_that_add_up_in_the_stores_own_arithmetic_are_not_a_total_mismatch(store: Store) -> None:
    """Every seeded order adds up the way its store computes it (per-line rounding in the order's
    own currency included: OpenCart's EUR orders, X-Cart's included and added taxes, 3DCart's
    discounts); none may be flagged, and a total that really differs still is."""
    orders, _ = download_all(store.connector)
    flagged = [order.external_id for order in orders if totals_mismatch(order)]
    assert flagged == []
    assert any(order.currency != orders[0].currency for order in orders) or store.platform != "opencart"
    for sample in orders[:5]:
        assert totals_mismatch(dataclasses.replace(sample, total=sample.computed_total + Decimal(1)))


def test_a_new_order_is_dated_when_it_was_placed(store: Store) -> None:
    """Whatever zone the store writes its dates in (OpenCart 2.x: MySQL's, 3.0/4.x: the store's,
    3DCart: local time without an offset, X-Cart: epoch seconds), an order placed now arrives dated
    now, not hours off."""
    _, checkpoint = download_all(store.connector)
    before = datetime.now(UTC)
    new_id = store.app.add_order()
    orders, _ = download_all(store.connector, checkpoint)
    (order,) = [order for order in orders if order.external_id == new_id]
    assert before - timedelta(minutes=2) <= order.placed_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_incremental_download_picks_up_a_new_order(store: Store) -> None:
    _, checkpoint = download_all(store.connector)
    new_id = store.app.add_order()
    orders, _ = download_all(store.connector, checkpoint)
    assert new_id in {order.external_id for order in orders}


def _first_order_id(store: Store) -> str:
    """The first open order: a shipment for one the store has closed is refused."""
    orders, _ = download_all(store.connector)
    return next(order.external_id for order in orders if not order.closed)


def test_shipment_is_confirmed_on_the_store_once(store: Store) -> None:
    order_id = _first_order_id(store)
    processed = str(store.app.connector_settings()["processed_status"])
    shipment = ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=("1Z999AA10123456784",),
        carrier="UPS",
        processed_status=processed,
    )
    result = store.connector.confirm_shipment(shipment)
    if result.tracking_sent:
        assert "1Z999AA10123456784" in store.app.tracking_numbers(order_id)
    else:
        # X-Cart 5.5's built-in API cannot store tracking numbers: the seller must be told so.
        assert result.warnings, "tracking not sent and the seller not told"
    assert store.app.order_status(order_id) == processed
    writes_after_first = store.app.writes()
    store.connector.confirm_shipment(shipment)
    assert store.app.writes() == writes_after_first, "confirming the same shipment again wrote to the store"


#: The status a platform gives a partially shipped order when the seller chose none: 3DCart has its
#: own "Partial" (3); OpenCart and X-Cart leave the order's status as it was.
_OWN_PARTIAL_STATUS = {"threedcart": "3"}


def test_a_partial_shipment_leaves_the_order_open_and_the_last_one_moves_it(store: Store) -> None:
    """Shipping 1 unit of several must not give the whole order the processed status (the next
    download would close it and its other units would stop reserving stock); the shipment that
    completes the order does."""
    processed = str(store.app.connector_settings()["processed_status"])
    orders, _ = download_all(store.connector)
    order = next(
        o
        for o in orders
        if not o.closed
        and o.lines
        and sum(line.quantity for line in o.lines) >= 2
        and store.app.order_status(o.external_id) != processed
    )
    before = store.app.order_status(order.external_id)
    line = order.lines[0]
    partial = ShipmentRequest(
        order_external_id=order.external_id,
        tracking_numbers=("1ZPART00001",),
        carrier="UPS",
        lines=(ShipmentLine(line.external_line_id, 1),),
        processed_status=processed,
        is_partial=True,
        reference="SL-00000000part",
    )
    store.connector.confirm_shipment(partial)
    assert store.app.order_status(order.external_id) == _OWN_PARTIAL_STATUS.get(store.platform, before)
    if not store.platform_lacks_tracking:
        assert "1ZPART00001" in store.app.tracking_numbers(order.external_id)
    writes = store.app.writes()
    store.connector.confirm_shipment(partial)
    assert store.app.writes() == writes, "confirming the same partial shipment again wrote to the store"

    last = ShipmentRequest(
        order_external_id=order.external_id,
        tracking_numbers=("1ZREST00002",),
        carrier="UPS",
        processed_status=processed,
        reference="SL-00000000rest",
    )
    store.connector.confirm_shipment(last)
    assert store.app.order_status(order.external_id) == processed
    if not store.platform_lacks_tracking:
        assert {"1ZPART00001", "1ZREST00002"} <= set(store.app.tracking_numbers(order.external_id))


def test_stock_and_price_push_read_back(store: Store) -> None:
    listings = store.connector.list_listings()
    assert len({listing.sku for listing in listings}) >= 3
    chosen = listings[:3]
    stock = [
        StockUpdate(
            sku=item.sku, remote_id=item.remote_id, remote_variant_id=item.remote_variant_id, quantity=40 + i
        )
        for i, item in enumerate(chosen)
    ]
    prices = [
        PriceUpdate(
            sku=item.sku,
            remote_id=item.remote_id,
            remote_variant_id=item.remote_variant_id,
            price=Decimal(f"{19 + i}.95"),
        )
        for i, item in enumerate(chosen)
    ]
    assert all(result.ok for result in store.connector.push_stock(stock))
    assert all(result.ok for result in store.connector.push_prices(prices))
    for update in stock:
        assert store.app.stock_of(update.sku) == update.quantity
    for update in prices:
        assert store.app.price_of(update.sku) == update.price
    reread = {item.sku: item for item in store.connector.list_listings()}
    for update in stock:
        assert reread[update.sku].quantity == update.quantity


def test_the_price_field_means_what_the_connector_declares(store: Store) -> None:
    """A product master price of 249.50 net (or its gross at the store's tax rate) is sent the way the
    connector's ``tax_inclusive_prices`` says the store's price field works, and the store then
    charges exactly the master's gross at checkout: never the tax twice, never none. OpenCart's
    storefront shows prices with tax (``config_tax=1``) while its field stays net."""
    listing = next(
        item for item in store.connector.list_listings() if item.sku and not item.remote_variant_id
    )
    rate = store.app.tax_rate_of(listing.sku)
    assert rate > 0, "the sandbox must tax the product for the case to mean anything"
    declared_gross = store.connector.capabilities.tax_inclusive_prices
    currency = str(store.app.connector_settings().get("currency") or "USD")
    net = Decimal("249.50")
    gross = store.app.with_tax(net, rate)
    for master, master_gross in ((net, False), (gross, True)):
        sent = channel_price(
            master,
            tax_rate=rate,
            master_includes_tax=master_gross,
            store_includes_tax=declared_gross,
            currency=currency,
        )
        update = PriceUpdate(
            sku=listing.sku,
            remote_id=listing.remote_id,
            remote_variant_id=listing.remote_variant_id,
            price=sent,
        )
        assert all(result.ok for result in store.connector.push_prices([update]))
        assert store.app.price_of(listing.sku) == (gross if declared_gross else net)
        assert store.app.checkout_price_of(listing.sku) == gross
    if store.platform == "opencart":
        assert store.app.storefront_price_of(listing.sku) == gross  # displayed with tax, stored net


def test_the_same_work_through_faults_ends_in_the_same_state(store: Store) -> None:
    clean_orders, _ = download_all(store.connector)
    store.app.faults.update(
        {
            "error_rate": 0.2,
            "kinds": ["500", "timeout", "garbage", "truncated"],
            "timeout_seconds": 0.3,
            "seed": 11,
        }
    )
    store.timeout = 1.0
    store.connector = store.build()
    faulty_orders, _ = with_retries(lambda: download_all(store.connector))
    assert {o.external_id for o in faulty_orders} == {o.external_id for o in clean_orders}

    processed = str(store.app.connector_settings()["processed_status"])
    order_id = clean_orders[-1].external_id
    shipment = ShipmentRequest(
        order_external_id=order_id, tracking_numbers=("TRACK-FAULTS-1",), processed_status=processed
    )
    with_retries(lambda: store.connector.confirm_shipment(shipment))
    with_retries(lambda: store.connector.confirm_shipment(shipment))

    listings = with_retries(store.connector.list_listings)
    target = listings[0]
    update = StockUpdate(
        sku=target.sku, remote_id=target.remote_id, remote_variant_id=target.remote_variant_id, quantity=7
    )
    results = with_retries(lambda: store.connector.push_stock([update]))
    assert results[0].ok

    store.app.faults.update({"error_rate": 0.0})
    assert store.app.tracking_numbers(order_id).count("TRACK-FAULTS-1") == (
        0 if store.platform_lacks_tracking else 1
    )
    assert store.app.order_status(order_id) == processed
    assert store.app.stock_of(target.sku) == 7
    tracking_writes = Counter(
        (w["key"], str(w["value"])) for w in store.app.writes() if w["kind"] in ("tracking", "history")
    )
    assert all(count == 1 for count in tracking_writes.values()), tracking_writes


def test_rate_limits_and_latency_are_waited_out(store: Store) -> None:
    """Every fourth request answers 429 with a short Retry-After, every request is slow: the work
    still completes and reads back, because short waits are honoured inside the call."""
    store.app.faults.update({"rate_limit_every": 4, "retry_after": 0.05, "latency": 0.005})
    orders, _ = download_all(store.connector)
    assert len({order.external_id for order in orders}) == store.app.order_count()
    target = store.connector.list_listings()[0]
    update = StockUpdate(
        sku=target.sku, remote_id=target.remote_id, remote_variant_id=target.remote_variant_id, quantity=13
    )
    assert store.connector.push_stock([update])[0].ok
    assert store.app.stock_of(target.sku) == 13
    assert store.app.request_count >= 4, "the 429 knob was never reached"


def test_a_long_retry_after_goes_back_to_the_scheduler_with_its_wait(store: Store) -> None:
    """A store that asks for minutes of quiet is not waited for inside a job: the caller gets
    RateLimited carrying the store's own Retry-After."""
    store.app.faults.update({"rate_limit_every": 1, "retry_after": 120})
    with pytest.raises(RateLimited) as caught:
        download_all(store.connector)
    assert 60 <= caught.value.retry_after <= 120
    assert store.app.writes() == []


def test_an_expired_credential_is_an_auth_error_the_seller_can_act_on(store: Store) -> None:
    store.app.faults.update({"expired_token": True})
    with pytest.raises(AuthError) as caught:
        store.connector.test_connection()
    assert caught.value.message.strip()
    for secret in store.connector.secret_values(store.app.connector_credentials()):
        assert secret not in caught.value.message
        assert secret not in (caught.value.raw or "")
    assert store.app.writes() == []


def _cancel_on_the_store(store: Store, order_id: str) -> None:
    """What the seller's admin does to cancel an order, on each platform."""
    app: Any = store.app
    if store.platform == "threedcart":
        app.set_order_status(order_id, 5)
    elif store.platform == "opencart":
        app.change_status(order_id, 7, "Cancelled in the admin")
    else:
        app.set_order_status(order_id, payment="C")


#: Import statuses that leave each platform's cancelled status out (X-Cart's already do).
_IMPORT_WITHOUT_CANCEL = {"threedcart": ["1", "2", "3", "6", "11"], "opencart": ["1", "2", "3", "5", "15"]}


def test_a_known_order_cancelled_on_the_store_arrives_closed_whatever_the_import_statuses(
    store: Store,
) -> None:
    overrides = {}
    if store.platform in _IMPORT_WITHOUT_CANCEL:
        overrides["import_statuses"] = _IMPORT_WITHOUT_CANCEL[store.platform]
    connector = store.build(**overrides)
    try:
        orders, checkpoint = download_all(connector)
        open_order = next(order for order in orders if not order.closed)
        time.sleep(1.1)  # the store dates changes to the second
        _cancel_on_the_store(store, open_order.external_id)
        # A download in the same second may not see the change yet (OpenCart's bridge serves changes
        # up to the second before its clock), but its checkpoint must not skip it: the next has it.
        at_once, checkpoint = download_all(store.build(**overrides), checkpoint)
        time.sleep(1.1)
        later, _ = download_all(store.build(**overrides), checkpoint)
        later = at_once + later
    finally:
        connector.close()
    changed = [order for order in later if order.external_id == open_order.external_id]
    assert changed, "the cancellation of a downloaded order never arrived"
    assert changed[-1].closed, "a cancelled order must stop reserving stock"


def test_a_shipment_for_an_order_the_store_has_cancelled_is_refused_and_writes_nothing(store: Store) -> None:
    orders, _ = download_all(store.connector)
    order = next(o for o in orders if not o.closed)
    _cancel_on_the_store(store, order.external_id)
    before = store.app.tracking_numbers(order.external_id)
    status = store.app.order_status(order.external_id)
    writes = store.app.writes()
    shipment = ShipmentRequest(
        order_external_id=order.external_id,
        tracking_numbers=("1ZCANCELLED01",),
        carrier="UPS",
        processed_status=str(store.app.connector_settings()["processed_status"]),
        reference="SL-00000000cncl",
    )
    with pytest.raises(OrderClosedError) as caught:
        store.connector.confirm_shipment(shipment)
    assert store.app.writes() == writes, "a cancelled order was written to"
    assert store.app.tracking_numbers(order.external_id) == before
    assert store.app.order_status(order.external_id) == status
    assert order.external_id in caught.value.message
    fresh = caught.value.order
    assert isinstance(fresh, Order)
    assert fresh.external_id == order.external_id
    assert fresh.closed


def _settled(connector: Connector, checkpoint: str | None = None) -> str | None:
    """Download twice: the second run starts from a checkpoint of the incremental kind (3DCart and
    X-Cart read a look-back window the first time, a window after the checkpoint from then on)."""
    _, checkpoint = download_all(connector, checkpoint)
    _, checkpoint = download_all(connector, checkpoint)
    return checkpoint


def test_probe_answers_no_when_quiet_and_yes_after_a_new_order(store: Store) -> None:
    """The "anything new?" probe: cheap (no order rows, at most two small requests), "no" on a
    quiet store, "yes" once an order is placed, and "no" again once that order was downloaded."""
    connector = store.connector
    assert connector.capabilities.order_probe
    checkpoint = _settled(connector)
    assert checkpoint
    requests, probes = store.app.request_count, store.app.probe_count
    assert connector.orders_changed_since(checkpoint) is False
    assert store.app.request_count - requests <= 2, "a probe is one or two requests"
    assert store.app.probe_count > probes, "the store saw a probe, not a download"

    new_id = store.app.add_order()
    assert connector.orders_changed_since(checkpoint) is True
    orders, after = download_all(connector, checkpoint)
    assert new_id in {order.external_id for order in orders}
    # The stores' dates have whole seconds: a download in the very second of the placement may
    # leave one false alarm, which the next poll (a second or more later) settles.
    time.sleep(1.1)
    after = _settled(connector, after)
    assert connector.orders_changed_since(after) is False


def test_probe_cannot_tell_before_the_first_download(store: Store) -> None:
    """Without a checkpoint there is nothing to compare with: the poll downloads."""
    requests = store.app.request_count
    assert store.build().orders_changed_since("") is None
    assert store.app.request_count == requests
