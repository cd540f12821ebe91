"""How a push records its per-item results: in bulk, yet never losing what was sent before an error.

A fake connector stands in for the store so the test can stop a push between two batches.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels.models import SyncJob, SyncRun, SyncState
from channels.sync import LeaseLost
from connectors.base import PushResult, StockUpdate
from connectors.errors import TransientError
from inventory.models import Listing, Product
from inventory.push import push_stock_for_channel
from inventory.stock_queue import mark_stock_changed
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


class FakeStore:
    """Accepts every update, two per batch; raises ``fail_on_batch``'s error on that batch."""

    def __init__(self, fail_on_batch: int | None = None) -> None:
        self.capabilities = SimpleNamespace(stock_batch_size=2)
        self.batches: list[list[str]] = []
        self.fail_on_batch = fail_on_batch

    def push_stock(self, updates: list[StockUpdate]) -> list[PushResult]:
        self.batches.append([update.sku for update in updates])
        if self.fail_on_batch == len(self.batches):
            raise TransientError("The store did not answer.", code="timeout")
        return [PushResult(sku=update.sku, remote_id=update.remote_id, ok=True) for update in updates]


def _channel_with_four_listings() -> Any:
    channel = SalesChannelFactory(settings={"stock_sync": True})
    for index, sku in enumerate(["A", "B", "C", "D"]):
        product = Product.objects.create(account=channel.account, sku=sku, on_hand=10 + index)
        Listing.objects.create(
            account=channel.account, channel=channel, product=product, sku=sku, remote_id=str(index + 1)
        )
    mark_stock_changed(Listing.objects.filter(channel=channel))  # as reading them does
    return channel


def _pushed() -> dict[str, int | None]:
    return dict(Listing.objects.order_by("sku").values_list("sku", "last_pushed_quantity"))


def test_every_batch_is_recorded_in_one_update_at_the_end() -> None:
    channel = _channel_with_four_listings()
    store = FakeStore()
    with CaptureQueriesContext(connection) as captured:
        summary = push_stock_for_channel(channel, store)
    assert store.batches == [["A", "B"], ["C", "D"]]
    assert (summary.sent, summary.ok, summary.failed) == (4, 4, 0)
    assert _pushed() == {"A": 10, "B": 11, "C": 12, "D": 13}
    updates = [q["sql"] for q in captured.captured_queries if 'UPDATE "inventory_listing"' in q["sql"]]
    # One before sending (what the store holds is unknown until it answers), one for all results.
    assert len(updates) == 2
    assert "NULL" in updates[0]


def test_results_gathered_before_a_store_error_are_recorded_so_the_retry_sends_only_the_rest() -> None:
    channel = _channel_with_four_listings()
    with pytest.raises(TransientError):
        push_stock_for_channel(channel, FakeStore(fail_on_batch=2))
    assert _pushed() == {"A": 10, "B": 11, "C": None, "D": None}
    retry = FakeStore()
    push_stock_for_channel(channel, retry)
    assert retry.batches == [["C", "D"]]


def test_a_run_that_lost_its_lease_records_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = _channel_with_four_listings()
    run = SyncRun(account_id=channel.account_id, channel=channel, job=SyncJob.STOCK, state=SyncState.RUNNING)
    run._inventory_heartbeat = time.monotonic() - 60  # type: ignore[attr-defined]  # a heartbeat is due

    def lost(run: Any) -> None:
        raise LeaseLost("another worker took over")

    monkeypatch.setattr("inventory.push.heartbeat", lost)
    with pytest.raises(LeaseLost):
        push_stock_for_channel(channel, FakeStore(), run)
    assert _pushed() == {"A": None, "B": None, "C": None, "D": None}
