"""Benchmarks (``make bench`` → ``python -m bench``): each module is run on its own and prints
what it measured next to a floor measured in the same run, as a ratio. No assertions: the
numbers are for people (and the issue's closing note), not a pass/fail gate.

Shared plumbing for the modules: Django set-up, a throw-away database with the migrations applied
(PostgreSQL when ``DATABASE_URL`` points at it, else SQLite), sandbox stores and timing helpers.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def setup_django() -> None:
    """Configure Django for a benchmark process (development keys unless the environment sets them)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Measure what production runs: DEBUG off (no query log kept for every statement), with
    # throw-away secrets for this run's throw-away database unless the environment sets them.
    # Subprocesses (worker, beat) inherit them.
    if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    if not os.environ.get("SECRET_KEY"):
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("ALLOW_PRIVATE_STORE_HOSTS", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


@contextmanager
def temporary_database(label: str) -> Iterator[str]:
    """A fresh database named after the benchmark and this process, migrated, dropped afterwards.

    The name is unique per run so benchmarks never touch the demo database, the test suite's
    databases, or each other.
    """
    from django.db import connection

    name = f"bench_{label}_{os.getpid()}"
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        name = str(Path(os.environ.get("STORELINK_VAR_DIR", ROOT / "var")) / f"{name}.sqlite3")
    settings.setdefault("TEST", {})["NAME"] = name
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield connection.settings_dict["NAME"]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def database_url(name: str) -> str:
    """A ``DATABASE_URL`` for subprocesses (worker, beat) that must share the benchmark database."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{name}"
    auth = str(db.get("USER") or "postgres") + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def timed(operation: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = operation()
    return time.perf_counter() - started, result


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 50 samples is the 48th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"\n== {title}")
    for label, value in rows:
        print(f"   {label.ljust(width)}  {value}")
    sys.stdout.flush()


def channel_for(account: Any, app: Any, *, name: str = "", **settings: Any) -> Any:
    """A channel row pointing at a running sandbox store, with its own credentials and settings."""
    from channels.models import ConnectionState, SalesChannel

    return SalesChannel.objects.create(
        account=account,
        platform=app.platform,
        name=name or f"{app.platform} bench store",
        store_url=app.connector_store_url(),
        connection_state=ConnectionState.OK,
        credentials=app.connector_credentials(),
        settings={**app.connector_settings(), **settings},
    )
