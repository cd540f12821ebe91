"""The benchmarks still run (``make bench``): a small orders_ingest end to end, no timing asserted.

Benchmarks patch services to count queries per page; a changed signature breaks them silently
unless something runs them. This runs the real module on a few hundred orders and checks what it
reports besides time: constant queries per page and a second run that writes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="orders_ingest's floor is a PostgreSQL COPY; CI sets DATABASE_URL",
)
def test_orders_ingest_runs_and_a_second_run_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "ORDERS": "150", "STORELINK_VAR_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.orders_ingest"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "ratio" in report
    assert "order/line writes 0" in report, report
