"""The seller's run history stays readable and bounded.

Most runs change nothing (no new order, no stock moved): a run like that which follows another
one like it only moves that row's counter and "last checked" time. Old rows are pruned after
``SYNC_RUN_RETENTION_DAYS``, keeping each job's newest row.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels import sync
from channels.models import SalesChannel, SyncJob, SyncRun, SyncState
from connectors.errors import PermanentError
from tests.orders.factories import channel_for_store, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def store():
    with sandbox_store("xcart", orders=2, products=2) as (app, _server):
        yield app


@pytest.fixture
def channel(alice, store):
    return channel_for_store(alice.account, store)


def checked(count):
    def work(channel, connector, run):
        run.fetched = count
        run.unchanged = count

    return work


def changed(channel, connector, run):
    run.fetched = run.created = 1


def broken(channel, connector, run):
    raise PermanentError("The store refused the filter.")


def test_runs_that_change_nothing_fold_into_one_row(client, alice, channel):
    first = sync.run_channel_job(channel.pk, SyncJob.STOCK, checked(5))
    for _ in range(4):
        assert sync.run_channel_job(channel.pk, SyncJob.STOCK, checked(6)).state == SyncState.SUCCEEDED

    rows = list(SyncRun.objects.filter(channel=channel, job=SyncJob.STOCK))
    assert [row.pk for row in rows] == [first.pk]
    row = rows[0]
    assert row.checks == 5
    assert row.fetched == 6  # what the latest check saw
    assert row.last_checked_at is not None
    assert row.last_checked_at >= row.finished_at
    channel_row = SalesChannel.objects.get(pk=channel.pk)
    assert channel_row.last_sync_at >= row.last_checked_at  # "last sync" stays honest

    client.force_login(alice.user)
    body = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    assert "Checked 5 times" in body


def test_a_change_or_a_failure_starts_a_new_row(channel):
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, checked(0))
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, checked(0))
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, changed)
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, checked(0))  # follows a change: its own row
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, broken)
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, checked(0))  # follows a failure: its own row
    sync.run_channel_job(channel.pk, SyncJob.STOCK, checked(0))  # another job never folds into orders
    history = [
        (row.job, row.state, row.created, row.checks)
        for row in SyncRun.objects.filter(channel=channel).order_by("created_at")
    ]
    assert history == [
        ("orders", "succeeded", 0, 2),
        ("orders", "succeeded", 1, 1),
        ("orders", "succeeded", 0, 1),
        ("orders", "failed", 0, 1),
        ("orders", "succeeded", 0, 1),
        ("stock", "succeeded", 0, 1),
    ]


def test_old_runs_are_pruned_but_each_jobs_newest_stays(alice, channel, settings):
    settings.SYNC_RUN_RETENTION_DAYS = 7
    now = timezone.now()

    def old_run(job, days, **fields):
        return SyncRun.objects.create(
            account=alice.account,
            channel=channel,
            job=job,
            state=SyncState.SUCCEEDED,
            created_at=now - timedelta(days=days),
            started_at=now - timedelta(days=days),
            finished_at=now - timedelta(days=days),
            **fields,
        )

    pruned = [old_run(SyncJob.ORDERS, 30, created=1), old_run(SyncJob.ORDERS, 20, created=1)]
    kept_newest_orders = old_run(SyncJob.ORDERS, 10, created=1)
    kept_recent = old_run(SyncJob.STOCK, 2, updated=1)
    pruned.append(old_run(SyncJob.STOCK, 9, updated=1))
    # a folded row first checked long ago but still checked recently is not old
    kept_folded = old_run(SyncJob.SHIPMENTS, 40, checks=900, last_checked_at=now - timedelta(hours=1))
    SyncRun.objects.create(
        account=alice.account, channel=channel, job=SyncJob.SHIPMENTS, state=SyncState.SUCCEEDED
    )

    assert sync.prune_sync_runs() == len(pruned)
    remaining = set(SyncRun.objects.filter(channel=channel).values_list("pk", flat=True))
    assert not remaining & {run.pk for run in pruned}
    assert {kept_newest_orders.pk, kept_recent.pk, kept_folded.pk} <= remaining


def test_pruning_is_a_beat_entry_and_a_setting():
    from django.conf import settings as django_settings
    from django_celery_beat.models import PeriodicTask

    from channels.tasks import prune_sync_runs

    entry = PeriodicTask.objects.get(task="channels.tasks.prune_sync_runs")
    assert entry.enabled
    assert entry.interval.every <= 24 * 3600
    assert django_settings.SYNC_RUN_RETENTION_DAYS == 30
    assert prune_sync_runs() == 0
