"""The dispatcher costs what is due, not what exists, and several can run at once.

Due rows are claimed in batches by one locking statement (``FOR UPDATE SKIP LOCKED``), so the
number of statements per tick does not grow with the number of channels, and two dispatchers
ticking together never claim the same job. Periodic work (order polls, the hourly reconcile) is
spread over its period per channel.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels import sync
from channels.models import ChannelSchedule, SalesChannel
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db

JOBS = ("orders", "shipments", "stock", "prices")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(channel_id: Any, job: str) -> None:
        with lock:
            jobs.append((str(channel_id), str(job)))

    monkeypatch.setattr(sync, "send_job", record)
    return jobs


def _channels(account: Any, count: int) -> list[SalesChannel]:
    return [SalesChannelFactory(account=account) for _ in range(count)]


def _all_due(channels: list[SalesChannel]) -> None:
    due = timezone.now() - timedelta(seconds=1)
    ChannelSchedule.objects.filter(pk__in=[c.pk for c in channels]).update(
        orders_due_at=due, shipments_due_at=due, stock_due_at=due, prices_due_at=due
    )


def _nothing_due(channels: list[SalesChannel]) -> None:
    ChannelSchedule.objects.filter(pk__in=[c.pk for c in channels]).update(
        orders_due_at=timezone.now() + timedelta(minutes=5),
        shipments_due_at=None,
        stock_due_at=None,
        prices_due_at=None,
    )


def _tick_statements() -> tuple[int, list[tuple[str, str]]]:
    with CaptureQueriesContext(connection) as queries:
        claimed = sync.dispatch_due_jobs()
    return len(queries.captured_queries), claimed


def test_a_created_channel_has_its_schedule_with_orders_due(alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account)
    schedule = ChannelSchedule.objects.get(pk=channel.pk)
    assert schedule.orders_due_at is not None
    assert schedule.orders_due_at <= timezone.now()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="batched claims are single PostgreSQL statements; SQLite (the demo) writes row by row",
)
def test_statements_per_tick_do_not_grow_with_the_channels(alice: Any, bob: Any, sent: list) -> None:
    few, many = _channels(alice.account, 10), _channels(bob.account, 200)
    everything = few + many
    _nothing_due(everything)
    idle, claimed = _tick_statements()
    assert claimed == []
    _all_due(few)
    with_few, claimed = _tick_statements()
    assert len(claimed) == 10 * len(JOBS)
    _nothing_due(everything)
    _all_due(many)
    with_many, claimed = _tick_statements()
    assert len(claimed) == 200 * len(JOBS)
    assert sorted(claimed) == sorted((str(c.pk), job) for c in many for job in JOBS)
    assert with_few == with_many, "one batch claims 10 or 200 channels' jobs in the same statements"
    # A savepoint and its release around each batch here (the test runs in a transaction).
    assert idle <= 3
    assert with_many <= 5


def test_paused_channels_due_work_is_not_claimed(alice: Any, sent: list) -> None:
    live, paused, removed = _channels(alice.account, 3)
    SalesChannel.objects.filter(pk=paused.pk).update(enabled=False)
    SalesChannel.objects.filter(pk=removed.pk).update(removed_at=timezone.now())
    _all_due([live, paused, removed])
    assert {channel for channel, _ in sync.dispatch_due_jobs()} == {str(live.pk)}
    paused_schedule = ChannelSchedule.objects.get(pk=paused.pk)
    assert paused_schedule.stock_due_at is not None  # kept for when the seller resumes it


def test_a_backlog_larger_than_a_batch_is_claimed_in_one_tick(alice: Any, sent: list) -> None:
    channels = _channels(alice.account, 12)
    _all_due(channels)
    claimed = sync.dispatch_due_jobs(batch=5)
    assert sorted(claimed) == sorted((str(c.pk), job) for c in channels for job in JOBS)
    assert len(sent) == len(set(sent)) == 12 * len(JOBS)


def test_order_polls_are_spread_over_the_interval_per_channel(alice: Any, sent: list) -> None:
    channels = _channels(alice.account, 120)
    _nothing_due(channels)
    now = timezone.now()
    ChannelSchedule.objects.filter(pk__in=[c.pk for c in channels]).update(orders_due_at=now)
    sync.dispatch_due_jobs(now)
    due = sorted(
        ChannelSchedule.objects.filter(pk__in=[c.pk for c in channels]).values_list(
            "orders_due_at", flat=True
        )
    )
    interval = timedelta(seconds=60)  # a store with no order seen yet is polled at the idle pace
    assert all(now < when <= now + interval for when in due)
    assert len({when.replace(microsecond=0) for when in due}) > 30, "not all in the same second"
    assert due[-1] - due[0] > interval * 0.8, "spread over the interval"
    # Stable: the next poll of a channel comes one interval after this one, in the same slot.
    first = channels[0]
    slot = ChannelSchedule.objects.get(pk=first.pk).orders_due_at
    assert sync.next_orders_due(first, slot, manual=False) == slot + interval


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="batched claims are single PostgreSQL statements; SQLite (the demo) writes row by row",
)
def test_reconcile_spreads_channels_over_the_hour_in_constant_statements(alice: Any, bob: Any) -> None:
    few, many = _channels(alice.account, 10), _channels(bob.account, 200)
    everything = few + many
    _nothing_due(everything)
    SalesChannel.objects.filter(pk__in=[c.pk for c in many]).update(enabled=False)
    with CaptureQueriesContext(connection) as with_few:
        assert sync.reconcile_inventory() == 10  # the factory's channels sync stock, not prices
    SalesChannel.objects.filter(pk__in=[c.pk for c in many]).update(enabled=True)
    _nothing_due(everything)
    now = timezone.now()
    with CaptureQueriesContext(connection) as with_many:
        assert sync.reconcile_inventory(now) == 210
    assert len(with_few.captured_queries) == len(with_many.captured_queries)
    due = list(
        ChannelSchedule.objects.filter(pk__in=[c.pk for c in everything]).values_list(
            "stock_due_at", flat=True
        )
    )
    assert all(now < when <= now + timedelta(hours=1) for when in due)
    # 210 random slots in 3,600 seconds share a second now and then (about 6 pairs on average)
    assert len({when.replace(microsecond=0) for when in due}) > 190, "not all channels in the same second"
    assert max(due) - min(due) > timedelta(minutes=45)


def test_reconcile_keeps_an_earlier_due_time(alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account)
    soon = timezone.now() - timedelta(seconds=5)
    ChannelSchedule.objects.filter(pk=channel.pk).update(stock_due_at=soon)
    sync.reconcile_inventory()
    assert ChannelSchedule.objects.get(pk=channel.pk).stock_due_at == soon


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between threads need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_claim_the_same_job(alice: Any, sent: list) -> None:
    channels = _channels(alice.account, 60)
    expected: list[tuple[str, str]] = []
    for _ in range(3):
        _all_due(channels)
        expected += [(str(c.pk), job) for c in channels for job in JOBS]
        barrier = threading.Barrier(2)
        claims: list[list[tuple[str, str]]] = []

        def tick(barrier: threading.Barrier = barrier, claims: list = claims) -> None:
            try:
                barrier.wait(timeout=10)
                claims.append(sync.dispatch_due_jobs(batch=7))
            finally:
                connection.close()

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(claims) == 2
    assert sorted(sent) == sorted(expected), "every due job sent exactly once"
