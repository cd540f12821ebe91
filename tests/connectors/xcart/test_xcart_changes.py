"""Status changes always arrive: against the X-Cart sandbox (both flavours) over loopback, an order
placed days ago that is cancelled, shipped or paid in the admin reaches Storelink on a later
download with the store's closed verdict, whether or not X-Cart dates the change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectorOptions, Order
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer, make_sandbox
from connectors.sandbox.xcart import XCartSandbox
from connectors.xcart.connector import REREAD_CYCLE_RUNS, XCartConnector

DAY = 86400


@pytest.fixture(params=["addon", "builtin"])
def store(request: pytest.FixtureRequest) -> Iterator[XCartSandbox]:
    app = make_sandbox("xcart", flavour=request.param)
    assert isinstance(app, XCartSandbox)
    app.seed(6, 40, 6, 11)
    with SandboxServer(app):
        yield app


def connect(app: XCartSandbox, **settings: Any) -> XCartConnector:
    built = build_connector(
        "xcart",
        app.connector_store_url(),
        app.connector_credentials(),
        app.connector_settings() | {"import_statuses": ["P", "A"]} | settings,
        options=ConnectorOptions(allow_private_hosts=True, timeout=5.0, max_retries=1, backoff=0.01),
    )
    assert isinstance(built, XCartConnector)
    return built


def download(connector: XCartConnector, checkpoint: str | None) -> tuple[dict[str, Order], str | None]:
    """One run, as the worker does it: every page, the last checkpoint."""
    seen: dict[str, Order] = {}
    for page in connector.fetch_orders(checkpoint):
        for order in page.orders:
            seen[order.external_id] = order
        checkpoint = page.checkpoint
    return seen, checkpoint


def test_an_old_order_cancelled_in_the_admin_arrives_closed(store: XCartSandbox) -> None:
    old = store.place_order(age_seconds=4 * DAY)  # far outside the one-day overlap
    connector = connect(store)
    first, checkpoint = download(connector, None)
    assert first[old].closed is False
    store.cancel_order(old)  # payment Cancelled, shipping still New, date unchanged

    later, checkpoint = download(connect(store), checkpoint)

    assert old in later, "the cancel of a 4-day-old order was not downloaded"
    assert later[old].closed is True
    assert later[old].status_code == "N"
    assert "Payment: Cancelled" in later[old].status_name
    assert checkpoint is not None
    assert int(old) not in json.loads(checkpoint)["open"]


def test_an_old_order_shipped_in_the_admin_arrives_closed(store: XCartSandbox) -> None:
    old = store.place_order(age_seconds=3 * DAY)
    _, checkpoint = download(connect(store), None)
    store.set_order_status(old, shipping="S")
    later, _ = download(connect(store), checkpoint)
    assert later[old].closed is True
    assert later[old].status_code == "S"


def test_a_change_x_cart_does_not_date_arrives_within_the_reread_cycle(store: XCartSandbox) -> None:
    old = store.place_order(age_seconds=5 * DAY)
    _, checkpoint = download(connect(store), None)
    store.cancel_order(old, dated=False)
    runs = 0
    found: Order | None = None
    while found is None and runs < REREAD_CYCLE_RUNS:
        runs += 1
        orders, checkpoint = download(connect(store), checkpoint)
        found = orders.get(old)
    assert found is not None, f"not re-read within {REREAD_CYCLE_RUNS} runs"
    assert found.closed is True


def test_an_order_not_yet_importable_is_downloaded_once_paid(store: XCartSandbox) -> None:
    waiting = store.place_order(age_seconds=3 * DAY, payment="Q")
    first, checkpoint = download(connect(store), None)
    assert waiting not in first  # awaiting payment is not a status to import
    store.set_order_status(waiting, payment="P")
    later, _ = download(connect(store), checkpoint)
    assert waiting in later
    assert later[waiting].closed is False


def test_a_change_to_an_order_never_imported_stays_out(store: XCartSandbox) -> None:
    waiting = store.place_order(age_seconds=3 * DAY, payment="Q")
    _, checkpoint = download(connect(store), None)
    store.set_order_status(waiting, shipping="P")  # still awaiting payment
    later, _ = download(connect(store), checkpoint)
    assert waiting not in later


def test_an_idle_later_run_costs_a_few_requests(store: XCartSandbox) -> None:
    _, checkpoint = download(connect(store), None)
    before = store.request_count
    _, checkpoint = download(connect(store), checkpoint)
    open_orders = len(json.loads(checkpoint or "{}")["open"])
    assert open_orders > 0
    # window + changed scan + a slice of the open orders (+ flavour detection on "auto")
    assert store.request_count - before <= 4 + max(3, -(-open_orders // REREAD_CYCLE_RUNS))


def test_a_change_in_the_second_a_download_began_is_seen_by_the_next_probe(store: XCartSandbox) -> None:
    """X-Cart dates changes to the second, and a download's scan of changes starts at some moment
    inside one: a cancel later in that same second was not read by it, so the quick "anything
    new?" probe must still answer yes for it (it answered no until the next full download)."""
    old = store.place_order(age_seconds=4 * DAY)
    _first, checkpoint = download(connect(store), None)
    _second, checkpoint = download(connect(store), checkpoint)
    assert checkpoint is not None
    assert connect(store).orders_changed_since(checkpoint) is False  # nothing new yet
    scan_began = int(json.loads(checkpoint)["changed"])
    store.cancel_order(old)
    store.db.execute("UPDATE orders SET last_renew = ? WHERE order_id = ?", (scan_began, int(old)))
    assert connect(store).orders_changed_since(checkpoint) is True
    later, _ = download(connect(store), checkpoint)
    assert later[old].closed is True
