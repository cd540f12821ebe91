"""config.db: a job's named data-modifying CTEs run as one statement, seen by Django's query log."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.db import execute_ctes
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


def test_named_writes_run_as_one_logged_statement(alice: Any) -> None:
    first = SalesChannelFactory(account=alice.account)
    second = SalesChannelFactory(account=alice.account)
    with CaptureQueriesContext(connection) as captured:
        execute_ctes(
            [
                ("renamed AS (UPDATE channels_saleschannel SET name = %s WHERE id = %s)", ["New", first.pk]),
                (
                    "paused AS (UPDATE channels_saleschannel SET enabled = %s WHERE id = %s)",
                    [False, second.pk],
                ),
            ]
        )
    assert len(captured.captured_queries) == 1
    assert "renamed AS" in captured.captured_queries[0]["sql"]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.name, second.enabled) == ("New", False)


def test_no_writes_run_nothing() -> None:
    with CaptureQueriesContext(connection) as captured:
        execute_ctes([])
    assert captured.captured_queries == []
