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
    # a product master listed on two channels, pages replayed from memory, every page the same cost
    assert "product master of " in report, report
    assert "listed on 2 channels" in report, report
    assert ", 0 not found)" in report, report
    assert "(constant: True)" in report, report


def test_stock_push_runs_and_sends_exactly_the_changed_items(tmp_path: Path) -> None:
    """Small: 1,000 listings, 10 changed per round, 5,000 orders; the report, not the timing, is checked."""
    env = {
        **os.environ,
        "LISTINGS": "1000",
        "ROUNDS": "3",
        "ORDERS": "5000",
        "OPEN_ORDERS": "100",
        "STORELINK_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.stock_push"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    sent = [line for line in report.splitlines() if "items sent per run (ours)" in line]
    assert len(sent) == 2, report  # over loopback and with store latency
    assert all("10, 10, 10  (expected 10)" in line for line in sent), report
    queries = [
        line.split("database queries per job", 1)[1].replace(",", " ").split()
        for line in report.splitlines()
        if "database queries per job" in line
    ]
    assert queries, report
    assert all(len(counts) == 3 and len(set(counts)) == 1 for counts in queries), report  # same each run


def test_dispatcher_runs_and_claims_exactly_the_due_jobs(tmp_path: Path) -> None:
    """Small: 500 channels, 5 due per busy tick; the counts, not the timing, are checked."""
    env = {**os.environ, "CHANNELS": "500", "ROUNDS": "3", "STORELINK_VAR_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.dispatcher"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "ratio busy tick / floor" in report, report
    claimed = next(line for line in report.splitlines() if "jobs claimed per busy tick" in line)
    assert "5, 5, 5  (expected 5)" in claimed, report
    statements = next(line for line in report.splitlines() if "statements per busy tick" in line)
    counts = statements.split("tick", 1)[1].split("(")[0].replace(",", " ").split()
    assert len(set(counts)) == 1, report  # the same every tick
    assert int(counts[0]) <= 20, report


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="pages' account is written with PostgreSQL's COPY; CI sets DATABASE_URL",
)
def test_pages_runs_every_page_against_a_real_server(tmp_path: Path) -> None:
    """Small: 3 channels, 300 orders, 2 requests a page; every page answered 200 (the bench
    raises otherwise) and reports its queries and percentiles next to the floor."""
    env = {
        **os.environ,
        "CHANNELS": "3",
        "ORDERS": "300",
        "PRODUCTS": "50",
        "LISTINGS_PER_CHANNEL": "30",
        "RUNS_PER_CHANNEL": "5",
        "REQUESTS": "2",
        "STORELINK_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.pages"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    pages = [line for line in report.splitlines() if "ratio p50/floor" in line]
    names = {line.split("queries")[0].strip() for line in pages}
    for expected in (
        "channel list",
        "channel page",
        "orders list, first page",
        "orders list, filtered",
        "orders list, deep (3/4 down)",
        "orders list, search",
        "order page",
        "products",
        "listings by channel",
        "API orders",
        "API listings",
    ):
        assert expected in names, report
    assert all(int(line.split("queries")[1].split()[0]) <= 15 for line in pages), report


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="csv_export's floor is a PostgreSQL COPY; CI sets DATABASE_URL",
)
def test_csv_export_runs_and_reports_its_memory(tmp_path: Path) -> None:
    """Small: 300 orders; what is checked is that the export ran and the report is complete."""
    env = {**os.environ, "ORDERS": "300", "STORELINK_VAR_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.csv_export"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "orders CSV export, 300 orders × 3 lines" in report, report
    assert "ratio ours/floor" in report, report
    assert "memory ratio all/tenth" in report, report


def test_cross_channel_runs_and_every_sale_reaches_the_other_stores(tmp_path: Path) -> None:
    """Small: three stores, two sales, a short idle window; what is counted, not how fast."""
    env = {
        **os.environ,
        "SALES": "2",
        "IDLE_SECONDS": "20",
        "GAP_MIN": "1",
        "GAP_MAX": "5",
        "SETTLE_SECONDS": "3",
        "STORELINK_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.cross_channel"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "sales measured                " in report, report
    assert "2 (lost: 0)" in report, report
    probes = next(line for line in report.splitlines() if "probes the stores answered" in line)
    assert int(probes.split()[-1]) > 0, report  # polls of quiet stores asked before downloading
    assert "with one full download per 5 min" in report, report


def test_fanout_asks_only_the_channels_that_list_what_changed(tmp_path: Path) -> None:
    """Small: 10 channels, 200 products on 3 channels each, 200 orders in pages of 50."""
    env = {
        **os.environ,
        "CHANNELS": "10",
        "PRODUCTS": "200",
        "ORDERS": "200",
        "PAGE": "50",
        "ROUNDS": "3",
        "STORELINK_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.fanout"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    lines = {line.split("  ")[1].strip(): line for line in report.splitlines() if line.startswith("   ")}
    assert "3, 3, 3  (expected 3)" in lines["stock jobs requested per edit"], report
    assert lines["stock jobs on channels not listing it"].split()[-1] == "0", report
    statements = lines["statements per edit (with commit claim)"].split(")", 1)[1].replace(",", " ").split()
    assert len(set(statements)) == 1, report  # the same every edit
    asked = lines["download: channels asked"]
    assert "others asked: 0)" in asked, report  # only channels listing the downloaded SKUs
    listing = int(asked.split("channels listing the orders' SKUs:")[1].split(",")[0])
    assert 0 < listing < 10, report
    requested = int(lines["download: stock jobs requested"].split("requested", 1)[1].split()[0])
    assert requested < 10 * 4, report  # not every channel on every page
    assert "ratio edit / floor" in report, report
