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
