"""Shared fixtures: two tenants for every access test, API clients, a scripted fake store.

Alice and Bob each own an account; every access test creates something for both and checks that
one never sees or changes the other's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Account, Role, User
from connectors.base import Connector, StoreFacts, StoreStatus
from tests.factories import MembershipFactory, api_key_for


@dataclass
class Tenant:
    user: User
    account: Account

    def member(self, role: str = Role.MEMBER) -> User:
        from tests.factories import member_of

        return member_of(self.account, role)


def _tenant(email: str, name: str) -> Tenant:
    membership = MembershipFactory(user__email=email, account__name=name, role=Role.OWNER)
    return Tenant(user=membership.user, account=membership.account)


@pytest.fixture
def alice(db: Any) -> Tenant:
    return _tenant("alice@example.com", "Alice's Shop")


@pytest.fixture
def bob(db: Any) -> Tenant:
    return _tenant("bob@example.com", "Bob's Shop")


def api_client_with_key(account: Account) -> APIClient:
    _key, plaintext = api_key_for(account)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return client


@pytest.fixture
def alice_api(alice: Tenant) -> APIClient:
    return api_client_with_key(alice.account)


@pytest.fixture
def allow_private_hosts(settings: Any) -> None:
    """Store URLs on loopback / example hosts are accepted without DNS (demo and tests)."""
    settings.ALLOW_PRIVATE_STORE_HOSTS = True


DEFAULT_FACTS = StoreFacts(
    platform_version="3.0.3.8",
    base_currency="EUR",
    timezone="Europe/Berlin",
    order_statuses=(
        StoreStatus("1", "Pending"),
        StoreStatus("2", "Processing"),
        StoreStatus("3", "Shipped"),
        StoreStatus("5", "Complete"),
        StoreStatus("15", "Processed"),
    ),
    currencies=("EUR", "GBP"),
)


@dataclass
class FakeStore:
    """What the fake connector's ``test_connection`` does; ``calls`` records how it was built."""

    facts: StoreFacts = DEFAULT_FACTS
    error: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def connector(
        self, platform: str, store_url: str, credentials: Any, settings: Any, **kwargs: Any
    ) -> Connector:
        store = self
        from connectors.registry import connector_class

        base = connector_class(platform)

        class FakeConnector(base):  # type: ignore[misc, valid-type]
            def test_connection(self) -> StoreFacts:
                store.calls.append(
                    {
                        "platform": platform,
                        "store_url": self.store_url,
                        "credentials": dict(self.credentials),
                        "options": self.options,
                    }
                )
                if store.error is not None:
                    raise store.error
                return store.facts

        return FakeConnector(store_url, credentials, settings, **kwargs)


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch, allow_private_hosts: None) -> Iterator[FakeStore]:
    """Replace the registry's connector construction: everything above it (services) is real."""
    store = FakeStore()
    monkeypatch.setattr("channels.services.build_connector", store.connector)
    return store


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """PBKDF2's deliberate slowness is for attackers, not for a test suite on two shared cores."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _php_tests_unavailable() -> str:
    """Why the PHP bridge tests cannot run here, or "" when they can."""
    import os
    import shutil

    from tests.bridge.private_mariadb import server_binaries

    if not shutil.which("php"):
        return "php is not installed"
    if not os.environ.get("MARIADB_URL") and server_binaries() is None:
        return "MARIADB_URL is not set and no MariaDB server (Debian's mariadb-server) is installed"
    return ""


def _own_server_tests_unavailable() -> str:
    """Why the tests that start their own MariaDB server cannot run here, or "" when they can."""
    from tests.bridge.private_mariadb import server_binaries

    if _php_tests_unavailable():
        return _php_tests_unavailable()
    if server_binaries() is None:
        return "no MariaDB server binary (Debian's mariadb-server) to start one in a zone with summer time"
    return ""


def pytest_report_header(config: pytest.Config) -> str | None:
    lines = []
    if reason := _php_tests_unavailable():
        lines.append(f"PHP bridge tests left out: {reason}")
    elif reason := _own_server_tests_unavailable():
        lines.append(f"PHP bridge tests on their own MariaDB server left out: {reason}")
    return "\n".join(lines) or None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out (and say why, in the header) the PHP bridge tests a machine cannot run."""
    php_missing = bool(_php_tests_unavailable())
    server_missing = bool(_own_server_tests_unavailable())
    if not php_missing and not server_missing:
        return
    kept = [
        item
        for item in items
        if not (php_missing and item.get_closest_marker("php"))
        and not (server_missing and item.get_closest_marker("mariadb_server"))
    ]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
