"""Factories for tenancy and channel rows, in one place for every test package.

Channels are built directly (not through ``add_channel``) so tests that are not about the
connection test do not need a store; ``credentials`` still go through the encrypted field.
"""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from accounts.models import Account, ApiKey, Membership, Role, User
from channels.models import ConnectionState, SalesChannel

PASSWORD = "correct-horse-battery-9"

OPENCART_SECRET = "OcKey0123456789SECRETabcdefXYZ42"
OPENCART_FACTS: dict[str, Any] = {
    "platform_version": "3.0.3.8",
    "base_currency": "EUR",
    "timezone": "Europe/Berlin",
    "prices_include_tax": None,
    "order_statuses": [
        {"code": "1", "name": "Pending"},
        {"code": "2", "name": "Processing"},
        {"code": "3", "name": "Shipped"},
        {"code": "5", "name": "Complete"},
        {"code": "15", "name": "Processed"},
    ],
    "currencies": ["EUR", "GBP"],
    "can_read": True,
    "can_write": True,
    "warnings": [],
    "details": {},
}
OPENCART_SETTINGS: dict[str, Any] = {
    "version_family": "auto",
    "currency": "EUR",
    "use_store_tax_settings": True,
    "prices_include_tax": False,
    "use_options": True,
    "processed_status": "3",
    "import_statuses": ["1", "2"],
    "order_lookback_days": 7,
    "order_interval_minutes": 5,
    "stock_sync": True,
    "price_sync": False,
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password(PASSWORD)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Shop {n} Ltd")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class SalesChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesChannel

    account = factory.SubFactory(AccountFactory)
    platform = "opencart"
    name = factory.Sequence(lambda n: f"Channel {n}")
    store_url = factory.Sequence(lambda n: f"https://shop{n}.example.com")
    enabled = True
    connection_state = ConnectionState.OK
    credentials = factory.LazyFunction(lambda: {"api_username": "Default", "api_key": OPENCART_SECRET})
    settings = factory.LazyFunction(lambda: dict(OPENCART_SETTINGS))
    store_facts = factory.LazyFunction(lambda: dict(OPENCART_FACTS))
    last_success_at = factory.LazyFunction(timezone.now)


def channel_listing_elsewhere(account: Account, **fields: Any) -> SalesChannel:
    """A syncing channel whose listings were read and list none of a test's SKUs (only
    ``ELSEWHERE``, unmatched): a product or order change must not ask it for a job."""
    from inventory.models import Listing

    channel = SalesChannelFactory(
        account=account, settings={"stock_sync": True, "price_sync": True}, **fields
    )
    Listing.objects.create(account=account, channel=channel, sku="ELSEWHERE", remote_id="elsewhere")
    return channel


def member_of(account: Account, role: str = Role.MEMBER, **user_fields: Any) -> User:
    """A new user with ``role`` on ``account``."""
    user = UserFactory(**user_fields)
    MembershipFactory(account=account, user=user, role=role)
    return user


def api_key_for(account: Account, name: str = "warehouse") -> tuple[ApiKey, str]:
    from accounts.services import create_api_key

    return create_api_key(account, actor=None, name=name)
