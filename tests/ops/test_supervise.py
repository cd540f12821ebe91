"""``config.supervise`` keeps a Procfile process alive and still stops when told to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(condition: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_killed_child_is_restarted_and_sigterm_stops_both(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    child = f"import os,time; open({str(pids)!r},'a').write(f'{{os.getpid()}}\\n'); time.sleep(600)"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "config.supervise", "--", sys.executable, "-c", child],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        first = _wait_for(lambda: _pids(pids), "the first child")[0]
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer or a crash would
        second = _wait_for(lambda: _pids(pids)[1:], "a restarted child")[0]
        assert second != first
        assert supervisor.poll() is None

        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=20)
        _wait_for(lambda: not _alive(second), "the child to stop with its supervisor")
        assert len(_pids(pids)) == 2, "nothing was started after the stop"
        assert b"restarting in" in supervisor.stderr.read()  # type: ignore[union-attr]
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_usage_without_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "config.supervise"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "usage" in result.stderr
