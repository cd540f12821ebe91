"""One per-store cap across worker processes: real Redis, real processes, a real sandbox store.

Each "worker" here is a separate Python process talking to the sandbox through ``StoreHttp``, the
seam every connector uses; the sandbox counts how many requests it is answering at once and when
each arrived, so the assertions are the store's view.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import RateLimited
from connectors.gates import SharedGates
from connectors.http import StoreHttp
from connectors.sandbox import SandboxServer, make_sandbox

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

#: A worker process: builds StoreHttp for the store and either sends requests from a few threads
#: ("load"), sends one and reports how it ended ("one"), or takes a slot and keeps it ("hold").
CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from connectors.errors import RateLimited
    from connectors.http import StoreHttp

    spec = json.loads(sys.argv[1])
    http = StoreHttp(
        spec["url"], platform="xcart", allow_private_hosts=True, max_in_flight=spec["cap"],
        max_retries=1, gate_key=spec["key"], gate_url=spec["redis"],
        gate_lease_seconds=spec["lease"], gate_prefix=spec["prefix"],
    )
    time.sleep(max(0.0, spec.get("start_at", 0) - time.time()))
    if spec["mode"] == "load":
        def send():
            for _ in range(spec["requests"]):
                http.request("GET", "/gate-test")
        threads = [threading.Thread(target=send) for _ in range(spec["threads"])]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        print("done", flush=True)
    elif spec["mode"] == "one":
        try:
            print("status", http.request("GET", "/gate-test").status_code, flush=True)
        except RateLimited as exc:
            print("rate_limited", round(exc.retry_after), flush=True)
    else:
        with http.gate.slot(time.sleep):
            print("held", flush=True)
            time.sleep(600)
    """
)


@pytest.fixture
def redis_gates() -> SharedGates:
    gates = SharedGates(REDIS_URL, lease_seconds=1.5, prefix=f"test-{uuid.uuid4().hex[:12]}:store-gate:")
    try:
        gates.redis.ping()
    except gates.errors as exc:  # pragma: no cover - the suite runs with Redis
        pytest.fail(f"these tests need Redis at REDIS_URL ({REDIS_URL}): {exc}")
    return gates


@pytest.fixture
def store() -> Iterator[Any]:
    app = make_sandbox("xcart")
    with SandboxServer(app) as server:
        yield app, server


def spawn(spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out


def spec_for(server: Any, gates: SharedGates | None, mode: str, **more: Any) -> dict[str, Any]:
    return {
        "url": server.url,
        "redis": REDIS_URL if gates is not None else "",
        "prefix": gates.prefix if gates is not None else "",
        "lease": gates.lease_ms / 1000 if gates is not None else 15,
        "key": "xcart:gate-test",
        "cap": 2,
        "mode": mode,
        **more,
    }


def run_load(server: Any, gates: SharedGates | None) -> None:
    start_at = time.time() + 2.0  # every process is up and waiting before the first request
    processes = [
        spawn(spec_for(server, gates, "load", threads=2, requests=3, start_at=start_at)) for _ in range(3)
    ]
    for process in processes:
        assert finish(process).strip() == "done"


def test_three_worker_processes_together_never_exceed_the_stores_cap(
    store: Any, redis_gates: SharedGates
) -> None:
    app, server = store
    app.faults.latency = 0.15

    run_load(server, redis_gates)

    assert app.request_count == 18
    assert app.max_in_flight == 2  # the cap, reached and never passed


def test_without_the_shared_gate_the_same_workers_exceed_the_cap(store: Any) -> None:
    """The control for the test above: the load is enough to pass the cap when each process counts alone."""
    app, server = store
    app.faults.latency = 0.15

    run_load(server, None)

    assert app.request_count == 18
    assert app.max_in_flight > 2


def test_a_retry_after_seen_by_one_worker_holds_back_the_others(store: Any, redis_gates: SharedGates) -> None:
    app, server = store
    app.faults.update({"rate_limit_next": 1, "retry_after": 3})
    first = spawn(spec_for(server, redis_gates, "one"))
    deadline = time.monotonic() + 30
    while app.request_count < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.request_count >= 1, "the first worker never reached the store"
    limited_at = app.arrivals[0]
    second = spawn(spec_for(server, redis_gates, "one"))  # up and sending well before 3 s have passed

    assert finish(second).split() == ["status", "404"]
    assert finish(first).split() == ["status", "404"]  # slept the Retry-After out, then got through
    later = list(app.arrivals)[1:]
    assert len(later) == 2
    assert min(later) >= limited_at + 3 - 0.05  # no request reached the store during its quiet time


def test_a_long_retry_after_sends_other_workers_jobs_back_without_a_request(
    store: Any, redis_gates: SharedGates
) -> None:
    app, server = store
    redis_gates.block("xcart:gate-test", 120)  # as a worker does when the store answers Retry-After: 120

    out = finish(spawn(spec_for(server, redis_gates, "one")))

    assert out.split()[0] == "rate_limited"
    assert 100 <= int(out.split()[1]) <= 120
    assert app.request_count == 0


def test_a_sigkilled_holders_slot_is_free_once_its_lease_runs_out(redis_gates: SharedGates) -> None:
    lease = redis_gates.lease_ms / 1000
    holder = spawn(
        {
            "url": "http://127.0.0.1:9",
            "redis": REDIS_URL,
            "prefix": redis_gates.prefix,
            "lease": lease,
            "key": "xcart:gate-test",
            "cap": 1,
            "mode": "hold",
        }
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"

        def enter() -> int:
            status, _ms = redis_gates.enter("xcart:gate-test", 1, None, 1, "probe", skip_quiet=False)
            return status

        # a live holder keeps its slot past its lease: it renews while its request runs
        held_until = time.monotonic() + 2 * lease
        while time.monotonic() < held_until:
            assert enter() == 3
            time.sleep(0.1)

        os.killpg(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while enter() != 0:
            assert time.monotonic() - killed_at < lease + 2, "the killed holder's slot was never freed"
            time.sleep(0.05)
        assert time.monotonic() - killed_at <= lease + 0.5
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        redis_gates.leave("xcart:gate-test", "probe")


def test_redis_unreachable_falls_back_to_the_process_gate_with_a_warning(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, server = store
    http = StoreHttp(
        server.url,
        platform="xcart",
        allow_private_hosts=True,
        max_in_flight=1,
        gate_key=f"xcart:down-{uuid.uuid4().hex[:8]}",
        gate_url="redis://127.0.0.1:1/0",  # nothing listens there
        gate_prefix="test-down:",
    )
    with caplog.at_level(logging.WARNING, logger="connectors.gates"):
        first = http.request("GET", "/gate-test")
        second = http.request("GET", "/gate-test")  # Redis is not tried again for a while

    assert (first.status_code, second.status_code) == (404, 404)
    assert app.request_count == 2
    warnings = [r for r in caplog.records if "store_gate.redis_unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_a_429_blocks_the_shared_gate_for_the_retry_after(store: Any, redis_gates: SharedGates) -> None:
    """One process, two requests: the second waits the quiet time out (slept, not sent)."""
    app, server = store
    app.faults.update({"rate_limit_next": 1, "retry_after": 2})
    slept: list[float] = []
    http = StoreHttp(
        server.url,
        platform="xcart",
        allow_private_hosts=True,
        max_retries=0,
        gate_key="xcart:gate-test",
        gate_url=REDIS_URL,
        gate_prefix=redis_gates.prefix,
        sleep=slept.append,
    )
    with pytest.raises(RateLimited):
        http.request("GET", "/gate-test")
    status, ms = redis_gates.enter("xcart:gate-test", 4, None, 1, "probe", skip_quiet=False)
    assert status == 1
    assert 1000 < ms <= 2000
