"""The broker restarts under a working system, and nobody has to restart the workers.

A 20-minute soak once saw every Redis restart take down every connected worker, so for minutes no
order, shipment or stock job ran. Here a Redis of the test's own (with an append-only file, as a
production Redis keeps its queue) is SIGKILLed and started again while a download is in progress;
the worker started as the Procfile starts it must still be the same process afterwards, finish the
interrupted download and go on downloading new orders. And while Redis is down, the API still
accepts a shipment (the job request is a due time committed with it), which is confirmed on the
store once Redis is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from accounts.services import create_api_key
from channels.models import SyncRun, SyncState
from orders.models import Order, Shipment, ShipmentState
from tests.e2e.conftest import CeleryProcesses, fast_beat_schedule
from tests.e2e.private_redis import PrivateRedis, redis_server_binary
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
    pytest.mark.skipif(redis_server_binary() is None, reason="needs redis-server (make test installs it)"),
]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """Requested before ``celery`` so it outlives the processes (their teardown empties it)."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_worker_survives_a_redis_restart_mid_download(
    private_redis: PrivateRedis, celery: CeleryProcesses
) -> None:
    celery.use_broker(private_redis.url)
    fast_beat_schedule(sweep_stale_runs=True)
    _user, account = make_owner("alice@example.com", "Alice's Shop")
    # Enough slow pages that the download writes several batches (200 orders each) before it ends.
    with sandbox_store("xcart", orders=800, days=20) as (app, _server):
        channel = channel_for_store(account, app)
        app.faults.update({"latency": 0.4})
        worker = celery.start_production_worker()
        celery.start_beat()
        celery.wait_for(
            lambda: (
                SyncRun.objects.filter(channel=channel, job="orders", state=SyncState.RUNNING)
                .filter(created__gt=0)
                .exists()
            ),
            "a download to be in progress",
            timeout=120,
        )
        private_redis.restart()
        app.faults.update({"latency": 0.0})

        expected = app.order_count()
        celery.wait_for(
            lambda: Order.objects.filter(channel=channel).count() == expected,
            "the interrupted download to be finished after the restart",
            timeout=180,
        )
        placed_after = app.add_order()
        celery.wait_for(
            lambda: Order.objects.filter(channel=channel, external_id=placed_after).exists(),
            "an order placed after the restart to arrive",
            timeout=180,
        )
        assert worker.poll() is None, f"the worker exited\n{celery.logs()}"
        log = (celery.tmp_path / "worker.log").read_text(errors="replace")
        assert "Unrecoverable error" not in log
        assert Order.objects.filter(channel=channel).values("external_id").distinct().count() == expected + 1


def test_a_shipment_posted_while_redis_is_down_is_accepted_and_confirmed_when_it_returns(
    private_redis: PrivateRedis, celery: CeleryProcesses
) -> None:
    celery.use_broker(private_redis.url)
    fast_beat_schedule(sweep_stale_runs=True)
    user, account = make_owner("alice@example.com", "Alice's Shop")
    _key, plaintext = create_api_key(account, actor=user, name="Warehouse")
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    with sandbox_store("xcart", orders=10) as (app, _server):
        channel = channel_for_store(account, app, processed_status="S")
        worker = celery.start_production_worker()
        celery.start_beat()
        celery.wait_for(
            lambda: Order.objects.filter(channel=channel).count() == app.order_count(), "orders to arrive"
        )
        order = Order.objects.filter(channel=channel, store_closed=False).order_by("placed_at").first()
        assert order is not None

        private_redis.kill()
        response = api.post(
            "/api/v1/shipments/",
            {"order": str(order.pk), "carrier": "UPS", "tracking_numbers": ["1ZDOWN"]},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        assert response["Content-Type"].startswith("application/json")
        shipment = Shipment.objects.get(pk=response.json()["id"])
        assert shipment.state == ShipmentState.PENDING

        private_redis.start()
        celery.wait_for(
            lambda: Shipment.objects.get(pk=shipment.pk).state == ShipmentState.CONFIRMED,
            "the shipment to be confirmed once Redis is back",
            timeout=180,
        )
        assert app.tracking_numbers(order.external_id) == ["1ZDOWN"]
        assert worker.poll() is None, f"the worker exited\n{celery.logs()}"
