"""The type checker's gates: the connectors stay strict and clean, the apps never get worse.

The connectors parse what strangers' stores send, so they are checked in strict mode with no
error allowed. The Django apps are checked with django-stubs; they still carry errors from before
the checker was introduced, so the gate is a ceiling that may only come down: fix errors and lower
``APPS_ERROR_CEILING`` in the same commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "channels", "orders", "inventory", "config")
APPS_ERROR_CEILING = 232


def _mypy(tmp_path: Path, *targets: str) -> tuple[int, str]:
    env = {**os.environ, "DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), *targets],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    found = re.search(r"Found (\d+) errors? in", output)
    if found:
        return int(found.group(1)), output
    assert "Success: no issues found" in output, output[-3000:]
    return 0, output


def test_connectors_are_strictly_typed_without_an_error(tmp_path: Path) -> None:
    errors, output = _mypy(tmp_path, "connectors")
    assert errors == 0, output[-6000:]


def test_the_apps_type_errors_never_rise_above_the_ceiling(tmp_path: Path) -> None:
    errors, output = _mypy(tmp_path, *APPS)
    assert errors <= APPS_ERROR_CEILING, (
        f"{errors} mypy errors in the apps, the ceiling is {APPS_ERROR_CEILING}: fix the new ones\n"
        + output[-6000:]
    )
