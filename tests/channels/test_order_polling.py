"""Adaptive order polling: a quick "anything new?" before each download, often on a busy store and
less on a quiet one.

The polls run the real order job (``orders.tasks``' work, through :func:`channels.sync.run_channel_job`)
against a sandbox X-Cart store over loopback; the store's own request and probe counters say what
it was asked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from channels import sync
from channels.models import ChannelSchedule, SyncRun
from orders.models import Order
from orders.tasks import _poll
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.ORDER_POLL_BUSY_SECONDS = 15
    settings.ORDER_POLL_IDLE_SECONDS = 60
    settings.ORDER_POLL_BACKOFF_AFTER_SECONDS = 120


@pytest.fixture
def store() -> Any:
    with sandbox_store("xcart", orders=8) as (app, _server):
        yield app


@pytest.fixture
def channel(store: Any) -> Any:
    _user, account = make_owner("alice@example.com", "Alice's Shop")
    return channel_for_store(account, store, order_interval_minutes=5)


def _poll_now(channel: Any) -> SyncRun:
    run = sync.run_channel_job(channel.pk, "orders", _poll)
    assert run is not None
    return run


def _schedule(channel: Any) -> ChannelSchedule:
    return ChannelSchedule.objects.get(pk=channel.pk)


def test_poll_interval_is_short_while_busy_and_doubles_as_the_store_stays_quiet() -> None:
    now = timezone.now()
    interval = sync.order_poll_interval
    assert interval(None, now) == timedelta(seconds=60)  # nothing seen yet: the idle pace
    assert interval(now, now) == timedelta(seconds=15)
    assert interval(now - timedelta(seconds=119), now) == timedelta(seconds=15)
    assert interval(now - timedelta(seconds=120), now) == timedelta(seconds=30)
    assert interval(now - timedelta(seconds=359), now) == timedelta(seconds=30)
    assert interval(now - timedelta(seconds=360), now) == timedelta(seconds=60)
    assert interval(now - timedelta(days=3), now) == timedelta(seconds=60)


def test_poll_interval_follows_the_settings(settings: Any) -> None:
    settings.ORDER_POLL_BUSY_SECONDS = 5
    settings.ORDER_POLL_IDLE_SECONDS = 20
    settings.ORDER_POLL_BACKOFF_AFTER_SECONDS = 10
    now = timezone.now()
    steps = [sync.order_poll_interval(now - timedelta(seconds=s), now).total_seconds() for s in (0, 10, 30)]
    assert steps == [5, 10, 20]
    assert sync.order_poll_interval(now - timedelta(hours=1), now) == timedelta(seconds=20)


def test_the_dispatcher_polls_a_busy_store_sooner_than_a_quiet_one(channel: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: None)
    now = timezone.now()
    for active_at, interval in ((now, 15), (now - timedelta(hours=1), 60)):
        ChannelSchedule.objects.filter(pk=channel.pk).update(orders_due_at=now, orders_active_at=active_at)
        assert (str(channel.pk), "orders") in sync.dispatch_due_jobs(now)
        due = _schedule(channel).orders_due_at
        assert now < due <= now + timedelta(seconds=interval)
        # the channel's own slot of that interval: the poll after it comes one interval later
        following = sync.next_orders_due(channel.pk, due, manual=False, active_at=active_at)
        assert following == due + timedelta(seconds=interval)


def test_a_quiet_store_is_asked_without_downloading_and_a_sale_is_downloaded(
    channel: Any, store: Any
) -> None:
    first = _poll_now(channel)  # no checkpoint yet: a download
    assert first.created > 0
    schedule = _schedule(channel)
    downloaded_at = schedule.orders_downloaded_at
    assert downloaded_at is not None
    assert schedule.orders_active_at is None, "a first import's backlog does not make a store busy"

    requests, probes = store.request_count, store.probe_count
    quiet = _poll_now(channel)
    assert (quiet.fetched, quiet.created, quiet.updated) == (0, 0, 0)
    assert store.probe_count > probes
    assert store.request_count - requests <= 2, "a quiet poll is the probe alone"
    assert _schedule(channel).orders_downloaded_at == downloaded_at
    assert _schedule(channel).orders_active_at is None

    new_id = store.add_order()
    sale = _poll_now(channel)
    assert sale.created == 1
    assert Order.objects.filter(channel=channel, external_id=new_id).exists()
    schedule = _schedule(channel)
    assert schedule.orders_downloaded_at > downloaded_at
    assert schedule.orders_active_at is not None, "a sale makes the store busy"
    assert schedule.orders_due_at <= timezone.now() + timedelta(seconds=15), "busy: polled again soon"


def test_a_full_download_runs_once_per_order_interval_whatever_the_probe_says(
    channel: Any, store: Any
) -> None:
    _poll_now(channel)
    long_ago = timezone.now() - timedelta(minutes=6)
    ChannelSchedule.objects.filter(pk=channel.pk).update(orders_downloaded_at=long_ago)
    probes = store.probe_count
    _poll_now(channel)
    assert store.probe_count == probes, "the interval was up: downloaded without asking first"
    assert _schedule(channel).orders_downloaded_at > long_ago


def test_a_store_that_cannot_tell_is_downloaded_every_poll(channel: Any, monkeypatch: Any) -> None:
    from connectors.xcart.connector import XCartConnector

    monkeypatch.setattr(XCartConnector, "orders_changed_since", lambda self, checkpoint: None)
    _poll_now(channel)
    before = _schedule(channel).orders_downloaded_at
    _poll_now(channel)
    assert _schedule(channel).orders_downloaded_at > before


def test_a_sync_now_keeps_its_due_time_when_a_poll_finds_orders(channel: Any) -> None:
    soon = timezone.now() - timedelta(seconds=1)
    ChannelSchedule.objects.filter(pk=channel.pk).update(orders_due_at=soon)
    sync.orders_polled(channel.pk, downloaded=True, found=True)
    assert _schedule(channel).orders_due_at == soon  # already due: not pushed back to the busy slot
