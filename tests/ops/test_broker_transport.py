"""The Redis transport settings select keeps a worker alive when the broker goes away under it.

The end-to-end test restarts a real Redis under a real worker; this one pins the library bug
itself in a second: a channel holding an unacknowledged message is closed after its connection was
collected (the order Celery's consumer uses on a connection loss). kombu's stock QoS then dereferences
the detached transport's client and raises ``AttributeError`` ('hostname'), which kills the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection, Queue
from kombu.transport import redis as kombu_redis

from config.broker import RedisTransport
from tests.e2e.private_redis import PrivateRedis, redis_server_binary

pytestmark = pytest.mark.skipif(redis_server_binary() is None, reason="needs redis-server")


def _close_after_collect(tmp_path: Path, transport: type) -> None:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        with Connection(server.url) as producer:
            producer.SimpleQueue("jobs").put({"job": "orders"})
        connection = Connection(server.url, transport=transport)
        channel = connection.default_channel
        delivered: list[object] = []
        consumer = connection.Consumer(
            Queue("jobs"), channel=channel, callbacks=[lambda _b, m: delivered.append(m)]
        )
        consumer.consume()
        connection.drain_events(timeout=5)
        assert delivered
        assert channel.qos._delivered  # one message, not acknowledged
        server.kill()
        connection.transport.client = None  # what Connection.collect() leaves behind
        channel.close()
    finally:
        server.kill()


def test_stock_kombu_crashes_closing_a_channel_of_a_collected_connection(tmp_path: Path) -> None:
    with pytest.raises(AttributeError, match="hostname"):
        _close_after_collect(tmp_path, kombu_redis.Transport)


def test_storelink_transport_closes_it_quietly(tmp_path: Path) -> None:
    _close_after_collect(tmp_path, RedisTransport)


def test_settings_select_it_for_redis_brokers() -> None:
    code = "import config.settings as s; print(s.CELERY_BROKER_TRANSPORT)"
    env = {**os.environ, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "DEBUG": "1"}
    printed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert printed.stdout.strip() == "config.broker:RedisTransport"
