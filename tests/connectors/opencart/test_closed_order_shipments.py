"""A shipment for an order the OpenCart store has closed is refused before any history is added.

Which statuses close an order comes from the store's own configuration ("Complete Order Status",
"Processing Order Status", then the status's id or name), the same verdict downloads use. A row
holding Storelink's reference (its own earlier write, which may have set Shipped) still counts as
done and nothing is written again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectorOptions, ShipmentRequest
from connectors.errors import OrderClosedError
from connectors.opencart.connector import OpenCartConnector
from connectors.sandbox.core import SandboxServer
from connectors.sandbox.opencart import OpenCartSandbox

FAMILIES = ["2.1", "2.3", "3.0.0", "3.0.3", "4.0", "4.1"]
TRACKING = "1Z999CLOSED1"


class Running:
    def __init__(self, family: str) -> None:
        self.app = OpenCartSandbox(family=family)
        self.app.seed(6, 40, 5, 3)
        if family == "2.1":
            # 2.1 checks the IP list of Settings > Option > API User: point it at Storelink's user.
            self.setting("config_api_id", "2")
        self.server = SandboxServer(self.app).start()

    def setting(self, key: str, value: str) -> None:
        self.app.db.execute(f"UPDATE {self.app.t('setting')} SET value = ? WHERE `key` = ?", (value, key))

    def add_status(self, status_id: int, name: str) -> None:
        self.app.db.execute(
            f"INSERT INTO {self.app.t('order_status')} (order_status_id, language_id, name) VALUES (?, 1, ?)",
            (status_id, name),
        )

    def connector(self) -> OpenCartConnector:
        return OpenCartConnector(
            self.app.connector_store_url(),
            self.app.connector_credentials(),
            self.app.connector_settings(),
            options=ConnectorOptions(allow_private_hosts=True, timeout=5.0, max_retries=2, backoff=0.01),
        )

    def pending_order(self) -> str:
        """A Pending order no test step has touched yet (each step moves the one it takes)."""
        rows = self.app.query(
            f"SELECT order_id FROM {self.app.t('order')} WHERE order_status_id = 1 ORDER BY order_id"
        )
        assert rows, "the seed has no Pending order left"
        return str(rows[0]["order_id"])

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(params=FAMILIES)
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    store = Running(request.param)
    yield store
    store.close()


def shipment(order_id: str, reference: str = "SL-0c1o2s3e4d5a", **extra: Any) -> ShipmentRequest:
    return ShipmentRequest(
        order_external_id=order_id,
        tracking_numbers=(TRACKING,),
        carrier="UPS",
        processed_status="3",
        reference=reference,
        **extra,
    )


def test_an_order_cancelled_on_the_store_fails_the_shipment_in_words_and_nothing_is_written(
    running: Running,
) -> None:
    order_id = running.pending_order()
    running.app.change_status(order_id, 7)  # Canceled, in the admin
    with pytest.raises(OrderClosedError) as caught:
        running.connector().confirm_shipment(shipment(order_id))
    assert "Canceled" in caught.value.message
    assert "not sent" in caught.value.message
    assert running.app.writes() == []
    assert running.app.order_status(order_id) == "7"
    assert TRACKING not in running.app.tracking_numbers(order_id)
    fresh = caught.value.order
    assert fresh is not None
    assert (fresh.external_id, fresh.status_code, fresh.closed) == (order_id, "7", True)


def test_a_partial_shipment_for_a_refunded_order_is_refused_too(running: Running) -> None:
    order_id = running.pending_order()
    running.app.change_status(order_id, 11)  # Refunded
    with pytest.raises(OrderClosedError, match="Refunded"):
        running.connector().confirm_shipment(shipment(order_id, is_partial=True))
    assert running.app.writes() == []


def test_our_own_earlier_write_that_set_shipped_is_success_with_no_second_write(running: Running) -> None:
    order_id = running.pending_order()
    running.connector().confirm_shipment(shipment(order_id))
    assert running.app.order_status(order_id) == "3"
    writes = running.app.writes()
    assert writes

    result = running.connector().confirm_shipment(shipment(order_id))
    assert result.warnings == ("Already confirmed on the store; nothing was sent again.",)
    running.app.change_status(order_id, 7)  # cancelled by the seller after Storelink shipped it
    running.connector().confirm_shipment(shipment(order_id))
    assert running.app.writes() == writes


def test_another_shipment_for_an_order_already_shipped_is_refused(running: Running) -> None:
    order_id = running.pending_order()
    running.connector().confirm_shipment(shipment(order_id))
    writes = running.app.writes()
    with pytest.raises(OrderClosedError, match="Shipped"):
        running.connector().confirm_shipment(
            ShipmentRequest(
                order_external_id=order_id,
                tracking_numbers=("1ZSECOND2",),
                processed_status="3",
                reference="SL-000000second",
            )
        )
    assert running.app.writes() == writes


def test_the_stores_own_status_configuration_decides(running: Running) -> None:
    """A status the store lists as complete closes the order; a custom status whose name says
    cancelled closes it; a custom status that says neither (an open one) is shipped."""
    running.add_status(20, "Abgeholt")
    running.add_status(21, "Storniert")
    running.add_status(22, "Awaiting pickup")
    running.setting("config_complete_status", '["5","3","20"]')
    for status_id, name in ((20, "Abgeholt"), (21, "Storniert")):
        order_id = running.pending_order()
        running.app.change_status(order_id, status_id)
        with pytest.raises(OrderClosedError, match=name):
            running.connector().confirm_shipment(shipment(order_id))
    assert running.app.writes() == []
    order_id = running.pending_order()
    running.app.change_status(order_id, 22)
    running.connector().confirm_shipment(shipment(order_id))
    assert running.app.order_status(order_id) == "3"
    assert TRACKING in running.app.tracking_numbers(order_id)
