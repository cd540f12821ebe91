"""Start sandbox stores on loopback, or seed one.

    python -m connectors.sandbox serve --platform xcart --port 8702 --db var/sandbox/xcart.db \
        --products 50 --orders 200 --days 14
    python -m connectors.sandbox seed --platform xcart --db var/sandbox/xcart.db --orders 1000
    python -m connectors.sandbox serve --platform opencart --option family=4.1 --option prefix=oc_

``--option key=value`` passes platform options (OpenCart ``family``/``prefix``, X-Cart ``flavour``).
A served store prints one JSON line with its URL, credentials and settings, so scripts (``make run``,
benchmarks) can connect a channel to it without knowing platform details.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from connectors.sandbox import SANDBOX_PLATFORMS, Faults, SandboxServer, make_sandbox


def _options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option needs key=value, got {pair!r}")
        options[key] = value
    return options


def _start_order_drip(app: Any, every: float) -> None:
    """Keep customers "shopping" in the background so a demo shows orders arriving."""

    def drip() -> None:
        while True:
            time.sleep(every)
            app.add_order()

    threading.Thread(target=drip, name="order-drip", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox")
    parser.add_argument("command", choices=("serve", "seed"))
    parser.add_argument("--platform", required=True, choices=SANDBOX_PLATFORMS)
    parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--products", type=int, default=0)
    parser.add_argument("--orders", type=int, default=0)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[])
    parser.add_argument("--faults", default="", help="JSON object of fault knobs")
    parser.add_argument(
        "--new-order-every",
        type=float,
        default=0.0,
        help="Place a new order every N seconds while serving (the demo's 'orders keep arriving').",
    )
    args = parser.parse_args(argv)

    if args.db != ":memory:":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    faults = Faults()
    if args.faults:
        faults.update(json.loads(args.faults))
    options = _options(args.option)
    shared_skus = int(options.pop("shared_skus", 0) or 0)
    app = make_sandbox(args.platform, db_path=args.db, faults=faults, **options)
    app.shared_skus = shared_skus
    if args.products or args.orders:
        app.seed(args.products, args.orders, args.days, args.seed)
    if args.command == "seed":
        print(json.dumps(app.state()))  # noqa: T201 - CLI output
        return 0

    server = SandboxServer(app, host=args.host, port=args.port)
    info = {
        "platform": args.platform,
        "url": server.url,
        "store_url": app.connector_store_url(),
        "credentials": app.connector_credentials(),
        "settings": app.connector_settings(),
        "options": app.connector_options(),
    }
    print(json.dumps(info), flush=True)  # noqa: T201 - CLI output
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.new_order_every > 0:
        _start_order_drip(app, args.new_order_every)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
