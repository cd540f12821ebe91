"""A shipment write X-Cart applied but whose reply was lost is recognised by the retry.

The add-on keeps no note on a tracking number (a tracking row is value and date only), so the
Storelink reference goes into the order's staff note (``adminNotes``) in the same ``PUT order/<id>``
as the tracking number and the status: one flush, so the note is there exactly when the rest is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from connectors.base import ConnectorOptions, ShipmentRequest
from connectors.errors import ConnectorError
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer
from connectors.sandbox.xcart import XCartSandbox
from connectors.xcart.connector import XCartConnector

REFERENCE = "SL-1a2b3c4d5e6f"


@pytest.fixture
def store() -> Iterator[XCartSandbox]:
    app = XCartSandbox()
    app.seed(6, 10, 3, 4)
    with SandboxServer(app):
        yield app


def connect(app: XCartSandbox) -> XCartConnector:
    built = build_connector(
        "xcart",
        app.connector_store_url(),
        app.connector_credentials(),
        app.connector_settings(),
        options=ConnectorOptions(allow_private_hosts=True, timeout=3.0, max_retries=2, backoff=0.01),
    )
    assert isinstance(built, XCartConnector)
    return built


def open_order(app: XCartSandbox) -> str:
    return app.place_order(age_seconds=600, payment="P", shipping="N")


def shipment(order_id: str, reference: str = REFERENCE) -> ShipmentRequest:
    return ShipmentRequest(
        order_external_id=order_id, tracking_numbers=("1Z999AA1",), processed_status="S", reference=reference
    )


def effects(app: XCartSandbox, order_id: str) -> Counter[str]:
    return Counter(w["kind"] for w in app.writes() if w["key"] == order_id)


def test_the_reference_goes_into_the_staff_note_with_the_tracking_and_keeps_the_sellers_note(
    store: XCartSandbox,
) -> None:
    order_id = open_order(store)
    connect(store).confirm_shipment(shipment(order_id, ""))  # an older caller: no reference, no note
    assert store.admin_notes(order_id) == ""
    other = open_order(store)
    with store.transaction() as db:
        db.execute("UPDATE orders SET admin_notes = 'Gift wrap' WHERE order_id = ?", (int(other),))
    connect(store).confirm_shipment(shipment(other))
    notes = store.admin_notes(other)
    assert notes.startswith("Gift wrap\n")
    assert REFERENCE in notes
    assert "1Z999AA1" in notes
    assert store.tracking_numbers(other) == ["1Z999AA1"]


def test_a_retry_after_a_lost_reply_writes_nothing_twice(store: XCartSandbox) -> None:
    order_id = open_order(store)
    store.faults.update({"drop_reply_after_write": 1})
    with pytest.raises(ConnectorError):
        connect(store).confirm_shipment(shipment(order_id))
    assert store.faults.drop_reply_after_write == 0
    assert store.tracking_numbers(order_id) == ["1Z999AA1"]  # the store did apply it

    connect(store).confirm_shipment(shipment(order_id))
    assert effects(store, order_id) == Counter({"tracking": 1, "status": 1, "note": 1})
    assert store.admin_notes(order_id).count(REFERENCE) == 1
    assert store.order_status(order_id) == "S"


def test_a_retry_leaves_an_order_the_seller_moved_on_since_alone(store: XCartSandbox) -> None:
    order_id = open_order(store)
    store.faults.update({"drop_reply_after_write": 1})
    with pytest.raises(ConnectorError):
        connect(store).confirm_shipment(shipment(order_id))
    store.set_order_status(order_id, shipping="D")  # the seller marks it Delivered meanwhile
    store.clear_writes()

    connect(store).confirm_shipment(shipment(order_id))
    assert store.order_status(order_id) == "D"  # not set back to Shipped
    assert store.writes() == []
