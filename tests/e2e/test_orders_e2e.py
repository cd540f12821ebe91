"""End to end: real ``celery -A config worker`` and ``celery -A config beat`` processes, the test
database, a sandbox store over loopback.

The beat schedule is the django-celery-beat rows (shortened here to tick every second, as an
operator could in the admin); the dispatcher finds the channel due, the worker downloads its
orders; a shipment recorded in this process is confirmed on the store exactly once; and a worker
SIGKILLed in the middle of a download leaves a lease that expires, after which the sweeper and
the dispatcher hand the job to a fresh worker, which finishes it without duplicating an order.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from channels.models import SyncRun, SyncState
from orders.models import Order, Shipment, ShipmentState
from orders.shipments import record_shipment
from tests.e2e.conftest import CeleryProcesses, fast_beat_schedule, kill_worker_mid_download
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

# One xdist group for every test that runs Celery processes: they run one after another (``make test``
# uses ``--dist loadgroup``), so two never share a broker database or fight over two cores.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-e2e"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker and beat processes must share the test database: run with DATABASE_URL (PostgreSQL)",
    ),
]

LEASE_SECONDS = 4


@pytest.fixture(autouse=True)
def _short_leases_and_fast_beat(celery: CeleryProcesses) -> None:
    """Leases a killed worker's job outlives only briefly; the dispatcher and the sweeper every second."""
    celery.env["SYNC_LEASE_SECONDS"] = str(LEASE_SECONDS)
    fast_beat_schedule(sweep_stale_runs=True)


def tracking_writes(app: Any, external_id: str) -> list[dict[str, Any]]:
    return [w for w in app.writes() if w["kind"] == "tracking" and w["key"] == str(external_id)]


def test_orders_arrive_and_shipment_is_confirmed_exactly_once(celery: CeleryProcesses) -> None:
    user, account = make_owner("alice@example.com", "Alice's Shop")
    with sandbox_store("xcart", orders=40) as (app, _server):
        channel = channel_for_store(account, app)
        celery.start_worker()
        celery.start_beat()
        expected = app.order_count()
        celery.wait_for(lambda: Order.objects.filter(channel=channel).count() == expected, "orders to arrive")
        run = SyncRun.objects.filter(channel=channel, job="orders").latest("created_at")
        assert run.state == SyncState.SUCCEEDED
        assert run.created == expected

        order = Order.objects.filter(channel=channel).order_by("placed_at").first()
        shipment, _ = record_shipment(order, actor=user, carrier="UPS", tracking_numbers=["1ZE2E"])
        celery.wait_for(
            lambda: Shipment.objects.get(pk=shipment.pk).state == ShipmentState.CONFIRMED,
            "the shipment to be confirmed",
        )
        assert app.tracking_numbers(order.external_id) == ["1ZE2E"]
        assert app.order_status(order.external_id) == "S"
        writes_after_confirmation = app.writes()
        assert len(tracking_writes(app, order.external_id)) == 1
        # more dispatcher and sweeper ticks (and a "sync now") do not confirm it again
        from channels import sync

        sync.sync_now(channel, ["shipments"])
        celery.wait_for(
            lambda: (
                SyncRun.objects.filter(channel=channel, job="shipments", state=SyncState.SUCCEEDED).aggregate(
                    total=Sum("checks")
                )["total"]
                >= 2
            ),
            "the extra shipments run",
        )
        time.sleep(2)
        assert app.writes() == writes_after_confirmation
        assert Shipment.objects.get(pk=shipment.pk).attempts == 1


def test_sigkilled_worker_job_is_picked_up_after_lease_expiry(celery: CeleryProcesses) -> None:
    _user, account = make_owner("alice@example.com", "Alice's Shop")
    with sandbox_store("xcart", orders=400, days=20) as (app, _server):
        channel = channel_for_store(account, app)
        first_run = kill_worker_mid_download(celery, app, channel)
        stored_at_kill = Order.objects.filter(channel=channel).count()
        assert 0 < stored_at_kill < app.order_count()
        first_run.refresh_from_db()
        assert first_run.state == SyncState.RUNNING  # nobody told the database: the worker just died

        app.faults.update({"latency": 0.0})
        celery.start_worker("worker-2")
        expected = app.order_count()
        celery.wait_for(
            lambda: Order.objects.filter(channel=channel).count() == expected,
            "the job to be finished by the new worker",
        )
        first_run.refresh_from_db()
        assert first_run.state == SyncState.FAILED
        assert "stopped" in first_run.error
        finisher = celery.wait_for(
            lambda: SyncRun.objects.filter(
                channel=channel, job="orders", state=SyncState.SUCCEEDED, created__gt=0
            ).first(),
            "the finishing run",
        )
        assert finisher.started_at >= first_run.started_at
        # the pages committed before the kill were not written again
        assert finisher.created == expected - stored_at_kill
        assert Order.objects.filter(channel=channel).values("external_id").distinct().count() == expected
