"""The broker pieces settings point Celery at: the filesystem broker's folders and the Redis transport.

Filesystem: transport options built in one place.

Settings, the end-to-end tests and the benchmarks all point worker, beat and the sending process at
the same folders. kombu keeps its exchange table under ``control_folder``, which defaults to a
relative ``control/`` in the current working directory; leaving it out anywhere litters the checkout
(or whatever directory a process happens to run in), so every caller goes through this function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kombu.transport import redis as kombu_redis


def filesystem_transport_options(folder: Path) -> dict[str, Any]:
    """Options keeping every file of the broker under ``folder``, which is created if missing.

    Messages wait in ``queue/`` (written and read by the same folder, so any process that sends also
    consumes), consumed messages are not kept (``processed/`` only exists because kombu wants it),
    and ``control/`` holds the exchange bindings.
    """
    folders = {name: folder / name for name in ("queue", "processed", "control")}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }


# --------------------------------------------------------------------------------------------------
# Redis: a worker that lives through a broker restart
# --------------------------------------------------------------------------------------------------
#
# kombu 5.7.0 (the newest release) crashes every worker on a Redis restart while it holds an
# unacknowledged message: when the connection drops, Celery's consumer first ``collect()``s the
# connection, whose channel close stops at the dead BRPOP read (a connection error, swallowed) before
# the channel is marked closed; ``collect()`` then detaches the transport from its connection
# (``transport.client = None``). Celery next ``close()``s the same connection, the half-open channel
# is closed a second time, and restoring its unacknowledged message asks the detached transport for
# the broker's address: ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which is
# not a connection error, so the worker stops ("Unrecoverable error"). The classes below never
# restore through a detached transport; settings select them for ``redis://`` and ``rediss://``
# brokers (``CELERY_BROKER_TRANSPORT``). tests/e2e/test_broker_restart_e2e.py reproduces the crash.


class RedisQoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:
        """Leave the messages in Redis when the transport is already detached from its connection.

        They stay in the broker's unacknowledged set, which the next worker's visibility-timeout scan
        puts back on the queue; Storelink's jobs do not depend on it either (due times and the stale
        run sweeper request them again).
        """
        transport = self.channel.connection
        if client is None and (transport is None or transport.client is None):
            self._delivered.clear()
            return
        super().restore_unacked(client)


class RedisChannel(kombu_redis.Channel):
    QoS = RedisQoS


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel
