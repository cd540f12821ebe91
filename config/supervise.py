"""Keep one process running: restart it when it exits, stop it when we are stopped.

``make run`` starts web, worker, beat and the sandbox stores under honcho, which stops *everything*
when one process exits and never restarts anything. A Celery worker that dies (a broker restart, an
out-of-memory kill) would then leave orders, shipments and stock unsynced until someone notices.
Each Procfile line is therefore wrapped as ``python -m config.supervise -- <command>``: the command
is restarted after an exit, with a back-off that doubles up to 30 s so a process that cannot start
does not spin, and resets once it has stayed up for a minute. SIGTERM/SIGINT are passed on to the
child and end the supervisor, so Ctrl-C still stops the demo.

Production stacks use their own supervisor (``restart:`` in docker-compose.yml, systemd ...).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

#: First and longest pause between restarts, in seconds.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: A child that stayed up this long is considered healthy again: the back-off starts over.
HEALTHY_AFTER = 60.0


def supervise(command: list[str]) -> int:
    """Run ``command`` until we receive SIGTERM/SIGINT; returns the exit code to leave with."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = FIRST_BACKOFF
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)  # noqa: S603  (the Procfile's own command line)
        code = child.wait()
        if stopping:
            return code
        if time.monotonic() - started >= HEALTHY_AFTER:
            backoff = FIRST_BACKOFF
        sys.stderr.write(f"supervise: {command[0]} exited with {code}; restarting in {backoff:.0f}s\n")
        sys.stderr.flush()
        deadline = time.monotonic() + backoff
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return code
        backoff = min(backoff * 2, MAX_BACKOFF)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.stderr.write("usage: python -m config.supervise -- COMMAND [ARGS ...]\n")
        return 2
    return supervise(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
