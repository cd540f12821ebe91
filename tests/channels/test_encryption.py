"""Credentials are encrypted at rest with MultiFernet; keys rotate without losing data."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from channels.fields import PREFIX, CredentialsUnreadable, UnreadableCredentials, decrypt_json
from channels.models import SalesChannel
from tests.factories import OPENCART_SECRET, SalesChannelFactory

pytestmark = pytest.mark.django_db


def raw_credentials(channel: SalesChannel) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT credentials FROM {SalesChannel._meta.db_table} WHERE id = %s",
            [channel.pk.hex if connection.vendor == "sqlite" else channel.pk],
        )
        return cursor.fetchone()[0]


def test_database_column_holds_no_plaintext(alice) -> None:
    channel = SalesChannelFactory(account=alice.account)
    stored = raw_credentials(channel)
    assert stored.startswith(PREFIX)
    assert OPENCART_SECRET not in stored
    assert "api_key" not in stored
    assert SalesChannel.objects.get(pk=channel.pk).credentials["api_key"] == OPENCART_SECRET


def test_each_save_uses_a_fresh_token(alice) -> None:
    first = SalesChannelFactory(account=alice.account)
    second = SalesChannelFactory(account=alice.account, credentials=dict(first.credentials))
    assert raw_credentials(first) != raw_credentials(second)


def test_key_rotation_with_two_keys(alice, settings) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    channel = SalesChannelFactory(account=alice.account)
    before = raw_credentials(channel)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]  # new key first: encrypts; old still decrypts
    assert SalesChannel.objects.get(pk=channel.pk).credentials["api_key"] == OPENCART_SECRET
    call_command("rotate_field_keys", stdout=io.StringIO())
    after = raw_credentials(channel)
    assert after != before

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # old key dropped: rotated rows still readable
    assert SalesChannel.objects.get(pk=channel.pk).credentials["api_key"] == OPENCART_SECRET
    assert decrypt_json(after)["api_key"] == OPENCART_SECRET
    with pytest.raises(CredentialsUnreadable):
        decrypt_json(before)


def test_wrong_key_is_flagged_instead_of_returning_empty(alice, settings) -> None:
    channel = SalesChannelFactory(account=alice.account)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    loaded = SalesChannel.objects.get(pk=channel.pk)
    assert isinstance(loaded.credentials, UnreadableCredentials)
    assert loaded.credentials_unreadable


def test_lookups_on_ciphertext_are_refused(alice) -> None:
    SalesChannelFactory(account=alice.account)
    with pytest.raises(Exception, match="Unsupported lookup"):
        list(SalesChannel.objects.filter(credentials__contains=OPENCART_SECRET))
    assert SalesChannel.objects.filter(credentials__isnull=False).count() == 1
