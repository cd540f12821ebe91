"""A job request is a due time committed with the write; the broker only makes it faster.

With the broker down (a Redis URL on a port nobody listens on, the real kombu transport) the API
still answers 201/200, the job is due in ``ChannelSchedule``, and the dispatcher sends it once the
broker is back. With the database down every API answer is a JSON 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from celery import current_app
from django.db import connection
from django.test import Client
from django.utils import timezone

from channels import sync
from channels.models import ChannelSchedule
from orders.models import Shipment
from tests.conftest import api_client_with_key
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.orders.urls"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _reset_broker_pools() -> None:
    """Drop pooled broker connections so the next send connects to the configured URL (kombu
    keeps its pools in process-wide dicts: all of them are closed and forgotten)."""
    from kombu import pools

    pools.reset()
    current_app._pool = None
    current_app.amqp._producer_pool = None


@pytest.fixture
def broker_down() -> Iterator[str]:
    """Point the Celery app at a Redis port that refuses connections, for real."""
    conf = current_app.conf
    # Only these two: reading broker_write_url returns broker_url when unset, and writing that
    # back would pin later tests' sends to this URL.
    saved = (conf.broker_url, conf.broker_transport_options)
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    conf.broker_url, conf.broker_transport_options = url, {}
    _reset_broker_pools()
    try:
        yield url
    finally:
        conf.broker_url, conf.broker_transport_options = saved
        _reset_broker_pools()


@pytest.fixture
def channel(alice: Any) -> Any:
    return SalesChannelFactory(account=alice.account, settings={"stock_sync": True, "price_sync": False})


def _due(channel: Any, field: str) -> Any:
    return ChannelSchedule.objects.filter(pk=channel.pk).values_list(field, flat=True).first()


def test_shipment_post_with_broker_down_answers_201_and_the_dispatcher_relays_it(
    alice: Any,
    channel: Any,
    broker_down: str,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = make_order(channel, "1")
    body = {"order": str(order.pk), "carrier": "UPS", "tracking_numbers": ["1Z1"]}
    api = api_client_with_key(alice.account)
    with (
        caplog.at_level(logging.INFO, logger="storelink.sync"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = api.post("/api/v1/shipments/", body, format="json")
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith("application/json")
    assert callbacks, "the eager send was attempted after commit"
    assert Shipment.objects.filter(order=order).count() == 1
    due = _due(channel, "shipments_due_at")
    assert due is not None, "the request is committed as a due time"
    assert due <= timezone.now()
    deferred = [r for r in caplog.records if "sync.job.enqueue_deferred" in r.getMessage()]
    assert len(deferred) == 1, "one line"
    assert deferred[0].exc_info is None, "no traceback"
    assert "enqueued" not in caplog.text

    # The broker is back: the dispatcher's next tick sends the job, once.
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), str(job))))
    assert (str(channel.pk), "shipments") in sync.dispatch_due_jobs()
    assert (str(channel.pk), "shipments") in sent
    assert _due(channel, "shipments_due_at") is None
    sent.clear()
    sync.dispatch_due_jobs()
    assert (str(channel.pk), "shipments") not in sent


def test_bulk_products_with_broker_down_answer_200_and_stock_is_due(
    alice: Any, channel: Any, broker_down: str, django_capture_on_commit_callbacks: Any
) -> None:
    other = SalesChannelFactory(account=alice.account, settings={"stock_sync": True})
    paused = SalesChannelFactory(account=alice.account, enabled=False)
    items = [{"sku": f"SKU-{n}", "name": f"Item {n}", "on_hand": 5, "price": "9.50"} for n in range(3)]
    api = api_client_with_key(alice.account)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/products/bulk/", items, format="json")
    assert response.status_code in (200, 201), response.content
    assert response.json()["created"] == 3
    assert _due(channel, "stock_due_at") is not None
    assert _due(other, "stock_due_at") is not None
    assert _due(paused, "stock_due_at") is None
    assert _due(channel, "prices_due_at") is None  # this channel does not sync prices


def test_an_eager_send_claims_the_job_so_the_dispatcher_does_not_send_it_again(
    channel: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), str(job))))
    with django_capture_on_commit_callbacks(execute=True):
        sync.request_job(channel, "stock")
        assert _due(channel, "stock_due_at") is not None  # written in the transaction
        assert sent == []
    assert sent == [(str(channel.pk), "stock")]
    assert _due(channel, "stock_due_at") is None
    sync.dispatch_due_jobs()
    assert sent.count((str(channel.pk), "stock")) == 1


def test_a_request_the_dispatcher_claimed_first_is_not_sent_again_after_commit(
    channel: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), str(job))))
    with django_capture_on_commit_callbacks(execute=True):
        sync.request_job(channel, "stock")
        sync.dispatch_due_jobs()  # a tick between the write and the eager send
    assert sent.count((str(channel.pk), "stock")) == 1


# -- database outage -------------------------------------------------------------------------------


@contextmanager
def database_down() -> Iterator[None]:
    """The default connection pointed at a port nobody listens on (connections are refused)."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = "127.0.0.1"
    connection.settings_dict["PORT"] = str(_closed_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database server to take away")
@pytest.mark.django_db(transaction=True)
def test_database_outage_answers_json_503_with_retry_after(alice: Any, channel: Any) -> None:
    api = api_client_with_key(alice.account)
    order = make_order(channel, "1")
    browser = Client()
    browser.force_login(alice.user)
    with database_down():
        listed = api.get("/api/v1/orders/")
        posted = api.post("/api/v1/shipments/", {"order": str(order.pk)}, format="json")
        page = browser.get("/orders/")
    for response in (listed, posted):
        assert response.status_code == 503
        assert response["Content-Type"].startswith("application/json")
        assert int(response["Retry-After"]) > 0
        body = response.json()
        assert body["code"] == "database_unavailable"
        assert "unavailable" in body["message"]
    assert page.status_code == 503
    assert int(page["Retry-After"]) > 0
    assert b"briefly unavailable" in page.content
    assert b"Traceback" not in page.content
    assert api.get("/api/v1/orders/").status_code == 200  # and back when the database is


def test_marking_jobs_due_keeps_an_earlier_due_time_and_creates_missing_schedules(alice: Any) -> None:
    """Every order page asks for stock jobs: one statement once the schedule rows exist."""
    from datetime import timedelta

    from django.test.utils import CaptureQueriesContext

    early, late, fresh = (SalesChannelFactory(account=alice.account) for _ in range(3))
    sync.ensure_schedules([early, late])
    now = timezone.now()
    ChannelSchedule.objects.filter(pk=early.pk).update(stock_due_at=now - timedelta(minutes=5))
    ChannelSchedule.objects.filter(pk=late.pk).update(stock_due_at=now + timedelta(minutes=5))
    ChannelSchedule.objects.filter(pk=fresh.pk).delete()

    sync.mark_due_many([early, late, fresh], "stock", now)

    assert _due(early, "stock_due_at") == now - timedelta(minutes=5)  # already due earlier: kept
    assert _due(late, "stock_due_at") == now
    assert _due(fresh, "stock_due_at") == now  # its schedule row was made
    with CaptureQueriesContext(connection) as queries:
        sync.mark_due_many([early, late, fresh], "stock", now + timedelta(minutes=1))
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
    assert _due(late, "stock_due_at") == now
