"""The sync engine core: leases, the dispatcher, SyncRuns, error handling, credential health."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts.models import Membership, Role, User
from channels import sync
from channels.models import ChannelSchedule, ConnectionState, JobLease, SalesChannel, SyncRun, SyncState
from connectors.errors import AuthError, PermanentError, ProtocolError, RateLimited, TransientError
from orders.download import download_orders, upsert_orders
from tests.orders.factories import channel_for_store, make_owner, sandbox_store


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def sent(monkeypatch):
    """Jobs the engine put on the broker (recorded instead of sent)."""
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job))))
    return jobs


@pytest.fixture
def store():
    with sandbox_store("xcart", orders=8) as (app, _server):
        yield app


@pytest.fixture
def owner(db):
    return make_owner("alice@example.com", "Alice's Shop")


@pytest.fixture
def channel(owner, store):
    return channel_for_store(owner[1], store)


def noop(channel, connector, run):
    run.fetched = 3


def failing(exc):
    def work(channel, connector, run):
        raise exc

    return work


pytestmark = pytest.mark.django_db


# -- leases ----------------------------------------------------------------------------------------


def test_lease_is_exclusive_until_it_expires(channel):
    assert sync.claim_lease(channel, "orders", "run-a", 60)
    assert not sync.claim_lease(channel, "orders", "run-b", 60)
    assert sync.claim_lease(channel, "shipments", "run-c", 60)  # another job kind is independent
    JobLease.objects.filter(channel=channel, job="orders").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert sync.claim_lease(channel, "orders", "run-b", 60)
    assert JobLease.objects.get(channel=channel, job="orders").holder == "run-b"


def test_run_skips_when_lease_held_and_takes_over_after_expiry(channel):
    assert sync.claim_lease(channel, "orders", "crashed-worker", 60)
    assert sync.run_channel_job(channel.pk, "orders", noop) is None
    assert not SyncRun.objects.filter(job="orders").exists()
    # the crashed worker never releases; once its lease expires the next run takes over
    JobLease.objects.filter(channel=channel, job="orders").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    run = sync.run_channel_job(channel.pk, "orders", noop)
    assert run.state == SyncState.SUCCEEDED
    assert run.fetched == 3
    lease = JobLease.objects.get(channel=channel, job="orders")
    assert lease.holder == ""  # released after the run


def test_busy_event_job_is_kept_due(channel):
    assert sync.claim_lease(channel, "stock", "someone", 60)
    assert sync.run_channel_job(channel.pk, "stock", noop) is None
    assert ChannelSchedule.objects.get(pk=channel.pk).stock_due_at is not None


def test_heartbeat_detects_lost_lease(channel):
    def slow(channel, connector, run):
        JobLease.objects.filter(channel=channel, job="orders").update(holder="another-run")
        sync.heartbeat(run)

    run = sync.run_channel_job(channel.pk, "orders", slow)
    assert run.state == SyncState.FAILED
    assert "took over" in run.error
    assert JobLease.objects.get(channel=channel, job="orders").holder == "another-run"


def test_heartbeat_saves_the_counts_and_the_page_and_renews_the_lease_in_one_round_trip(channel):
    from django.db.models import Q
    from django.test.utils import CaptureQueriesContext

    seen = {}

    def work(channel, connector, run):
        JobLease.objects.filter(channel=channel, job="orders").update(expires_at=timezone.now())
        run.fetched, run.created, run.unchanged = 7, 5, 2
        checkpoint = (ChannelSchedule, Q(pk=channel.pk), {"orders_checkpoint": "page-7"})
        with CaptureQueriesContext(connection) as queries:
            sync.heartbeat(run, also=[checkpoint])
        seen["statements"] = len(queries)
        seen["checkpoint"] = ChannelSchedule.objects.get(pk=channel.pk).orders_checkpoint
        seen["expires_at"] = JobLease.objects.get(channel=channel, job="orders").expires_at
        seen["counts"] = SyncRun.objects.values_list("fetched", "created", "unchanged").get(pk=run.pk)

    run = sync.run_channel_job(channel.pk, "orders", work)
    assert run.state == SyncState.SUCCEEDED, run.error
    assert seen["counts"] == (7, 5, 2)
    assert seen["checkpoint"] == "page-7"
    assert seen["expires_at"] > timezone.now() + timedelta(seconds=10)
    assert seen["statements"] == (1 if connection.vendor == "postgresql" else 3)


def test_a_job_that_lost_its_lease_stops_before_its_next_store_request(channel, store):
    requests_when_lost: list[int] = []

    def work(channel, connector, run):
        connector.list_listings()
        JobLease.objects.filter(channel=channel, job="stock").update(holder="another-run")
        time.sleep(1.2)  # past a third of the 3-second lease: the next request renews first
        requests_when_lost.append(store.request_count)
        connector.list_listings()

    run = sync.run_channel_job(channel.pk, "stock", work, lease_seconds=3)
    assert run.state == SyncState.FAILED
    assert "took over" in run.error
    assert store.request_count == requests_when_lost[0]  # nothing more reached the store
    assert JobLease.objects.get(channel=channel, job="stock").holder == "another-run"


def test_store_requests_renew_the_lease_of_a_long_job(channel, store):
    expiries = []

    def work(channel, connector, run):
        for _ in range(3):
            time.sleep(1.1)
            connector.list_listings()
            expiries.append(JobLease.objects.get(channel=channel, job="stock").expires_at)

    run = sync.run_channel_job(channel.pk, "stock", work, lease_seconds=3)
    assert run.state == SyncState.SUCCEEDED
    assert expiries == sorted(expiries)
    assert len(set(expiries)) == 3  # renewed on each request


def test_default_lease_is_short():
    assert sync.default_lease_seconds() <= 60


# -- runs and errors -------------------------------------------------------------------------------


def test_not_syncable_channels_do_not_run(channel):
    SalesChannel.objects.filter(pk=channel.pk).update(enabled=False)
    assert sync.run_channel_job(channel.pk, "orders", noop) is None
    SalesChannel.objects.filter(pk=channel.pk).update(
        enabled=True, connection_state=ConnectionState.NEEDS_REAUTH
    )
    assert sync.run_channel_job(channel.pk, "orders", noop) is None
    SalesChannel.objects.filter(pk=channel.pk).update(
        connection_state=ConnectionState.OK, removed_at=timezone.now()
    )
    assert sync.run_channel_job(channel.pk, "orders", noop) is None
    assert SyncRun.objects.count() == 0


def test_success_records_counts_and_channel_health(channel):
    SalesChannel.objects.filter(pk=channel.pk).update(
        connection_state=ConnectionState.ERROR, last_error="old"
    )
    run = sync.run_channel_job(channel.pk, "orders", noop)
    stored = SyncRun.objects.get(pk=run.pk)
    assert stored.state == SyncState.SUCCEEDED
    assert stored.fetched == 3
    assert stored.finished_at >= stored.started_at
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.OK
    assert channel.last_error == ""
    assert channel.last_success_at is not None


def test_auth_error_pauses_channel_and_mails_admins_once(
    owner, channel, store, django_capture_on_commit_callbacks
):
    _user, account = owner
    admin = User.objects.create_user(email="admin@example.com", password="x-correct-horse-9")
    member = User.objects.create_user(email="member@example.com", password="x-correct-horse-9")
    Membership.objects.create(account=account, user=admin, role=Role.ADMIN)
    Membership.objects.create(account=account, user=member, role=Role.MEMBER)
    store.faults.update({"expired_token": True})
    with django_capture_on_commit_callbacks(execute=True):
        run = sync.run_channel_job(channel.pk, "orders", download_orders)
    assert run.state == SyncState.FAILED
    assert run.error
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["admin@example.com", "alice@example.com"]
    assert f"/channels/{channel.pk}/reauthorise/" in mail.outbox[0].body
    # paused: the dispatcher skips it and a queued job does nothing
    ChannelSchedule.objects.filter(pk=channel.pk).update(orders_due_at=timezone.now())
    assert sync.dispatch_due_jobs() == []
    assert sync.run_channel_job(channel.pk, "orders", noop) is None
    # a second AuthError on an already paused channel does not mail again
    with django_capture_on_commit_callbacks(execute=True):
        sync.pause_for_reauth(channel, "still wrong")
    assert len(mail.outbox) == 1


def test_auth_error_in_a_connection_test_also_mails_admins_once(
    owner, channel, store, django_capture_on_commit_callbacks
):
    """ "An AuthError anywhere": the background connection check (3DCart token verification, a
    colleague's "Test connection") tells the admins like a sync job does, and only once."""
    from channels import services as channel_services
    from channels.tasks import check_connection

    store.faults.update({"expired_token": True})
    with django_capture_on_commit_callbacks(execute=True):
        check_connection(str(channel.pk))
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert f"/channels/{channel.pk}/reauthorise/" in mail.outbox[0].body
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(AuthError):
        channel_services.check_channel_connection(channel, actor=None)
    assert len(mail.outbox) == 1


def test_reauthorising_resumes_jobs(owner, channel, store):
    from channels import services as channel_services

    store.faults.update({"expired_token": True})
    sync.run_channel_job(channel.pk, "orders", download_orders)
    channel.refresh_from_db()
    assert channel.connection_state == ConnectionState.NEEDS_REAUTH
    store.faults.update({"expired_token": False})
    channel_services.reauthorise_channel(channel, actor=owner[0], credentials=store.connector_credentials())
    run = sync.run_channel_job(channel.pk, "orders", download_orders)
    assert run.state == SyncState.SUCCEEDED
    assert run.created == store.order_count()


@pytest.mark.parametrize("exc", [TransientError("store timed out"), RateLimited("slow down", retry_after=7)])
def test_transient_errors_fail_the_run_and_are_raised_for_retry(channel, exc):
    with pytest.raises(type(exc)):
        sync.run_channel_job(channel.pk, "orders", failing(exc))
    run = SyncRun.objects.get()
    assert run.state == SyncState.FAILED
    assert exc.message in run.error
    assert JobLease.objects.get(channel=channel, job="orders").holder == ""


def test_protocol_error_keeps_masked_raw_reply(channel):
    secret = channel.credentials["api_key"]
    exc = ProtocolError("The store sent HTML.", raw=f"<html>key={secret} api_key: {secret}</html>")
    run = sync.run_channel_job(channel.pk, "orders", failing(exc))
    assert run.state == SyncState.FAILED
    assert run.error.startswith("The store sent HTML.")
    assert "Store reply" in run.error
    assert secret not in run.error
    channel.refresh_from_db()
    assert channel.last_error == "The store sent HTML."


def test_an_unreadable_reply_brings_an_event_job_back_capped_however_long_it_has_failed(channel):
    """The back-off grows with the channel's failed runs in a row, and stays capped for a store
    that has answered nonsense for weeks (thousands of failures)."""
    for failed_runs, longest in ((0, sync.RETRY_BASE_SECONDS), (5000, sync.RETRY_MAX_SECONDS)):
        SalesChannel.objects.filter(pk=channel.pk).update(failed_runs=failed_runs)
        ChannelSchedule.objects.filter(pk=channel.pk).update(stock_due_at=None)
        before = timezone.now()
        run = sync.run_channel_job(channel.pk, "stock", failing(ProtocolError("The store sent HTML.")))
        assert run.state == SyncState.FAILED
        due_at = ChannelSchedule.objects.get(pk=channel.pk).stock_due_at
        assert due_at is not None
        assert before + timedelta(seconds=longest * 0.8) <= due_at
        assert due_at <= timezone.now() + timedelta(seconds=longest * 1.2)
    # A download has its own clock: no extra due time.
    due_before = ChannelSchedule.objects.get(pk=channel.pk).orders_due_at
    sync.run_channel_job(channel.pk, "orders", failing(ProtocolError("The store sent HTML.")))
    assert ChannelSchedule.objects.get(pk=channel.pk).orders_due_at == due_before


def test_permanent_error_fails_run_without_raising(channel):
    run = sync.run_channel_job(channel.pk, "orders", failing(PermanentError("Order cannot be read.")))
    assert run.state == SyncState.FAILED
    assert run.error == "Order cannot be read."


def test_run_job_task_retries_with_store_retry_after(channel):
    retried: dict = {}

    class Retry(Exception):
        pass

    def retry(exc, countdown):
        retried.update(exc=exc, countdown=countdown)
        return Retry()

    task = SimpleNamespace(request=SimpleNamespace(retries=0), max_retries=3, retry=retry)
    with pytest.raises(Retry):
        sync.run_job_task(task, str(channel.pk), "orders", failing(RateLimited("busy", retry_after=42)))
    assert retried["countdown"] == 42
    with pytest.raises(Retry):
        sync.run_job_task(task, str(channel.pk), "orders", failing(TransientError("502")))
    assert 4 <= retried["countdown"] <= 6
    task.request.retries = 3  # budget spent: give up quietly, the schedule runs it again later
    assert sync.run_job_task(task, str(channel.pk), "orders", failing(TransientError("502"))) is None
    assert sync.retry_countdown(TransientError("x"), 10) <= sync.RETRY_MAX_SECONDS * 1.2


# -- scheduling ------------------------------------------------------------------------------------


def test_dispatcher_enqueues_due_orders_once_and_reschedules_by_interval(channel, sent):
    channel.settings = {**channel.settings, "order_interval_minutes": 3}
    channel.save()
    before = timezone.now()
    assert sync.dispatch_due_jobs() == [(str(channel.pk), "orders")]
    assert sent == [(str(channel.pk), "orders")]
    schedule = ChannelSchedule.objects.get(pk=channel.pk)
    # The next poll is in the channel's own slot of the interval (spread, not aligned), within it.
    assert before < schedule.orders_due_at <= timezone.now() + timedelta(minutes=3)
    assert sync.dispatch_due_jobs() == []
    assert len(sent) == 1


def test_order_interval_defaults_and_floor(channel):
    channel.settings = {}
    assert sync.order_interval(channel) == timedelta(minutes=5)
    channel.settings = {"order_interval_minutes": 0}
    assert sync.order_interval(channel) == timedelta(minutes=1)


def test_dispatcher_skips_disabled_channels_and_sends_event_jobs(channel, sent):
    sync.ensure_schedules([channel])
    ChannelSchedule.objects.filter(pk=channel.pk).update(
        orders_due_at=timezone.now() + timedelta(minutes=5), shipments_due_at=timezone.now()
    )
    SalesChannel.objects.filter(pk=channel.pk).update(enabled=False)
    assert sync.dispatch_due_jobs() == []
    SalesChannel.objects.filter(pk=channel.pk).update(enabled=True)
    assert sync.dispatch_due_jobs() == [(str(channel.pk), "shipments")]
    assert ChannelSchedule.objects.get(pk=channel.pk).shipments_due_at is None


def test_request_job_sends_only_after_commit(channel, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sync.request_job(channel, "stock")
        assert sent == []
    assert sent == [(str(channel.pk), "stock")]
    with pytest.raises(ValueError, match="unknown job"):
        sync.request_job(channel, "coffee")


def test_sync_now_enqueues_jobs_and_restarts_order_clock(channel, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        jobs = sync.sync_now(channel)
    assert jobs == ["orders", "shipments", "stock", "prices"]  # the sandbox channel syncs stock and prices
    assert [job for _, job in sent] == jobs
    assert ChannelSchedule.objects.get(pk=channel.pk).orders_due_at > timezone.now()


def test_sweeper_fails_dead_runs_and_makes_their_job_due(channel, sent, django_capture_on_commit_callbacks):
    sync.ensure_schedules([channel])
    ChannelSchedule.objects.filter(pk=channel.pk).update(orders_due_at=timezone.now() + timedelta(hours=1))
    dead = SyncRun.objects.create(
        account=channel.account,
        channel=channel,
        job="orders",
        state=SyncState.RUNNING,
        started_at=timezone.now() - timedelta(minutes=20),
    )
    alive = SyncRun.objects.create(
        account=channel.account,
        channel=channel,
        job="shipments",
        state=SyncState.RUNNING,
        started_at=timezone.now() - timedelta(minutes=20),
    )
    assert sync.claim_lease(channel, "shipments", str(alive.pk), 600)
    with django_capture_on_commit_callbacks(execute=True):
        assert sync.sweep_stale_runs() == 1
    assert (str(channel.pk), "orders") in sent  # sent at once, not left for the dispatcher's tick
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.state == SyncState.FAILED
    assert "stopped" in dead.error
    assert alive.state == SyncState.RUNNING
    # Claimed by that send (the order clock restarts), so the dispatcher does not send it again.
    assert ChannelSchedule.objects.get(pk=channel.pk).orders_due_at > timezone.now()


def test_reconcile_makes_stock_and_prices_due(channel):
    assert sync.reconcile_inventory() == 2
    schedule = ChannelSchedule.objects.get(pk=channel.pk)
    assert schedule.stock_due_at is not None
    assert schedule.prices_due_at is not None


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite's in-memory test database locks whole tables between threads; CI runs PostgreSQL",
)
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_do_not_double_enqueue(channel, monkeypatch):
    """Two beat processes tick at the same moment: each due job is enqueued exactly once."""
    sent: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(channel_id, job):
        with lock:
            sent.append((str(channel_id), str(job)))

    monkeypatch.setattr(sync, "send_job", record)
    sync.ensure_schedules([channel])
    due = timezone.now() - timedelta(seconds=1)
    for _ in range(5):
        ChannelSchedule.objects.filter(pk=channel.pk).update(
            orders_due_at=due, shipments_due_at=due, stock_due_at=due, prices_due_at=due
        )
        barrier = threading.Barrier(2)

        def tick(barrier=barrier):
            try:
                barrier.wait(timeout=5)
                sync.dispatch_due_jobs()
            finally:
                connection.close()

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert sorted(sent) == sorted(
        [(str(channel.pk), job) for job in ("orders", "shipments", "stock", "prices")] * 5
    )


def test_beat_schedules_are_database_rows():
    """Migrations create the beat entries operators can edit in the admin; the dispatcher ticks
    every 10 s (a due order poll waits for the next tick)."""
    from django_celery_beat.models import PeriodicTask

    tasks = {task.task: task for task in PeriodicTask.objects.filter(name__startswith="Storelink:")}
    dispatcher = tasks["channels.tasks.dispatch_due_jobs"]
    assert dispatcher.interval.every == 10
    assert dispatcher.expire_seconds < 10
    assert tasks["channels.tasks.reconcile_inventory"].interval.every == 3600
    assert "channels.tasks.sweep_stale_runs" in tasks


def test_enqueue_failure_gives_the_claim_back(channel, monkeypatch):
    def broker_down(channel_id, job):
        raise ConnectionError("broker down")

    monkeypatch.setattr(sync, "send_job", broker_down)
    sync.ensure_schedules([channel])
    ChannelSchedule.objects.filter(pk=channel.pk).update(shipments_due_at=timezone.now())
    sync.dispatch_due_jobs()
    assert ChannelSchedule.objects.get(pk=channel.pk).shipments_due_at is not None


def test_channel_without_reported_statuses_holds_nothing(channel):
    from dataclasses import replace

    from channels.services import connector_for

    connector = connector_for(channel)
    order = next(iter(connector.fetch_orders(None))).orders[0]
    connector.close()
    channel.store_facts = {}
    channel.save()
    result = upsert_orders(channel, [replace(order, status_code="ZZ")])
    assert result.created == 1
    assert not result.held_statuses


@pytest.mark.skipif(connection.vendor != "postgresql", reason="hand-over is a PostgreSQL statement")
def test_writes_handed_over_are_committed_with_success_or_before_a_failure(channel):
    account = channel.account

    def rename(name: str) -> tuple[str, list]:
        return ("renamed AS (UPDATE accounts_account SET name = %s WHERE id = %s)", [name, account.pk])

    def hands_over(channel, connector, run):
        assert sync.commit_with_success(run, [rename("Renamed by the job")])
        assert not sync.commit_with_success(run, [rename("A second hand-over")])  # one per run
        account.refresh_from_db()
        assert account.name == "Alice's Shop"  # not yet: it commits with the run's success

    run = sync.run_channel_job(channel.pk, "stock", hands_over)
    assert run.state == SyncState.SUCCEEDED
    account.refresh_from_db()
    assert account.name == "Renamed by the job"

    def hands_over_then_fails(channel, connector, run):
        sync.commit_with_success(run, [rename("Saved anyway")])
        raise PermanentError("the store refused the rest", code="refused")

    failed = sync.run_channel_job(channel.pk, "stock", hands_over_then_fails)
    assert failed.state == SyncState.FAILED
    account.refresh_from_db()
    assert account.name == "Saved anyway"
    assert JobLease.objects.get(channel=channel, job="stock").holder == ""
    assert not sync.commit_with_success(None, [rename("no run")])
