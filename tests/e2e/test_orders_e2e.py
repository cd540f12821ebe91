"""End to end: real ``celery -A config worker`` and ``celery -A config beat`` processes, the test
database, a sandbox store over loopback.

The beat schedule is the django-celery-beat rows (shortened here to tick every second, as an
operator could in the admin); the dispatcher finds the channel due, the worker downloads its
orders; a shipment recorded in this process is confirmed on the store exactly once; and a worker
SIGKILLed in the middle of a download leaves a lease that expires, after which the sweeper and
the dispatcher hand the job to a fresh worker, which finishes it without duplicating an order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from channels.models import SyncRun, SyncState
from orders import services
from orders.models import Order, Shipment, ShipmentState
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

ROOT = Path(settings.BASE_DIR)
WAIT_SECONDS = 60
LEASE_SECONDS = 4


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS, logs: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    detail = logs.tail() if logs is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")


class CeleryProcesses:
    """Starts and stops worker and beat processes sharing this test's database and a private broker."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = self._env()

    def _broker(self) -> tuple[str, dict[str, Any]]:
        redis_url = os.environ.get("REDIS_URL", "")
        if redis_url:
            # A database index of our own, so other people's workers on the same Redis never take
            # these tasks (they would look for the channel in another test database).
            index = 1 + zlib.crc32(str(self.tmp_path).encode()) % 15
            base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url.rstrip("/")
            return f"{base}/{index}", {}
        # config.settings puts the filesystem broker under $STORELINK_VAR_DIR/broker: the same
        # folders for the worker, beat and this process.
        folder = self.tmp_path / "var" / "broker"
        for sub in ("queue", "processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return "filesystem://", {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        }

    def _env(self) -> dict[str, str]:
        db = connection.settings_dict
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or "5432"
        user = db.get("USER") or "postgres"
        password = db.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else f"{user}@"
        self.broker_url, self.transport_options = self._broker()
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{auth}{host}:{port}/{db['NAME']}",
            "CELERY_BROKER_URL": self.broker_url,
            "STORELINK_VAR_DIR": str(self.tmp_path / "var"),
            "ALLOW_PRIVATE_STORE_HOSTS": "1",
            "SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
            "CONN_MAX_AGE": "0",
            "PYTHONPATH": str(ROOT),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
        if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
            env["DEBUG"] = "1"  # the development keys, the same ones this test process uses
        return env

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        celery = str(Path(sys.executable).with_name("celery"))
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        process = subprocess.Popen(
            [celery, "-A", "config", *args],
            cwd=self.tmp_path,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.start(
            name,
            "worker",
            "--loglevel=INFO",
            "--pool=threads",
            "--concurrency=4",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            f"--hostname={name}-{os.getpid()}@%h",
        )

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self.start(
            "beat",
            "beat",
            "--loglevel=INFO",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            f"--pidfile={self.tmp_path / 'beat.pid'}",
            "--max-interval=1",
        )

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)

    def clear_broker(self) -> None:
        """Drop what the killed worker left unacknowledged in our private Redis database."""
        if self.broker_url.startswith("redis"):
            import redis

            client = redis.Redis.from_url(self.broker_url)
            keys = [
                *client.keys("_kombu.*"),
                b"celery",
                b"unacked",
                b"unacked_index",
                b"unacked_mutex",
            ]
            client.delete(*keys)
            client.close()

    def tail(self, lines: int = 40) -> str:
        out = []
        for log in sorted(self.tmp_path.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def fast_beat_schedule() -> None:
    """The beat rows of migration 0003 (the transactional test database was flushed), ticking fast."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, task, every in (
        ("Storelink: dispatch due sync jobs", "channels.tasks.dispatch_due_jobs", 1),
        ("Storelink: sweep stale sync runs", "channels.tasks.sweep_stale_runs", 1),
    ):
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": interval, "expire_seconds": 5, "enabled": True}
        )


def reset_broker_connections(app: Any) -> None:
    """Drop pooled connections so the next send uses the broker settings just changed."""
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery(tmp_path: Path, settings: Any) -> Iterator[CeleryProcesses]:
    from config.celery import app

    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    processes = CeleryProcesses(tmp_path)
    # This process sends tasks too (a recorded shipment): to the same private broker.
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = processes.broker_url
    app.conf.broker_transport_options = processes.transport_options
    reset_broker_connections(app)
    fast_beat_schedule()
    try:
        yield processes
    finally:
        processes.stop_all()
        processes.clear_broker()
        app.conf.broker_url, app.conf.broker_transport_options = saved
        reset_broker_connections(app)


def tracking_writes(app: Any, external_id: str) -> list[dict[str, Any]]:
    return [w for w in app.writes() if w["kind"] == "tracking" and w["key"] == str(external_id)]


def test_orders_arrive_and_shipment_is_confirmed_exactly_once(celery: CeleryProcesses) -> None:
    user, account = make_owner("alice@example.com", "Alice's Shop")
    with sandbox_store("xcart", orders=40) as (app, _server):
        channel = channel_for_store(account, app)
        celery.start_worker()
        celery.start_beat()
        expected = app.order_count()
        wait_for(
            lambda: Order.objects.filter(channel=channel).count() == expected, "orders to arrive", logs=celery
        )
        run = SyncRun.objects.filter(channel=channel, job="orders").latest("created_at")
        assert run.state == SyncState.SUCCEEDED
        assert run.created == expected

        order = Order.objects.filter(channel=channel).order_by("placed_at").first()
        shipment, _ = services.record_shipment(order, actor=user, carrier="UPS", tracking_numbers=["1ZE2E"])
        wait_for(
            lambda: Shipment.objects.get(pk=shipment.pk).state == ShipmentState.CONFIRMED,
            "the shipment to be confirmed",
            logs=celery,
        )
        assert app.tracking_numbers(order.external_id) == ["1ZE2E"]
        assert app.order_status(order.external_id) == "S"
        writes_after_confirmation = app.writes()
        assert len(tracking_writes(app, order.external_id)) == 1
        # more dispatcher and sweeper ticks (and a "sync now") do not confirm it again
        from channels import sync

        sync.sync_now(channel, ["shipments"])
        wait_for(
            lambda: (
                SyncRun.objects.filter(channel=channel, job="shipments", state=SyncState.SUCCEEDED).count()
                >= 2
            ),
            "the extra shipments run",
            logs=celery,
        )
        time.sleep(2)
        assert app.writes() == writes_after_confirmation
        assert Shipment.objects.get(pk=shipment.pk).attempts == 1


def test_sigkilled_worker_job_is_picked_up_after_lease_expiry(celery: CeleryProcesses) -> None:
    _user, account = make_owner("alice@example.com", "Alice's Shop")
    with sandbox_store("xcart", orders=400, days=20) as (app, _server):
        channel = channel_for_store(account, app)
        app.faults.update({"latency": 0.4})  # each page takes a while: the kill lands mid-download
        celery.start_worker("worker-1")
        celery.start_beat()
        first_run = wait_for(
            lambda: (
                SyncRun.objects.filter(channel=channel, job="orders", state=SyncState.RUNNING)
                .filter(created__gt=0)
                .first()
            ),
            "a download to be in progress",
            logs=celery,
        )
        celery.kill("worker-1")
        stored_at_kill = Order.objects.filter(channel=channel).count()
        assert 0 < stored_at_kill < app.order_count()
        first_run.refresh_from_db()
        assert first_run.state == SyncState.RUNNING  # nobody told the database: the worker just died

        app.faults.update({"latency": 0.0})
        celery.start_worker("worker-2")
        expected = app.order_count()
        wait_for(
            lambda: Order.objects.filter(channel=channel).count() == expected,
            "the job to be finished by the new worker",
            logs=celery,
        )
        first_run.refresh_from_db()
        assert first_run.state == SyncState.FAILED
        assert "stopped" in first_run.error
        finisher = wait_for(
            lambda: SyncRun.objects.filter(
                channel=channel, job="orders", state=SyncState.SUCCEEDED, created__gt=0
            ).first(),
            "the finishing run",
            logs=celery,
        )
        assert finisher.started_at >= first_run.started_at
        # the pages committed before the kill were not written again
        assert finisher.created == expected - stored_at_kill
        assert Order.objects.filter(channel=channel).values("external_id").distinct().count() == expected
