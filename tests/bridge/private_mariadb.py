"""A throw-away MariaDB server for the PHP bridge tests when none is configured.

CI points ``MARIADB_URL`` at the machine's server. A developer running ``make test`` with nothing set
gets a private server instead: Debian's ``mariadbd`` (``make test`` installs ``mariadb-server``)
started once per test process on a free loopback port with its own data directory and socket, root
without a password on TCP, and stopped when the process exits. Where no server binary exists the
PHP tests are left out with one line saying why (see ``tests/conftest.py``), never 75 errors.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_URL: str | None = None


def server_binaries() -> tuple[str, str] | None:
    """``(mariadbd, mariadb-install-db)`` when both are installed."""
    daemon = shutil.which("mariadbd") or shutil.which("mysqld") or _sbin("mariadbd") or _sbin("mysqld")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    return (daemon, install) if daemon and install else None


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_mariadb_url(timeout: float = 60.0) -> str:
    """Start (once per process) a private server and return its ``mysql://`` URL."""
    global _URL
    if _URL is None:
        _URL = start_private_mariadb(timeout=timeout)
    return _URL


def start_private_mariadb(*, timeout: float = 60.0, system_zone: str | None = None) -> str:
    """Start a private server (stopped when the process exits) and return its ``mysql://`` URL.

    ``system_zone`` is the operating-system zone the server runs in (``TZ``): MySQL's ``SYSTEM``
    time zone, summer time included, as on a host whose clock is set to local time.
    """
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("no MariaDB server binary (install Debian's mariadb-server or set MARIADB_URL)")
    daemon, install = binaries
    root = Path(tempfile.mkdtemp(prefix="storelink-mariadb-"))
    data, sock, port = root / "data", root / "mariadb.sock", _free_port()
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
         "--skip-test-db", *as_root],
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [daemon, "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
         "--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
         f"--pid-file={root / 'mariadb.pid'}", *as_root],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "TZ": system_zone} if system_zone else None,
    )  # fmt: skip

    def stop() -> None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        if process.poll() is None:
            process.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(root / 'server.log').read_text(errors='replace')[-800:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return f"mysql://root@127.0.0.1:{port}/test"
        time.sleep(0.2)
    raise RuntimeError(f"mariadbd did not accept connections within {timeout:.0f}s")
