"""``python -m connectors.sandbox seed|serve`` from the command line, as ``make run`` and the benchmarks
use it: seeding a file-backed store that a later run (or ``serve``) reads, and a served store that
announces itself on stdout and answers on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connectors.sandbox import SANDBOX_PLATFORMS
from connectors.sandbox.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("platform", SANDBOX_PLATFORMS)
def test_seed_fills_a_file_backed_store_that_serve_then_reads(
    platform: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / f"{platform}.db")
    assert (
        main(["seed", "--platform", platform, "--db", db, "--products", "6", "--orders", "8", "--days", "3"])
        == 0
    )
    seeded = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seeded["platform"] == platform
    assert 6 <= seeded["orders"] <= 8  # OpenCart seeds every tenth checkout unconfirmed (not an order)

    # a second command on the same file sees the orders (the file is the store)
    assert main(["seed", "--platform", platform, "--db", db]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["orders"] == seeded["orders"]


@pytest.mark.parametrize("platform", SANDBOX_PLATFORMS)
def test_seeding_orders_into_an_empty_store_does_not_crash(
    platform: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed", "--platform", platform, "--db", str(tmp_path / "s.db"), "--orders", "5"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["orders"] >= 4


@pytest.mark.parametrize("platform", SANDBOX_PLATFORMS)
def test_serve_prints_its_url_and_answers_on_loopback(platform: str) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.sandbox",
            "serve",
            "--platform",
            platform,
            "--products",
            "4",
            "--orders",
            "5",
            "--faults",
            '{"latency": 0.01}',
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        line = ""
        while not line and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline() if process.stdout else ""
        assert line, f"serve printed nothing: {process.stderr.read() if process.poll() is not None else ''}"
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:")
        assert info["credentials"]
        assert info["settings"]
        state = httpx.get(f"{info['url']}/__sandbox__/state", timeout=10).json()
        assert state["platform"] == platform
        assert state["orders"] >= 4
        assert state["faults"]["latency"] == 0.01
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_demo_stores_share_their_first_skus_so_one_product_sells_on_all_three(tmp_path: Path) -> None:
    """``make run`` seeds with ``shared_skus=10``: a product master line then reaches every store."""
    from connectors.base import ConnectorOptions
    from connectors.registry import build_connector
    from connectors.sandbox import make_sandbox
    from connectors.sandbox.core import SandboxServer

    skus: dict[str, set[str]] = {}
    for platform in ("opencart", "xcart", "threedcart"):
        db = str(tmp_path / f"{platform}.db")
        options = (
            ["--option", "public_key=pk", "--option", "private_key=sk"] if platform == "threedcart" else []
        )
        seed = ["seed", "--platform", platform, "--db", db, "--products", "6", "--orders", "4"]
        assert main([*seed, "--option", "shared_skus=3", *options]) == 0
        extra = {"public_key": "pk", "private_key": "sk"} if platform == "threedcart" else {}
        app = make_sandbox(platform, db_path=db, **extra)
        with SandboxServer(app) as server:
            assert server.url
            connector = build_connector(
                platform,
                app.connector_store_url(),
                app.connector_credentials(),
                app.connector_settings(),
                options=ConnectorOptions(allow_private_hosts=True, **app.connector_options()),
            )
            skus[platform] = {listing.sku for listing in connector.list_listings()}
            connector.close()
    shared = set.intersection(*skus.values())
    assert shared == {"DEMO-0001", "DEMO-0002", "DEMO-0003"}
    assert all(len(found - shared) > 0 for found in skus.values())  # each store sells its own as well
