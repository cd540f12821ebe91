"""config.db: queries compiled once and run as prepared statements, seen by Django's query log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels.models import SalesChannel
from config.db import PreparedQuery, execute_ctes, prepared_cursor
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db

CHANNEL = PreparedQuery(
    lambda channel_id: SalesChannel.objects.filter(pk=channel_id), channel_id=uuid.UUID(int=9)
)


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_compiled_query_answers_for_each_value_it_is_given(alice: Any, bob: Any) -> None:
    first = SalesChannelFactory(account=alice.account, credentials={"api_key": "secret-one"})
    second = SalesChannelFactory(account=bob.account)
    assert [channel.pk for channel in CHANNEL.instances(SalesChannel, channel_id=first.pk)] == [first.pk]
    again = CHANNEL.instances(SalesChannel, channel_id=str(second.pk))
    assert [channel.pk for channel in again] == [second.pk]
    assert again[0].account_id == bob.account.pk
    assert CHANNEL.instances(SalesChannel, channel_id=first.pk)[0].credentials == {"api_key": "secret-one"}
    assert CHANNEL.rows(channel_id=uuid.uuid4()) == []


def test_a_stand_in_the_query_drops_is_refused() -> None:
    ignored = PreparedQuery(lambda channel_id: SalesChannel.objects.all(), channel_id=uuid.UUID(int=10))
    with pytest.raises(RuntimeError):
        ignored.rows(channel_id=uuid.uuid4())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_statements_are_prepared_on_the_server_and_still_logged(alice: Any, settings: Any) -> None:
    channel = SalesChannelFactory(account=alice.account)
    settings.DATABASE_PREPARED_STATEMENTS = True
    with CaptureQueriesContext(connection) as captured:
        CHANNEL.rows(channel_id=channel.pk)
        execute_ctes(
            [("renamed AS (UPDATE channels_saleschannel SET name = %s WHERE id = %s)", ["New", channel.pk])]
        )
    assert any('FROM "channels_saleschannel"' in statement for statement in _prepared_statements())
    assert any("renamed AS" in statement for statement in _prepared_statements())
    assert len(captured.captured_queries) == 2
    channel.refresh_from_db()
    assert channel.name == "New"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_statements_can_be_turned_off_for_poolers(settings: Any) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 1 AS turned_off_for_poolers", [41])
        assert cursor.fetchone() == (42,)
    assert not any("turned_off_for_poolers" in statement for statement in _prepared_statements())
