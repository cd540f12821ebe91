"""The harness every end-to-end test shares: real ``celery -A config worker`` and ``celery -A config
beat`` processes on this test's database and a broker nobody else reads.

The scenarios live in the test modules; this file only knows how to start, watch and stop the
processes, so a fix to start-up, clean-up or the broker choice is made once for all of them.
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

from config.broker import filesystem_transport_options

ROOT = Path(settings.BASE_DIR)
#: How long a test waits for the processes to do something, unless it says otherwise.
WAIT_SECONDS = 60.0


class CeleryProcesses:
    """Starts, kills and stops worker and beat processes sharing this test's database and broker.

    Each process runs in its own session (so a kill takes its pool threads and children with it),
    with ``tmp_path`` as its working directory and its output in ``tmp_path/<name>.log``.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.broker_url, self.transport_options = self._private_broker()
        self.env = self._env()

    def _private_broker(self) -> tuple[str, dict[str, Any]]:
        redis_url = os.environ.get("REDIS_URL", "")
        if redis_url:
            # A database index of our own (8–15; bench.freshness uses 6, the demo 0), so other
            # people's workers on the same Redis never take these tasks (they would look for the
            # channel in another test database).
            index = 8 + zlib.crc32(str(self.tmp_path).encode()) % 8
            base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url.rstrip("/")
            return f"{base}/{index}", {}
        # config.settings puts the filesystem broker under $STORELINK_VAR_DIR/broker: the same
        # folders for the worker, beat and this process.
        return "filesystem://", filesystem_transport_options(self.tmp_path / "var" / "broker")

    def _env(self) -> dict[str, str]:
        db = connection.settings_dict
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or "5432"
        user = db.get("USER") or "postgres"
        password = db.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else f"{user}@"
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{auth}{host}:{port}/{db['NAME']}",
            "CELERY_BROKER_URL": self.broker_url,
            "STORELINK_VAR_DIR": str(self.tmp_path / "var"),
            "ALLOW_PRIVATE_STORE_HOSTS": "1",
            "CONN_MAX_AGE": "0",
            "PYTHONPATH": str(ROOT),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
        if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
            env["DEBUG"] = "1"  # the development keys, the same ones this test process encrypts with
        return env

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        celery = str(Path(sys.executable).with_name("celery"))
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115  (lives as long as the process)
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

    def start_production_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        """A worker started as the Procfile starts it: the prefork pool, two processes."""
        return self.start(
            name,
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            f"--hostname={name}-{os.getpid()}@%h",
        )

    def use_broker(self, url: str) -> None:
        """Point this test process and every process started from now on at another broker."""
        from config.celery import app

        self.broker_url, self.transport_options = url, {}
        self.env["CELERY_BROKER_URL"] = url
        app.conf.broker_url = url
        app.conf.broker_transport_options = {}
        _reset_broker_connections(app)

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
        """SIGKILL one process, as a crashed host would: nothing it holds is released cleanly."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        """SIGTERM every process at once (warm shutdown), SIGKILL any still there after 10 s."""
        processes = list(self.processes.values())
        self.processes.clear()
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def clear_broker(self) -> None:
        """Drop what a killed worker left unacknowledged in our private Redis database."""
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

    def logs(self, lines: int = 40) -> str:
        """The last lines of every process's log, for a failure message."""
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for log in sorted(self.tmp_path.glob("*.log"))
        )

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
        """Poll ``condition`` until it returns something truthy (returned); fail with the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")


def fast_beat_schedule(*, sweep_stale_runs: bool) -> None:
    """The beat rows of migration 0003 (the transactional test database was flushed), every second.

    The dispatcher always; the stale-run sweeper only for tests about crashed workers.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    rows = [("Storelink: dispatch due sync jobs", "channels.tasks.dispatch_due_jobs")]
    if sweep_stale_runs:
        rows.append(("Storelink: sweep stale sync runs", "channels.tasks.sweep_stale_runs"))
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    for name, task in rows:
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": interval, "expire_seconds": 5, "enabled": True}
        )


def _reset_broker_connections(app: Any) -> None:
    """Drop pooled connections so the next send uses the broker settings just changed.

    kombu keeps its connection and producer pools in process-wide dicts keyed by the broker's
    address; closing only ``app.pool`` left that closed pool in the dict, and the next test that drew
    the same Redis index got "Acquire on closed pool". ``pools.reset`` closes and forgets them all.
    """
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery(tmp_path: Path, settings: Any) -> Iterator[CeleryProcesses]:
    """No process started yet; this test process already sends its tasks to the private broker.

    Tests add to ``celery.env`` before starting processes when they need more settings.
    """
    from config.celery import app

    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    processes = CeleryProcesses(tmp_path)
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = processes.broker_url
    app.conf.broker_transport_options = processes.transport_options
    _reset_broker_connections(app)
    try:
        yield processes
    finally:
        processes.stop_all()
        processes.clear_broker()
        app.conf.broker_url, app.conf.broker_transport_options = saved
        _reset_broker_connections(app)


def kill_worker_mid_download(
    celery: CeleryProcesses, app: Any, channel: Any, timeout: float = WAIT_SECONDS
) -> Any:
    """Start a worker and beat, wait until the channel's order download has stored something, and
    SIGKILL the worker there; returns the run it left behind (still "running" in the database).

    The sandbox answers slowly meanwhile (0.4 s a page) so the kill lands mid-download; callers set
    the latency back to 0 before they start the worker that finishes the job.
    """
    from channels.models import SyncRun, SyncState

    app.faults.update({"latency": 0.4})
    celery.start_worker("worker-1")
    celery.start_beat()
    run = celery.wait_for(
        lambda: (
            SyncRun.objects.filter(channel=channel, job="orders", state=SyncState.RUNNING)
            .filter(created__gt=0)
            .first()
        ),
        "a download to be in progress",
        timeout=timeout,
    )
    celery.kill("worker-1")
    return run
