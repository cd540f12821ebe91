"""A loopback TCP relay in front of MariaDB that counts what the PHP bridge asks the database.

Pointing a store's ``config.php`` at the relay shows, per request, how many connections the bridge
opened and which statements it sent: every client command packet (sequence id 0 after the handshake)
is read, and ``COM_QUERY`` / ``COM_STMT_EXECUTE`` are the statements that cost the server work
(``COM_STMT_PREPARE`` texts are kept to say which statement each execute ran). The bridge does not ask
for TLS on a loopback connection, so the packets are readable; nothing is changed on the way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

COM_QUERY = 0x03
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17


@dataclass
class Seen:
    connections: int = 0
    statements: list[str] = field(default_factory=list)


class MySqlCounter:
    """``with MySqlCounter(host, port) as relay:`` then ``relay.port``; ``take()`` returns and resets."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.seen = Seen()
        self.closed = False

    def __enter__(self) -> MySqlCounter:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True
        # shutdown wakes the accept() blocked in the other thread; close alone would leave it listening
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.listener.close()

    def take(self) -> Seen:
        with self.lock:
            seen, self.seen = self.seen, Seen()
        return seen

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.seen.connections += 1
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        buffer = b""
        prepared: list[str] = []
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                server.sendall(data)
                buffer += data
                while len(buffer) >= 4:
                    length = int.from_bytes(buffer[:3], "little")
                    if len(buffer) < 4 + length:
                        break
                    sequence, payload = buffer[3], buffer[4 : 4 + length]
                    buffer = buffer[4 + length :]
                    if sequence != 0 or not payload:
                        continue
                    text = payload[1:].decode("utf-8", "replace")
                    if payload[0] == COM_STMT_PREPARE:
                        prepared.append(text)
                    elif payload[0] in (COM_QUERY, COM_STMT_EXECUTE):
                        statement = text if payload[0] == COM_QUERY else f"EXECUTE {prepared[-1:]}"
                        with self.lock:
                            self.seen.statements.append(statement)
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
