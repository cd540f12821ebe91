"""The channel's own health after background runs: what the seller sees on the list and the page.

A failed run writes its error on the channel; a later success of the *same* job clears it (the
failure stays in the run history). Another job's success must not hide it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels import health, sync
from channels.models import ConnectionState, SalesChannel, SyncJob, SyncRun, SyncState
from connectors.errors import PermanentError, TransientError
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


def ok(channel, connector, run):
    run.fetched = 1


def failing(message):
    def work(channel, connector, run):
        raise PermanentError(message)

    return work


def detail_page(client, alice, channel) -> str:
    client.force_login(alice.user)
    response = client.get(reverse("channels:detail", args=[channel.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_success_of_the_same_job_clears_the_last_error(client, alice, channel):
    sync.run_channel_job(channel.pk, SyncJob.STOCK, failing("The store refused SKU A-1."))
    assert SalesChannel.objects.get(pk=channel.pk).last_error == "The store refused SKU A-1."
    assert "The store refused SKU A-1." in detail_page(client, alice, channel)

    for _ in range(3):
        assert sync.run_channel_job(channel.pk, SyncJob.STOCK, ok).state == SyncState.SUCCEEDED

    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert fresh.last_error == ""
    assert fresh.connection_state == ConnectionState.OK
    body = detail_page(client, alice, channel)
    assert 'id="last-error"' not in body
    # the failure is still in the history
    assert SyncRun.objects.filter(channel=channel, state=SyncState.FAILED, job="stock").count() == 1


def test_another_jobs_success_does_not_hide_an_error(client, alice, channel):
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, failing("The orders add-on is missing."))
    sync.run_channel_job(channel.pk, SyncJob.STOCK, ok)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert fresh.last_error == "The orders add-on is missing."
    assert fresh.last_error_job == SyncJob.ORDERS
    body = detail_page(client, alice, channel)
    assert 'id="last-error"' in body
    assert "The orders add-on is missing." in body

    sync.run_channel_job(channel.pk, SyncJob.ORDERS, ok)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert (fresh.last_error, fresh.last_error_job) == ("", "")


def test_an_error_not_set_by_a_job_is_cleared_by_any_success(channel):
    """A failed connection test leaves the channel in ``error``: a job that then reaches the store
    proves the connection works again."""
    SalesChannel.objects.filter(pk=channel.pk).update(
        connection_state=ConnectionState.ERROR, last_error="The store did not answer."
    )
    sync.run_channel_job(channel.pk, SyncJob.PRICES, ok)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert (fresh.connection_state, fresh.last_error) == (ConnectionState.OK, "")


# -- background runs that keep failing ------------------------------------------------------------


def run_failing(channel, job, exc):
    def work(channel, connector, run):
        raise exc

    try:
        return sync.run_channel_job(channel.pk, job, work)
    except TransientError:
        return None  # the task would retry; the run is recorded as failed either way


def test_a_channel_whose_runs_keep_failing_shows_it_on_the_list_and_the_page(client, alice, channel):
    client.force_login(alice.user)
    down = TransientError("Could not reach the store (connection failed or was cut off).")
    run_failing(channel, SyncJob.ORDERS, down)
    run_failing(channel, SyncJob.STOCK, down)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert fresh.connection_state == ConnectionState.OK  # two failures may be a blip
    assert "Failing since" not in client.get(reverse("channels:list")).content.decode()

    run_failing(channel, SyncJob.ORDERS, PermanentError("The Storelink add-on is not installed."))
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert fresh.connection_state == ConnectionState.ERROR
    assert fresh.failed_runs == 3
    assert fresh.failing_since is not None
    first, second = SyncRun.objects.filter(channel=channel).order_by("created_at")[:2]
    assert first.started_at <= fresh.failing_since <= second.started_at  # since the first failure
    listing = client.get(reverse("channels:list")).content.decode()
    assert "Failing since" in listing
    assert "The Storelink add-on is not installed." in listing
    assert "Connected" not in listing
    page = detail_page(client, alice, channel)
    assert "Failing since" in page
    assert "The Storelink add-on is not installed." in page
    # still syncable: the next run may find the store back
    assert SalesChannel.objects.syncable().filter(pk=channel.pk).exists()

    sync.run_channel_job(channel.pk, SyncJob.ORDERS, ok)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert fresh.connection_state == ConnectionState.OK
    assert (fresh.failed_runs, fresh.failing_since, fresh.last_error) == (0, None, "")
    listing = client.get(reverse("channels:list")).content.decode()
    assert "Failing since" not in listing
    # the store answers again, but three of the last runs failed: degraded, not a plain "Connected"
    assert "Degraded" in listing
    assert "3 failed runs in the last 3 hours; last success" in listing
    assert "Connected" not in listing

    # once the failures are older than the window, it is simply connected
    SyncRun.objects.filter(channel=channel, state=SyncState.FAILED).update(
        created_at=timezone.now() - health.DEGRADED_WINDOW - timedelta(minutes=1)
    )
    listing = client.get(reverse("channels:list")).content.decode()
    assert "Degraded" not in listing
    assert "Connected" in listing


def test_a_connected_channel_failing_every_third_run_reads_degraded(client, alice, channel):
    """The failures in a row never reach the count that turns the channel to ``error``, yet a
    third of its runs fail: the list and the page say "Degraded", with how many failed."""
    client.force_login(alice.user)
    flaky = PermanentError("The store answered 503.")
    for _ in range(3):
        sync.run_channel_job(channel.pk, SyncJob.ORDERS, ok)
        sync.run_channel_job(channel.pk, SyncJob.ORDERS, ok)
        run_failing(channel, SyncJob.ORDERS, flaky)
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, ok)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert (fresh.connection_state, fresh.failed_runs) == (ConnectionState.OK, 0)

    listing = client.get(reverse("channels:list")).content.decode()
    assert "Degraded" in listing
    assert "3 failed runs in the last 3 hours" in listing
    assert ">Connected<" not in listing
    assert "Degraded" in detail_page(client, alice, channel)

    # one failure alone, long ago succeeded since, is no longer news
    SyncRun.objects.filter(channel=channel, state=SyncState.FAILED).exclude(
        pk=SyncRun.objects.filter(channel=channel, state=SyncState.FAILED).order_by("-created_at")[:1]
    ).delete()
    listing = client.get(reverse("channels:list")).content.decode()
    assert "Degraded" not in listing
    assert ">Connected<" in listing


def test_a_connected_channel_whose_latest_run_failed_reads_degraded(client, alice, channel):
    client.force_login(alice.user)
    run_failing(channel, SyncJob.STOCK, PermanentError("The store refused SKU A-1."))
    listing = client.get(reverse("channels:list")).content.decode()
    assert "Degraded" in listing
    assert "1 failed run in the last 3 hours, including the latest" in listing


def test_a_success_between_failures_restarts_the_count(channel):
    for _ in range(2):
        run_failing(channel, SyncJob.ORDERS, PermanentError("The store refused the filter."))
    sync.run_channel_job(channel.pk, SyncJob.STOCK, ok)
    run_failing(channel, SyncJob.ORDERS, PermanentError("The store refused the filter."))
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert (fresh.connection_state, fresh.failed_runs) == (ConnectionState.OK, 1)
    assert fresh.last_error == "The store refused the filter."


def test_a_successful_connection_test_or_reauthorisation_restarts_the_count(alice, channel, store):
    from channels import services

    for _ in range(3):
        run_failing(channel, SyncJob.ORDERS, PermanentError("The store refused the filter."))
    services.check_channel_connection(channel, actor=alice.user)
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert (fresh.connection_state, fresh.failed_runs, fresh.failing_since) == (ConnectionState.OK, 0, None)
    run_failing(channel, SyncJob.ORDERS, PermanentError("The store refused the filter."))
    assert SalesChannel.objects.get(pk=channel.pk).connection_state == ConnectionState.OK  # one, not four

    for _ in range(2):
        run_failing(channel, SyncJob.ORDERS, PermanentError("The store refused the filter."))
    services.reauthorise_channel(channel, actor=alice.user, credentials=store.connector_credentials())
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert (fresh.connection_state, fresh.failed_runs, fresh.failing_since) == (ConnectionState.OK, 0, None)
