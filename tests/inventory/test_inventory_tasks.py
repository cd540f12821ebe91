"""The push tasks' own policy on top of the sync engine: retry shortly while the channel is busy,
and run once more for a request that arrived during a run (freshness under bursts of changes)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from channels.models import ChannelSchedule, JobLease, SyncJob, SyncRun
from channels.sync import mark_due
from inventory import tasks
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


class Retry(Exception):
    pass


class FakeTask:
    """The bits of a bound Celery task that ``run_push`` and ``run_job_task`` read."""

    max_retries = 6

    def __init__(self, retries: int = 0) -> None:
        self.request = SimpleNamespace(retries=retries)
        self.retried: list[dict[str, Any]] = []

    def retry(self, **options: Any) -> Retry:
        self.retried.append(options)
        return Retry()


def test_a_busy_channel_is_retried_a_second_later_not_left_to_the_dispatcher(alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account)
    JobLease.objects.create(
        account=alice.account,
        channel=channel,
        job=SyncJob.STOCK,
        holder="someone-else",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    calls: list[str] = []
    task = FakeTask()
    with pytest.raises(Retry):
        tasks.run_push(task, str(channel.pk), SyncJob.STOCK, lambda *args: calls.append("work"))
    assert calls == []
    assert task.retried == [{"countdown": tasks.BUSY_RETRY_SECONDS, "max_retries": tasks.BUSY_RETRIES}]

    # After enough tries it gives up and leaves the request to the dispatcher (it is due).
    tired = FakeTask(retries=tasks.BUSY_RETRIES)
    tasks.run_push(tired, str(channel.pk), SyncJob.STOCK, lambda *args: calls.append("work"))
    assert tired.retried == []
    assert ChannelSchedule.objects.get(pk=channel.pk).stock_due_at is not None


def test_a_request_that_arrived_during_a_run_gets_one_more_run(
    alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = SalesChannelFactory(account=alice.account)
    runs: list[int] = []

    def work(channel_row: Any, connector: Any, run: Any) -> None:
        runs.append(1)
        if len(runs) == 1:
            mark_due(channel_row, SyncJob.STOCK)  # a product change while this run was busy

    connector = SimpleNamespace(close=lambda: None, secret_values=lambda creds: [], credentials={})
    monkeypatch.setattr("channels.services.connector_for", lambda channel_row: connector)
    tasks.run_push(FakeTask(), str(channel.pk), SyncJob.STOCK, work)

    assert len(runs) == 2
    assert ChannelSchedule.objects.get(pk=channel.pk).stock_due_at is None
    # two runs that changed nothing: one history row that counts both
    assert [run.checks for run in SyncRun.objects.filter(channel=channel, job=SyncJob.STOCK)] == [2]


def test_a_channel_busy_for_every_retry_ends_quietly_and_its_push_runs_after_the_holder(
    alice: Any, store_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Celery's own retry machinery (``apply`` runs each retry at once): more busy retries
    than the task's default limit end without ``MaxRetriesExceededError``, the push stays due, and
    once the holder is done the dispatcher sends it and it runs."""
    from channels import sync

    store = store_factory(alice.account, "xcart", products=3)
    channel = store.channel
    assert sync.claim_lease(channel, SyncJob.STOCK, "the-run-in-progress", 60)
    assert tasks.push_stock.max_retries < tasks.BUSY_RETRIES  # the case that used to end in a traceback
    ChannelSchedule.objects.filter(pk=channel.pk).update(stock_due_at=None)

    result = tasks.push_stock.apply(args=[str(channel.pk)])

    assert result.successful(), result.traceback
    assert not SyncRun.objects.filter(channel=channel, job=SyncJob.STOCK).exists()
    assert ChannelSchedule.objects.get(pk=channel.pk).stock_due_at is not None

    sync.release_lease(channel.pk, SyncJob.STOCK, "the-run-in-progress")
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: sent.append((str(channel_id), str(job))))
    assert (str(channel.pk), SyncJob.STOCK) in sync.dispatch_due_jobs()
    assert (str(channel.pk), SyncJob.STOCK) in sent
    assert tasks.push_stock.apply(args=[str(channel.pk)]).successful()
    run = SyncRun.objects.get(channel=channel, job=SyncJob.STOCK)
    assert run.state == "succeeded"
