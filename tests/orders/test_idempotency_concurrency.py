"""Idempotency-Key under concurrency: two simultaneous POSTs with one key record one shipment.

Real threads, each with its own database connection, against PostgreSQL (SQLite serialises writers
with a database lock, which hides the race). Before the key was checked under the order lock, most
pairs gave one 201 and one 400 "Everything in order … has already been shipped".
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from orders.models import Shipment
from tests.conftest import api_client_with_key
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db(transaction=True)

PAIRS = 8


@pytest.fixture(autouse=True)
def _urls(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from channels import sync

    settings.ROOT_URLCONF = "tests.orders.urls"
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: None)


def _post_together(client_factory: Any, body: dict[str, Any], key: str) -> list[Any]:
    # The suite's in-memory SQLite refuses a second thread's writer ("table is locked"): there the
    # two requests go one after the other and must still answer one shipment (the race itself needs
    # PostgreSQL, which CI uses).
    sequential = connection.vendor == "sqlite"
    barrier = threading.Barrier(1 if sequential else 2)
    replies: list[Any] = [None, None]

    def post(index: int) -> None:
        client = client_factory()
        try:
            barrier.wait(timeout=30)
            replies[index] = client.post("/api/v1/shipments/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        except Exception as exc:  # reported by the assertion below, with the request that raised it
            replies[index] = exc
        finally:
            connections.close_all()

    if sequential:
        post(0)
        post(1)
        return replies
    threads = [threading.Thread(target=post, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return replies


def test_simultaneous_posts_with_one_key_answer_one_shipment(alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account, name="Alice OpenCart")
    for pair in range(PAIRS):
        order = make_order(channel, f"race-{pair}")
        body = {"order": str(order.pk), "carrier": "UPS", "tracking_numbers": [f"1Z{pair}"]}
        replies = _post_together(lambda: api_client_with_key(alice.account), body, f"wms-{pair}")
        raised = [reply for reply in replies if isinstance(reply, Exception)]
        assert not raised, raised
        codes = sorted(reply.status_code for reply in replies)
        assert codes == [200, 201], [reply.json() for reply in replies]
        ids = {reply.json()["id"] for reply in replies}
        assert len(ids) == 1
        assert Shipment.objects.filter(order=order).count() == 1


def test_a_key_reused_with_a_different_body_is_refused_with_422(alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account, name="Alice OpenCart")
    order = make_order(channel, "reuse")
    api = api_client_with_key(alice.account)
    body = {"order": str(order.pk), "carrier": "UPS", "tracking_numbers": ["1ZA"]}
    first = api.post("/api/v1/shipments/", body, format="json", HTTP_IDEMPOTENCY_KEY="wms-x")
    assert first.status_code == 201
    same = api.post("/api/v1/shipments/", body, format="json", HTTP_IDEMPOTENCY_KEY="wms-x")
    assert same.status_code == 200
    assert same.json()["id"] == first.json()["id"]
    other = api.post(
        "/api/v1/shipments/",
        {**body, "tracking_numbers": ["1ZB"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="wms-x",
    )
    assert other.status_code == 422
    reply = other.json()
    assert "tracking numbers" in reply["message"]
    assert reply["code"] == "idempotency_key_reused"
    assert Shipment.objects.filter(order=order).count() == 1
