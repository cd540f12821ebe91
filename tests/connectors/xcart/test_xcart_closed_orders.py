"""A shipment for an order the X-Cart store has closed is refused before anything is written.

Cancelling an order in the X-Cart admin sets its *payment* status to Cancelled and leaves shipping at
New, so a download that filters on import statuses may still show it as open; the connector reads
the order right before the write and refuses a closed one, handing back the order as the store
shows it. Storelink's own earlier write (its reference in the staff note) still counts as done.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.base import ConnectorOptions, ShipmentRequest
from connectors.errors import OrderClosedError
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer
from connectors.sandbox.xcart import XCartSandbox
from connectors.xcart.connector import XCartConnector

REFERENCE = "SL-0c1o2s3e4d5a"


def running(flavour: str) -> Iterator[XCartSandbox]:
    app = XCartSandbox(flavour=flavour)
    app.seed(6, 10, 3, 4)
    with SandboxServer(app):
        yield app


@pytest.fixture
def store() -> Iterator[XCartSandbox]:
    yield from running("addon")


@pytest.fixture
def builtin_store() -> Iterator[XCartSandbox]:
    yield from running("builtin")


def connect(app: XCartSandbox) -> XCartConnector:
    built = build_connector(
        "xcart",
        app.connector_store_url(),
        app.connector_credentials(),
        app.connector_settings(),
        options=ConnectorOptions(allow_private_hosts=True, timeout=5.0, max_retries=2, backoff=0.01),
    )
    assert isinstance(built, XCartConnector)
    return built


def shipment(order_id: str, reference: str = REFERENCE, tracking: str = "1Z999CL1") -> ShipmentRequest:
    return ShipmentRequest(
        order_external_id=order_id, tracking_numbers=(tracking,), processed_status="S", reference=reference
    )


def writes_to(app: XCartSandbox, order_id: str) -> list[str]:
    return [w["kind"] for w in app.writes() if w["key"] == order_id]


@pytest.mark.parametrize(
    ("payment", "shipping", "words"),
    [
        ("C", None, "Payment: Cancelled"),
        ("D", None, "Payment: Declined"),
        ("R", None, "Payment: Refunded"),
        (None, "D", "Shipping: Delivered"),
        (None, "WND", "Shipping: Will not deliver"),
    ],
)
def test_a_closed_order_fails_the_shipment_in_words_and_nothing_is_written(
    store: XCartSandbox, payment: str | None, shipping: str | None, words: str
) -> None:
    order_id = store.place_order(age_seconds=600, payment="P", shipping="N")
    store.set_order_status(order_id, payment=payment, shipping=shipping)
    with pytest.raises(OrderClosedError) as caught:
        connect(store).confirm_shipment(shipment(order_id))
    assert words in caught.value.message
    assert "not sent" in caught.value.message
    assert writes_to(store, order_id) == []
    assert store.tracking_numbers(order_id) == []
    assert store.admin_notes(order_id) == ""
    fresh = caught.value.order
    assert fresh is not None
    assert fresh.external_id == order_id
    assert fresh.closed is True
    assert words in fresh.status_name


def test_an_order_cancelled_in_the_admin_is_not_set_to_shipped(store: XCartSandbox) -> None:
    order_id = store.place_order(age_seconds=600, payment="P", shipping="N")
    store.cancel_order(order_id)
    with pytest.raises(OrderClosedError):
        connect(store).confirm_shipment(shipment(order_id, reference=""))
    assert store.order_status(order_id) == "N"
    assert writes_to(store, order_id) == []


def test_our_own_earlier_write_that_moved_the_order_to_shipped_is_success_with_no_second_write(
    store: XCartSandbox,
) -> None:
    order_id = store.place_order(age_seconds=600, payment="P", shipping="N")
    connect(store).confirm_shipment(shipment(order_id))
    assert store.order_status(order_id) == "S"
    first = writes_to(store, order_id)
    assert first

    again = connect(store).confirm_shipment(shipment(order_id))
    assert again.tracking_sent == ()
    # Cancelled by the seller after Storelink shipped it: the shipment still stands as done.
    store.cancel_order(order_id)
    connect(store).confirm_shipment(shipment(order_id))
    assert writes_to(store, order_id) == first


def test_a_second_shipment_for_an_order_already_shipped_is_refused(store: XCartSandbox) -> None:
    order_id = store.place_order(age_seconds=600, payment="P", shipping="N")
    connect(store).confirm_shipment(shipment(order_id))
    before = writes_to(store, order_id)
    with pytest.raises(OrderClosedError, match="Shipping: Shipped"):
        connect(store).confirm_shipment(shipment(order_id, reference="SL-000000second", tracking="1ZNEW2"))
    assert writes_to(store, order_id) == before
    assert store.tracking_numbers(order_id) == ["1Z999CL1"]


def test_an_open_order_is_still_shipped(store: XCartSandbox) -> None:
    order_id = store.place_order(age_seconds=600, payment="P", shipping="N")
    result = connect(store).confirm_shipment(shipment(order_id))
    assert result.tracking_sent == ("1Z999CL1",)
    assert store.order_status(order_id) == "S"


def test_the_55_api_refuses_a_cancelled_order_too(builtin_store: XCartSandbox) -> None:
    order_id = builtin_store.place_order(age_seconds=600, payment="P", shipping="N")
    builtin_store.cancel_order(order_id)
    with pytest.raises(OrderClosedError, match="Payment: Cancelled") as caught:
        connect(builtin_store).confirm_shipment(shipment(order_id))
    assert builtin_store.order_status(order_id) == "N"
    assert writes_to(builtin_store, order_id) == []
    assert caught.value.order is not None
    assert caught.value.order.closed
